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


# --- streamed chat completions: the answer's server-sent events, as sent ---------------------


def _chunks(lines: list[bytes]) -> list[tuple[int, JSONObject]]:
    """(line number, chunk) of every JSON event."""
    return [
        (i, json.loads(line[len(b"data: ") :]))
        for i, line in enumerate(lines)
        if line.startswith(b"data: {")
    ]


def _with_choices(lines: list[bytes]) -> list[tuple[int, JSONObject]]:
    return [(i, chunk) for i, chunk in _chunks(lines) if chunk.get("choices")]


def _stream_finish(reason: str | None) -> Callable[[list[bytes]], None]:
    def breaks(lines: list[bytes]) -> None:
        i, chunk = _with_choices(lines)[-1]
        chunk["choices"][0]["finish_reason"] = reason
        lines[i] = sse(chunk)

    return breaks


def _first_chunk(change: Callable[[JSONObject], None]) -> Callable[[list[bytes]], None]:
    def breaks(lines: list[bytes]) -> None:
        i, chunk = _chunks(lines)[0]
        change(chunk)
        lines[i] = sse(chunk)

    return breaks


def _chunk_type(lines: list[bytes]) -> None:
    i, chunk = _with_choices(lines)[1]  # a content chunk, after the one with the role
    chunk["object"] = "chat.completion"
    lines[i] = sse(chunk)


def _stream_usage_sum(lines: list[bytes]) -> None:
    for i, chunk in _chunks(lines):
        if chunk.get("usage"):
            _usage_sum(chunk)
            lines[i] = sse(chunk)


def _no_done(lines: list[bytes]) -> None:
    lines.remove(DONE)


def _delta_role(chunk: JSONObject) -> None:
    chunk["choices"][0]["delta"]["role"] = "bot"


STREAM_FAULTS: dict[str, Callable[[list[bytes]], None]] = {
    "finish_reason": _stream_finish("banana"),
    "no_finish": _stream_finish(None),
    "missing_id": _first_chunk(_missing_id),
    "created_type": _first_chunk(_created_type),
    "role": _first_chunk(_delta_role),
    "usage_sum": _stream_usage_sum,
    "chunk_type": _chunk_type,
    "no_done": _no_done,
}


def break_stream(events: StreamEvents, fault: str) -> StreamEvents | None:
    """The stream with ``fault``'s field broken; None if the fault does not concern it (it
    concerns chat streams, whose events are unnamed ``data:`` lines)."""
    breaks = STREAM_FAULTS.get(fault)
    lines = [*events.head, *events.deltas, *events.tail]
    if breaks is None or not _chunks(lines):
        return None
    breaks(lines)  # changes lines in place; only no_done drops one, the last of the tail
    ends = (len(events.head), len(events.head) + len(events.deltas))
    return replace(
        events, head=lines[: ends[0]], deltas=lines[ends[0] : ends[1]], tail=lines[ends[1] :]
    )
