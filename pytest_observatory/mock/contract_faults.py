"""Contract faults of the mock gateway: a valid answer with exactly one field broken.

Each fault breaks one field the way a real gateway gets it wrong (a stop reason it made up, a
usage total that does not add up, a stream that never sends ``[DONE]``), so a test can inject
them one at a time and see the contract check name that field and nothing else. The answer is
otherwise the normal one, sent through the normal path (latency, streaming pace, stream faults).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .apis import StreamEvents, sse

JSONObject = dict[str, Any]
DONE = b"data: [DONE]\n\n"


def _finish_reason(answer: JSONObject) -> None:
    answer["choices"][0]["finish_reason"] = "banana"


def _no_finish(answer: JSONObject) -> None:
    answer["choices"][0]["finish_reason"] = None


def _missing_id(answer: JSONObject) -> None:
    del answer["id"]


def _created_type(answer: JSONObject) -> None:
    answer["created"] = str(answer["created"])  # what a lax parser would accept


def _role(answer: JSONObject) -> None:
    answer["choices"][0]["message"]["role"] = "bot"


def _usage_sum(answer: JSONObject) -> None:
    answer["usage"]["total_tokens"] += 1


def _response_status(answer: JSONObject) -> None:
    answer["status"] = "banana"


def _stop_reason(answer: JSONObject) -> None:
    answer["stop_reason"] = "banana"


def _message_role(answer: JSONObject) -> None:
    answer["role"] = "bot"


def _created_at_type(answer: JSONObject) -> None:
    answer["created_at"] = str(answer["created_at"])


def _tokens_type(answer: JSONObject) -> None:
    answer["usage"]["output_tokens"] = str(answer["usage"]["output_tokens"])


def _embedding_dim(answer: JSONObject) -> None:
    answer["data"][-1]["embedding"].pop()


def _embedding_count(answer: JSONObject) -> None:
    answer["data"].pop()


def _model_id(answer: JSONObject) -> None:
    del answer["data"][0]["id"]


# fault -> kind of answer -> how it breaks that answer.
ANSWER_FAULTS: dict[str, dict[str, Callable[[JSONObject], None]]] = {
    "finish_reason": {
        "chat.completion": _finish_reason,
        "response": _response_status,
        "message": _stop_reason,
    },
    "no_finish": {"chat.completion": _no_finish},
    "missing_id": {
        "chat.completion": _missing_id,
        "model": _model_id,
        "response": _missing_id,
        "message": _missing_id,
    },
    "created_type": {"chat.completion": _created_type, "response": _created_at_type},
    "role": {"chat.completion": _role, "message": _message_role},
    "usage_sum": {"chat.completion": _usage_sum, "embedding": _usage_sum, "response": _usage_sum},
    "tokens_type": {"message": _tokens_type},
    "embedding_dim": {"embedding": _embedding_dim},
    "embedding_count": {"embedding": _embedding_count},
}


def break_answer(answer: JSONObject, fault: str) -> JSONObject | None:
    """A copy of the whole answer with ``fault``'s field broken; None if the fault does not
    concern this kind of answer."""
    breaks = ANSWER_FAULTS.get(fault, {}).get(_kind(answer))
    if breaks is None:
        return None
    broken = copy.deepcopy(answer)
    breaks(broken)
    return broken


def _kind(answer: JSONObject) -> str:
    """The answer's ``object`` (a Messages answer's ``type``); for a list, its entries'
    (``embedding``, ``model``)."""
    kind = str(answer.get("object", answer.get("type")))
    data = answer.get("data")
    if kind == "list" and isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("object"))
    return kind


# --- streamed answers: their server-sent events, as sent ----------------------------------

Event = tuple[int, str | None, JSONObject]  # line number, event name (chat's are unnamed), data
Lines = list[bytes]
StreamBreak = Callable[[Lines], None]


def _events(lines: Lines) -> list[Event]:
    """Every JSON event, named (``event: x`` then ``data: {...}``) or not."""
    events = []
    for i, line in enumerate(lines):
        name, _, data = line.partition(b"data: ")
        if data.startswith(b"{"):
            named = name.removeprefix(b"event: ").strip().decode() or None
            events.append((i, named, json.loads(data)))
    return events


def _stream_api(lines: Lines) -> str:
    """chat, responses or messages, by the first event's name."""
    first = _events(lines)[0][1] or ""
    return {"response.created": "responses", "message_start": "messages"}.get(first, "chat")


def _change(pick: Callable[[Lines], Event], change: Callable[[JSONObject], None]) -> StreamBreak:
    """Break the field ``change`` breaks in the event ``pick`` finds, and only there."""

    def breaks(lines: Lines) -> None:
        i, name, event = pick(lines)
        change(event)
        lines[i] = sse(event, name)

    return breaks


def _last_with_choices(lines: Lines) -> Event:
    return [e for e in _events(lines) if e[2].get("choices")][-1]


def _second_with_choices(lines: Lines) -> Event:
    return [e for e in _events(lines) if e[2].get("choices")][1]  # after the one with the role


def _first(lines: Lines) -> Event:
    return _events(lines)[0]


def _named(name: str) -> Callable[[Lines], Event]:
    def pick(lines: Lines) -> Event:
        return next(e for e in _events(lines) if e[1] == name)

    return pick


def _with_usage(lines: Lines) -> Event:
    return next(e for e in _events(lines) if e[2].get("usage"))


def _finish(reason: str | None) -> Callable[[JSONObject], None]:
    def change(chunk: JSONObject) -> None:
        chunk["choices"][0]["finish_reason"] = reason

    return change


def _chunk_type(chunk: JSONObject) -> None:
    chunk["object"] = "chat.completion"


def _delta_role(chunk: JSONObject) -> None:
    chunk["choices"][0]["delta"]["role"] = "bot"


def _inner(key: str, change: Callable[[JSONObject], None]) -> Callable[[JSONObject], None]:
    """``change`` applied to the object an event carries (``response``, ``message``, ``delta``)."""
    return lambda event: change(event[key])


def _no_done(lines: Lines) -> None:
    lines.remove(DONE)


# fault -> streamed API -> how it breaks that stream.
STREAM_FAULTS: dict[str, dict[str, StreamBreak]] = {
    "finish_reason": {
        "chat": _change(_last_with_choices, _finish("banana")),
        "responses": _change(_named("response.completed"), _inner("response", _response_status)),
        "messages": _change(_named("message_delta"), _inner("delta", _stop_reason)),
    },
    "no_finish": {"chat": _change(_last_with_choices, _finish(None))},
    "missing_id": {
        "chat": _change(_first, _missing_id),
        "responses": _change(_first, _inner("response", _missing_id)),
        "messages": _change(_first, _inner("message", _missing_id)),
    },
    "created_type": {
        "chat": _change(_first, _created_type),
        "responses": _change(_first, _inner("response", _created_at_type)),
    },
    "role": {
        "chat": _change(_first, _delta_role),
        "messages": _change(_first, _inner("message", _message_role)),
    },
    "usage_sum": {
        "chat": _change(_with_usage, _usage_sum),
        "responses": _change(_named("response.completed"), _inner("response", _usage_sum)),
    },
    "tokens_type": {"messages": _change(_named("message_delta"), _tokens_type)},
    "chunk_type": {"chat": _change(_second_with_choices, _chunk_type)},
    "no_done": {"chat": _no_done},
}


def break_stream(events: StreamEvents, fault: str) -> StreamEvents | None:
    """The stream with ``fault``'s field broken; None if the fault does not concern its API."""
    lines = [*events.head, *events.deltas, *events.tail]
    breaks = STREAM_FAULTS.get(fault, {}).get(_stream_api(lines))
    if breaks is None:
        return None
    breaks(lines)  # changes lines in place; only no_done drops one, the last of the tail
    ends = (len(events.head), len(events.head) + len(events.deltas))
    return replace(
        events, head=lines[: ends[0]], deltas=lines[ends[0] : ends[1]], tail=lines[ends[1] :]
    )
