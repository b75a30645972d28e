"""API contract checks: what each answer's validator accepts and rejects (and how it says so),
streams checked chunk by chunk, and the whole path through the plugin against the mock with one
field broken at a time."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from pytest_observatory import contract
from pytest_observatory.contract import ContractViolation, validate
from pytest_observatory.errors import classify
from pytest_observatory.mock import MockSettings
from pytest_observatory.mock.contract_faults import ANSWER_FAULTS, STREAM_FAULTS
from pytest_observatory.mock.settings import CONTRACT_FAULTS

JSONObject = dict[str, Any]


def like(text: str, pattern: str) -> bool:
    """``text`` matches ``pattern``, whose only wildcard is ``*`` (messages hold brackets)."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), text) is not None


def chat_completion() -> JSONObject:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }


def chunks() -> list[JSONObject]:
    def chunk(delta: JSONObject, finish: str | None = None) -> JSONObject:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "gpt-x",
            "choices": [choice],
        }

    usage = {**chunk({}), "choices": [], "usage": chat_completion()["usage"]}
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        chunk({}, "stop"),
        usage,
    ]


def embeddings(*vectors: list[float]) -> JSONObject:
    return {
        "object": "list",
        "model": "embed-x",
        "data": [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }


def models() -> JSONObject:
    entry = {"id": "gpt-x", "object": "model", "created": 1_700_000_000, "owned_by": "me"}
    return {"object": "list", "data": [entry, {**entry, "id": "gpt-y"}]}


def output_text(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response(text: str | None = "Hello") -> JSONObject:
    output = [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [output_text(text)],
        }
    ]
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed" if text is not None else "in_progress",
        "model": "gpt-x",
        "output": output if text is not None else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 3,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 2,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 5,
        }
        if text is not None
        else None,
    }


def response_events() -> list[JSONObject]:
    part = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[JSONObject] = [
        {"type": "response.created", "response": response(None)},
        {"type": "response.output_text.delta", **part, "delta": "Hel", "logprobs": []},
        {"type": "response.output_text.delta", **part, "delta": "lo", "logprobs": []},
        {"type": "response.output_text.done", **part, "text": "Hello", "logprobs": []},
        {"type": "response.completed", "response": response()},
    ]
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def message() -> JSONObject:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }


def message_events() -> list[JSONObject]:
    start = {**message(), "content": [], "stop_reason": None}
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 2},
        },
        {"type": "message_stop"},
    ]


# --- whole answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payload", "inputs"),
    [
        ("chat.completion", chat_completion(), None),
        ("embeddings", embeddings([0.5, 1], [0.25, -1.5]), 2),
        ("models", models(), None),
        ("response", response(), None),
        ("message", message(), None),
        *(("chat.completion.chunk", chunk, None) for chunk in chunks()),
        *(("response.event", event, None) for event in response_events()),
        *(("message.event", event, None) for event in message_events()),
    ],
)
def test_valid_answers_pass(kind: str, payload: JSONObject, inputs: int | None) -> None:
    validate(kind, payload, inputs=inputs)


def changed(payload: JSONObject, change: Callable[[JSONObject], object]) -> JSONObject:
    broken = copy.deepcopy(payload)
    change(broken)
    return broken


def choice(payload: JSONObject) -> JSONObject:
    first: JSONObject = payload["choices"][0]
    return first


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (
            "chat.completion",
            changed(chat_completion(), lambda p: choice(p).update(finish_reason="banana")),
            "chat.completion: choices[0].finish_reason = 'banana' is not one of stop, length, "
            "tool_calls, content_filter, function_call",
        ),
        ("chat.completion", changed(chat_completion(), lambda p: p.pop("id")), "*: id is missing"),
        (
            "chat.completion",
            changed(chat_completion(), lambda p: choice(p)["message"].update(role="bot")),
            "*: choices[0].message.role = 'bot', expected 'assistant'",
        ),
        (
            "chat.completion",
            changed(chat_completion(), lambda p: p.update(object="chat.completion.chunk")),
            "*: object = 'chat.completion.chunk', expected 'chat.completion'",
        ),
        (
            "chat.completion",
            changed(chat_completion(), lambda p: choice(p)["message"].update(content=42)),
            "*: choices[0].message.content = 42: input should be a valid string",
        ),
        (
            "chat.completion",
            changed(chat_completion(), lambda p: p.update(choices=[])),
            "*: choices = []: a completion has at least one choice",
        ),
        (
            "chat.completion",
            changed(chat_completion(), lambda p: p["usage"].update(total_tokens=12)),
            "*: usage.total_tokens = 12, expected prompt_tokens + completion_tokens = 5 + 6 = 11",
        ),
        (
            "chat.completion",
            changed(chat_completion(), lambda p: p["usage"].update(prompt_tokens=-1)),
            "*: usage = {*'prompt_tokens': -1*}: token counts must be integers >= 0",
        ),
        (
            "chat.completion",
            ["not", "an", "object"],
            "chat.completion: body = ['not', 'an', 'object']: input should be a valid dict*",
        ),
        (
            "embeddings",
            embeddings([0.5, 1], [0.25]),
            "embeddings: data[1].embedding has 1 dimensions, data[0].embedding 2",
        ),
        ("embeddings", embeddings([0.5, 1]), "embeddings: data has 1 embeddings for 2 inputs"),
        (
            "embeddings",
            changed(embeddings([1.0], [2.0]), lambda p: p["data"][1].update(index=0)),
            "embeddings: data[].index = [0, 0], expected 0 to 1",
        ),
        (
            "embeddings",
            embeddings([1.0, float("nan")], [1.0, 2.0]),
            "*: data[0].embedding[1] = nan is not*",
        ),
        ("embeddings", embeddings([], []), "*: data[0].embedding = []: an embedding has at least*"),
        (
            "embeddings",
            embeddings([1.0], ["0.5"]),  # type: ignore[list-item]
            "embeddings: data[1].embedding[0] = '0.5': input should be a valid number",
        ),
        ("models", changed(models(), lambda p: p["data"][1].pop("id")), "models: data[1].id is*"),
        ("models", {"data": []}, "models: object is missing, expected 'list'"),
        (
            "response",
            changed(response(), lambda p: p["output"][0]["content"][0].update(type="text")),
            "response: output[0].content[0].type = 'text' is not one of output_text, refusal*",
        ),
        (
            "response",
            changed(response(), lambda p: p["usage"].update(total_tokens=6)),
            "response: usage.total_tokens = 6, expected input_tokens + output_tokens = 3 + 2 = 5",
        ),
        (
            "message",
            changed(message(), lambda p: p.update(stop_reason="banana")),
            "message: stop_reason = 'banana' is not one of end_turn, max_tokens, stop_sequence*",
        ),
        (
            "message",
            changed(message(), lambda p: p["content"][0].update(text=5)),
            "message: content[0].text = 5: input should be a valid string",
        ),
        (
            "response.event",
            {"type": "response.output_txt.delta", "sequence_number": 1},
            "response.event: type = 'response.output_txt.delta' is no event type",
        ),
        ("response.event", {"sequence_number": 1}, "response.event: type is missing"),
        ("response.event", {"type": ["a"]}, "response.event: type = ['a'] is no event type"),
        (
            "message.event",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}},
            "message.event: delta.text is missing",
        ),
    ],
)
def test_a_violation_names_the_field_and_the_value(
    kind: str, payload: object, message: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        validate(kind, payload, inputs=2 if kind == "embeddings" else None)
    assert caught.value.category == "contract"
    assert like(str(caught.value), message), str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("created", "1700000000"), ("created", 1.7e9), ("created", True)],
)
def test_strict_no_coercion_of_numbers_the_sdk_would_accept(field: str, value: object) -> None:
    """The SDK's models coerce in their default (lax) mode: a string or a bool is no integer
    on the wire, and neither is 1.7e9."""
    with pytest.raises(ContractViolation, match=f"{field} = {value!r}: input should be"):
        validate("chat.completion", {**chat_completion(), field: value})


def test_extra_fields_are_allowed() -> None:
    """Gateways add their own fields (LiteLLM's, vLLM's): the API allows that."""
    validate("chat.completion", {**chat_completion(), "system_fingerprint": None, "x_gw": {}})


def test_values_are_excerpted_and_secrets_never_shown_whole() -> None:
    secret = "sk-live-DO-NOT-PRINT-1234567890"
    long_value = {"text": "x" * 200 + secret}
    with pytest.raises(ContractViolation) as caught:
        validate("chat.completion", {**chat_completion(), "model": long_value})
    text = str(caught.value)
    assert secret not in text
    assert text.startswith("chat.completion: model = {'text': 'xxx")
    assert "…" in text and len(text) < 160


def test_classified_as_contract_in_one_line() -> None:
    with pytest.raises(ContractViolation) as caught:
        validate("chat.completion", changed(chat_completion(), lambda p: p.pop("created")))
    assert classify(caught.value) == ("contract", "contract: chat.completion: created is missing")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown contract kind 'chat' \\(known: chat.completion"):
        validate("chat", {})


# --- streams ------------------------------------------------------------------------------


def run_stream(api: str, events: list[JSONObject], done: bool = True) -> None:
    checker = contract.stream_contract(api)
    for event in events:
        checker.event(event)
    checker.end(done)


@pytest.mark.parametrize(
    ("api", "events"),
    [("chat", chunks()), ("responses", response_events()), ("messages", message_events())],
)
def test_valid_streams_pass(api: str, events: list[JSONObject]) -> None:
    run_stream(api, events)


def with_event(
    events: list[JSONObject], i: int, change: Callable[[JSONObject], object]
) -> list[JSONObject]:
    events = copy.deepcopy(events)
    change(events[i])
    return events


@pytest.mark.parametrize(
    ("api", "events", "done", "message"),
    [
        ("chat", chunks(), False, "chat.completion.chunk stream: ended without data: [DONE]*"),
        (
            "chat",
            with_event(chunks(), 2, lambda c: c["choices"][0].update(finish_reason=None)),
            True,
            "chat.completion.chunk stream: choices[].finish_reason: none for index 0 in 4 chunks",
        ),
        (
            "chat",
            [*chunks()[:3], chunks()[1]],
            True,
            "chat.completion.chunk 4: choices[0].delta: content after index 0's finish_reason",
        ),
        (
            "chat",
            with_event(chunks(), 1, lambda c: c.update(id="chatcmpl-2")),
            True,
            "chat.completion.chunk 2: id = 'chatcmpl-2' differs from the first chunk's",
        ),
        (
            "chat",
            with_event(chunks(), 1, lambda c: c.update(object="chat.completion")),
            True,
            "chat.completion.chunk 2: object = 'chat.completion', expected 'chat.completion.chunk'",
        ),
        (
            "chat",
            with_event(chunks(), 3, lambda c: c["usage"].update(total_tokens=1)),
            True,
            "chat.completion.chunk 4: usage.total_tokens = 1, expected prompt_tokens + *",
        ),
        ("chat", chunks()[3:], True, "chat.completion.chunk stream: no chunk with choices"),
        (
            "responses",
            with_event(response_events(), 2, lambda e: e.update(sequence_number=1)),
            True,
            "response.event 3: sequence_number = 1 after 1",
        ),
        (
            "responses",
            with_event(response_events(), 1, lambda e: e.update(delta=None)),
            True,
            "response.event 2: delta = None: input should be a valid string",
        ),
        (
            "responses",
            response_events()[:-1],
            False,
            "response.event stream: ended without response.completed after 4 events",
        ),
        (
            "messages",
            message_events()[1:],
            True,
            "message.event 1: type = 'content_block_start', expected 'message_start' first",
        ),
        (
            "messages",
            with_event(message_events(), 3, lambda e: e.update(index=1)),
            True,
            "message.event 4: index = 1: no content block open at that index",
        ),
        (
            "messages",
            with_event(message_events(), 5, lambda e: e["delta"].update(stop_reason=None)),
            True,
            "message.event stream: no message_delta with a stop_reason",
        ),
    ],
)
def test_a_broken_stream_names_the_event_and_the_field(
    api: str, events: list[JSONObject], done: bool, message: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        run_stream(api, events, done)
    assert like(str(caught.value), message), str(caught.value)


def test_a_trailing_choice_without_a_reason_passes_as_litellm_sends_it() -> None:
    """LiteLLM's usage chunk repeats the choice (empty delta, no finish_reason)."""
    *head, usage = chunks()
    usage["choices"] = [{"index": 0, "delta": {}, "finish_reason": None}]
    run_stream("chat", [*head, usage])


def test_unknown_message_events_pass_as_anthropic_asks() -> None:
    """Anthropic's versioning policy: new event types may appear; clients pass over them."""
    events = message_events()
    run_stream("messages", [*events[:2], {"type": "thinking_hint", "x": 1}, *events[2:]])


# --- the mock's faults --------------------------------------------------------------------


def test_every_contract_fault_is_implemented_and_named_once() -> None:
    assert set(CONTRACT_FAULTS) == set(ANSWER_FAULTS) | set(STREAM_FAULTS)


def test_unknown_contract_fault_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="contract_fault='banana': expected one of finish_reason"):
        MockSettings.from_query("contract_fault=banana")


# fault -> (helper call, what the message names)
FAULT_CASES = {
    "finish_reason": ("chat", "choices[0].finish_reason = 'banana' is not one of stop*"),
    "no_finish": ("chat", "choices[0].finish_reason = None is not one of stop*"),
    "missing_id": ("chat", "chat.completion: id is missing"),
    "created_type": ("chat", "created = '*': input should be a valid integer"),
    "role": ("chat", "choices[0].message.role = 'bot', expected 'assistant'"),
    "usage_sum": ("chat", "usage.total_tokens = *, expected prompt_tokens + completion_tokens*"),
    "embedding_dim": ("embeddings", "data[1].embedding has 7 dimensions, data[0].embedding 8"),
    "embedding_count": ("embeddings", "embeddings: data has 1 embeddings for 2 inputs"),
}
# (fault, helper) -> what the message names: the Responses and Messages answers' fields
API_FAULT_CASES = {
    ("finish_reason", "responses"): "response: status = 'banana' is not one of completed*",
    ("finish_reason", "messages"): "message: stop_reason = 'banana' is not one of end_turn*",
    ("missing_id", "responses"): "response: id is missing",
    ("missing_id", "messages"): "message: id is missing",
    ("created_type", "responses"): "response: created_at = '*': input should be a valid number",
    ("role", "messages"): "message: role = 'bot', expected 'assistant'",
    ("usage_sum", "responses"): "response: usage.total_tokens = *, expected input_tokens + *",
    ("tokens_type", "messages"): "message: usage.output_tokens = '*': input should be a valid int*",
}
# (fault, streamed helper) -> what the message names, in the event that carries the field
API_STREAM_CASES = {
    ("finish_reason", "stream_responses"): "response.event 11: response.status = 'banana' *",
    ("finish_reason", "stream_messages"): "message.event 8: delta.stop_reason = 'banana' *",
    ("missing_id", "stream_responses"): "response.event 1: response.id is missing",
    ("missing_id", "stream_messages"): "message.event 1: message.id is missing",
    ("created_type", "stream_responses"): "response.event 1: response.created_at = '*': input*",
    ("role", "stream_messages"): "message.event 1: message.role = 'bot', expected 'assistant'",
    ("usage_sum", "stream_responses"): "response.event 11: response.usage.total_tokens = *",
    ("tokens_type", "stream_messages"): "message.event 8: usage.output_tokens = '3': input *",
}
STREAM_CASES = {
    "finish_reason": "chat.completion.chunk *: choices[0].finish_reason = 'banana' is not one*",
    "no_finish": "chat.completion.chunk stream: choices[].finish_reason: none for index 0 in *",
    "missing_id": "chat.completion.chunk 1: id is missing",
    "created_type": "chat.completion.chunk 1: created = '*': input should be a valid integer",
    "role": "chat.completion.chunk 1: choices[0].delta.role = 'bot' is not one of developer*",
    "usage_sum": "chat.completion.chunk *: usage.total_tokens = *, expected prompt_tokens*",
    "chunk_type": "chat.completion.chunk 2: object = 'chat.completion', expected *",
    "no_done": "chat.completion.chunk stream: ended without data: [DONE] after * events",
}
CALLS = {
    "chat": 'await deployment.chat(model, "hello", max_tokens=3)',
    "stream_chat": 'await deployment.stream_chat(model, "hello", max_tokens=3)',
    "embeddings": 'await deployment.embeddings(model, ["a", "b"])',
    "models": "await deployment.models()",
    "responses": 'await deployment.responses(model, "hello", max_output_tokens=3)',
    "stream_responses": 'await deployment.stream_responses(model, "hello", max_output_tokens=3)',
    "messages": 'await deployment.messages(model, "hello", max_tokens=3)',
    "stream_messages": 'await deployment.stream_messages(model, "hello", max_tokens=3)',
}


def run_check(
    pytester: pytest.Pytester, url: str, call: str, marker: str = "validate=True"
) -> JSONObject:
    """One 4-probe check of ``call`` against the mock at ``url``; its JSON report entry."""
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.observatory(duration="10s", probes=4, max_failure_rate=0.5, {marker})
        async def test_contract(deployment, model):
            {call}
        """
    )
    report = pytester.path / "report.json"
    pytester.runpytest(f"--deployment-url={url}", f"--observatory-report={report}")
    check: JSONObject = json.loads(report.read_text())["checks"][0]
    return check


def assert_only(check: JSONObject, pattern: str) -> None:
    """Every failure is ``contract`` and its message matches ``pattern``. A message may quote a
    timestamp (``created = '…'``), so probes a second apart make distinct messages."""
    assert check["error_categories"] == {"contract": check["failures"]}, check["errors"]
    assert check["errors"], "no error recorded"
    for message in check["errors"]:
        assert like(message, pattern), message


@pytest.mark.parametrize("fault", sorted(FAULT_CASES))
def test_each_injected_fault_fails_its_probes_as_contract(
    pytester: pytest.Pytester, fault: str
) -> None:
    helper, expected = FAULT_CASES[fault]
    url = f"mock?contract_fault={fault}&contract_fault_rate=0.5"
    check = run_check(pytester, url, CALLS[helper])
    assert check["probes"] == 4 and check["failures"] == 2  # every other answer broken
    assert_only(check, "contract: *" + expected)


@pytest.mark.parametrize(
    ("fault", "helper", "expected"),
    sorted((*case, names) for case, names in {**API_FAULT_CASES, **API_STREAM_CASES}.items()),
)
def test_responses_and_messages_faults_fail_as_contract(
    pytester: pytest.Pytester, fault: str, helper: str, expected: str
) -> None:
    check = run_check(pytester, f"mock?contract_fault={fault}", CALLS[helper])
    assert check["failures"] == check["probes"] == 4
    assert_only(check, "contract: " + expected)


@pytest.mark.parametrize("fault", sorted(STREAM_CASES))
def test_each_injected_stream_fault_fails_as_contract(
    pytester: pytest.Pytester, fault: str
) -> None:
    check = run_check(pytester, f"mock?contract_fault={fault}", CALLS["stream_chat"])
    assert check["failures"] == check["probes"] == 4
    assert_only(check, "contract: " + STREAM_CASES[fault])


def test_models_fault_names_the_entry(pytester: pytest.Pytester) -> None:
    check = run_check(pytester, "mock?contract_fault=missing_id", CALLS["models"])
    assert check["failures"] == 4
    assert list(check["errors"]) == ["contract: models: data[0].id is missing"]
    assert check["error_categories"] == {"contract": 4}


@pytest.mark.parametrize("helper", sorted(CALLS))
def test_the_clean_mock_passes_with_validation_on(pytester: pytest.Pytester, helper: str) -> None:
    check = run_check(pytester, "mock", CALLS[helper])
    assert check["verdict"] == "passed" and check["probes"] == 4 and check["failures"] == 0


def test_without_validation_a_broken_field_goes_unnoticed(pytester: pytest.Pytester) -> None:
    """Validation is opt-in: the same fault, the marker left at its default, passes."""
    check = run_check(pytester, "mock?contract_fault=finish_reason", CALLS["chat"], "")
    assert check["failures"] == 0


def test_the_helper_argument_wins_over_the_marker(pytester: pytest.Pytester) -> None:
    call = 'await deployment.chat(model, "hello", max_tokens=3, validate=False)'
    assert run_check(pytester, "mock?contract_fault=finish_reason", call)["failures"] == 0
    call = 'await deployment.chat(model, "hello", max_tokens=3, validate=True)'
    check = run_check(pytester, "mock?contract_fault=finish_reason", call, "")
    assert check["failures"] == 4


def test_blocking_helpers_validate_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="10s", probes=2, max_failure_rate=0.5, validate=True)
        def test_sync(deployment, model):
            deployment.stream_chat(model, "hello", max_tokens=3)
        """
    )
    result = pytester.runpytest("--deployment-url=mock?contract_fault=no_done")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*contract: chat.completion.chunk stream: ended without data*"])


def test_a_bad_validate_argument_is_a_setup_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="1s", validate="yes")
        def test_check(deployment):
            pass
        """
    )
    result = pytester.runpytest("--deployment-url=mock")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_check: observatory marker: validate='yes': expected True or False"]
    )


def test_no_sdk_is_imported_until_a_validation() -> None:
    """Plugin import time matters: the helpers load pydantic and the SDKs on first use only."""
    code = (
        "import sys, pytest_observatory.plugin, pytest_observatory.client\n"
        "print(sorted({'pydantic', 'openai', 'anthropic'} & set(sys.modules)))\n"
        "from pytest_observatory.contract import validate\n"
        "validate('chat.completion.chunk', "
        f"{chunks()[0]!r})\n"
        "print(sorted({'pydantic', 'openai', 'anthropic'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["[]", "['openai', 'pydantic']"], done.stderr
