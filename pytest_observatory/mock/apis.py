"""The mock's answers in each API's own shape: OpenAI chat completions, the OpenAI Responses API
and the Anthropic Messages API, whole or as the server-sent events each API streams.

The shapes follow the APIs' references (and are checked against the ``openai`` and ``anthropic``
packages' types in tests/test_mock_apis.py): a suite that passes against the mock must meet the
same fields a real gateway sends. The server (server.py) only decides *when* events go out and
which fault cuts them; what they say lives here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSONObject = dict[str, Any]
STREAM_ERROR = "mock stream error (injected)"


@dataclass(frozen=True)
class StreamEvents:
    """A streamed answer: ``head`` goes out at once, one of ``deltas`` per token (paced by
    ``token_rate``, cut by a stream fault), then ``tail``; ``error`` is the API's in-band error
    event, which a gateway sends when its upstream fails mid-stream."""

    head: list[bytes]
    deltas: list[bytes]
    tail: list[bytes]
    error: bytes


# (request body, the answer's tokens, a serial number for ids) -> the whole answer or its events
Answerer = Callable[[JSONObject, list[str], int], "JSONObject | StreamEvents"]


def sse(event: JSONObject, name: str | None = None) -> bytes:
    """One server-sent event; Responses and Messages name theirs (``event: <type>``)."""
    prefix = f"event: {name}\n" if name else ""
    return f"{prefix}data: {json.dumps(event)}\n\n".encode()


def pieces(words: list[str]) -> list[str]:
    """The text deltas: the words with the spaces between them, which join to the whole text."""
    return [(" " if i else "") + word for i, word in enumerate(words)]


def text_tokens(value: object) -> int:
    """Whitespace-separated words of a prompt in any of the APIs' input forms (a string, a list
    of messages whose content is a string or a list of text parts)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(text_tokens(item) for item in value)
    if isinstance(value, dict):
        return text_tokens(value.get("content", value.get("text", "")))
    return 0


def chat_answer(body: JSONObject, words: list[str], serial: int) -> JSONObject | StreamEvents:
    completion_id = f"chatcmpl-mock-{serial}"
    prompt = text_tokens(body["messages"])
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": len(words),
        "total_tokens": prompt + len(words),
    }
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return chat_events(completion_id, body["model"], words, usage, include_usage)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces(words))},
                "finish_reason": "length",
            }
        ],
        "usage": usage,
    }


def chat_events(
    completion_id: str, model: str, words: list[str], usage: JSONObject, include_usage: bool
) -> StreamEvents:
    created = int(time.time())

    def chunk(delta: JSONObject, finish: str | None = None) -> JSONObject:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    tail = [chunk({}, "length")]
    if include_usage:
        tail.append({**chunk({}), "choices": [], "usage": usage})
    return StreamEvents(
        head=[sse(chunk({"role": "assistant", "content": ""}))],
        deltas=[sse(chunk({"content": piece})) for piece in pieces(words)],
        tail=[*(sse(event) for event in tail), b"data: [DONE]\n\n"],
        error=sse({"error": {"message": STREAM_ERROR, "code": 500}}),
    )


# --- OpenAI Responses API (POST /v1/responses) ------------------------------------------------


def responses_answer(body: JSONObject, words: list[str], serial: int) -> JSONObject | StreamEvents:
    response_id = f"resp_mock{serial}"
    usage = responses_usage(text_tokens(body["input"]), len(words))
    if body.get("stream"):
        return responses_events(response_id, body["model"], words, usage)
    return response_object(response_id, body["model"], "".join(pieces(words)), usage)


def responses_usage(input_tokens: int, output_tokens: int) -> JSONObject:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(
    response_id: str, model: str, text: str | None, usage: JSONObject | None
) -> JSONObject:
    """A ``response`` object: completed with its output message, or (``text`` None) the
    in-progress one the stream starts with."""
    output = []
    if text is not None:
        output.append(_output_message(response_id, "completed", [_output_text(text)]))
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed" if text is not None else "in_progress",
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "usage": usage,
    }


def _output_message(response_id: str, status: str, content: list[JSONObject]) -> JSONObject:
    return {
        "type": "message",
        "id": f"msg_{response_id}",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _output_text(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def responses_events(
    response_id: str, model: str, words: list[str], usage: JSONObject
) -> StreamEvents:
    """response.created, in_progress, the output item and its text part opened, one
    ``response.output_text.delta`` per token, everything closed, ``response.completed``."""
    counter = iter(range(1_000_000))
    item_id = f"msg_{response_id}"
    text = "".join(pieces(words))

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(counter), **fields}, kind)

    part = {"item_id": item_id, "output_index": 0, "content_index": 0}
    started = response_object(response_id, model, None, None)
    head = [
        event("response.created", response=started),
        event("response.in_progress", response=started),
        event(
            "response.output_item.added",
            output_index=0,
            item=_output_message(response_id, "in_progress", []),
        ),
        event("response.content_part.added", **part, part=_output_text("")),
    ]
    deltas = [
        event("response.output_text.delta", **part, delta=piece, logprobs=[])
        for piece in pieces(words)
    ]
    tail = [
        event("response.output_text.done", **part, text=text, logprobs=[]),
        event("response.content_part.done", **part, part=_output_text(text)),
        event(
            "response.output_item.done",
            output_index=0,
            item=_output_message(response_id, "completed", [_output_text(text)]),
        ),
        event("response.completed", response=response_object(response_id, model, text, usage)),
    ]
    error = event("error", code="server_error", message=STREAM_ERROR, param=None)
    return StreamEvents(head, deltas, tail, error)


# --- Anthropic Messages API (POST /v1/messages) -----------------------------------------------


def messages_answer(body: JSONObject, words: list[str], serial: int) -> JSONObject | StreamEvents:
    message_id = f"msg_mock{serial}"
    prompt = text_tokens(body["messages"]) + text_tokens(body.get("system", ""))
    if body.get("stream"):
        return messages_events(message_id, body["model"], words, prompt)
    text = "".join(pieces(words))
    return message_object(message_id, body["model"], text, prompt, len(words))


def message_object(
    message_id: str, model: str, text: str | None, input_tokens: int, output_tokens: int
) -> JSONObject:
    """A ``message``: whole, or (``text`` None) the empty one ``message_start`` carries."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": None if text is None else "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def messages_events(
    message_id: str, model: str, words: list[str], input_tokens: int
) -> StreamEvents:
    """message_start, content_block_start, a ping, one ``content_block_delta`` per token,
    content_block_stop, message_delta (stop reason, output tokens), message_stop."""

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, kind)

    head = [
        event("message_start", message=message_object(message_id, model, None, input_tokens, 1)),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        event("ping"),
    ]
    deltas = [
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        for piece in pieces(words)
    ]
    tail = [
        event("content_block_stop", index=0),
        event(
            "message_delta",
            delta={"stop_reason": "max_tokens", "stop_sequence": None},
            usage={"output_tokens": len(words)},
        ),
        event("message_stop"),
    ]
    error = event("error", error={"type": "api_error", "message": STREAM_ERROR})
    return StreamEvents(head, deltas, tail, error)
