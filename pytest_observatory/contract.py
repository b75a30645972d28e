"""API contract checks: every answer a gateway sends, held against the API's published shape.

The schema is the SDKs' own: the ``openai`` package's pydantic types (chat completions and their
chunks, embeddings, models, the Responses API and its stream events) and the ``anthropic``
package's (Messages and their stream events). Both are generated from their vendors' API specs
and released with every API change, so a gateway that answers what the official SDKs accept
passes, and none of it is a field list we would have to keep up to date by hand.

The SDKs themselves never validate (they build their objects without it), and their models'
default (lax) mode coerces ``"123"`` to ``123`` and ``true`` to ``1``, so we validate in strict
mode. What no type can say is checked here by hand: the usage arithmetic, one embedding per
input of one dimension, a stream's terminator, one id across a stream's chunks, a stop reason at
the end of a stream.

pydantic and the SDKs are imported on the first validation: loading the plugin stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import DeploymentError

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

MAX_VALUE_CHARS = 80
# kind -> (module, class) of the SDK type a whole answer is validated against.
_TYPES = {
    "chat.completion": ("openai.types.chat", "ChatCompletion"),
    "chat.completion.chunk": ("openai.types.chat", "ChatCompletionChunk"),
    "embeddings": ("openai.types", "CreateEmbeddingResponse"),
    "models": ("openai.types", "Model"),  # each entry of the list's ``data``
    "response": ("openai.types.responses", "Response"),
    "message": ("anthropic.types", "Message"),
}
# kind -> (module, name) of the SDK's union of stream events, told apart by their ``type``.
_EVENTS = {
    "response.event": ("openai.types.responses", "ResponseStreamEvent"),
    "message.event": ("anthropic.types", "RawMessageStreamEvent"),
}
KINDS = (*_TYPES, *_EVENTS)


class ContractViolation(DeploymentError):
    """An answer that breaks the API's contract: ``where`` (the kind of answer, and the event's
    number in a stream) and ``what`` (the field path, its value and what is wrong)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}", "contract")
        self.where = where
        self.what = what


def validate(kind: str, payload: object, *, inputs: int | None = None) -> None:
    """Raise :class:`ContractViolation` unless ``payload`` (parsed JSON) is a valid ``kind``
    (one of :data:`KINDS`). ``inputs``: for ``embeddings``, how many texts were sent."""
    _CHECKS.get(kind, _unknown_kind)(kind, payload, inputs)


def prepare(kinds: Sequence[str] = KINDS) -> None:
    """Import the schemas and build their validators now (seconds on a busy machine; the
    SDKs defer the building to each type's first validation, which inside a stream would land
    between two timed tokens), before a check's clock starts rather than in its first probe."""
    for kind in kinds:
        (_event_types if kind in _EVENTS else _model)(kind)


# --- whole answers ------------------------------------------------------------------------


def _chat_completion(kind: str, payload: object, inputs: int | None) -> None:
    _strict(kind, payload)
    assert isinstance(payload, dict)
    if not payload["choices"]:
        _violation(kind, "choices = []: a completion has at least one choice")
    _distinct_indexes(kind, payload["choices"], "choices")
    _usage_sum(kind, payload.get("usage"), "usage")


def _chunk(kind: str, payload: object, inputs: int | None) -> None:
    _strict(kind, payload)
    assert isinstance(payload, dict)
    _distinct_indexes(kind, payload["choices"], "choices")
    _usage_sum(kind, payload.get("usage"), "usage")


def _embeddings(kind: str, payload: object, inputs: int | None) -> None:
    _strict(kind, payload)
    assert isinstance(payload, dict)
    data = payload["data"]
    if inputs is not None and len(data) != inputs:
        _violation(kind, f"data has {len(data)} embeddings for {inputs} inputs")
    if not data:
        _violation(kind, "data = []: no embedding")
    indexes = sorted(entry["index"] for entry in data)
    if indexes != list(range(len(data))):
        _violation(kind, f"data[].index = {_excerpt(indexes)}, expected 0 to {len(data) - 1}")
    dimension = len(data[0]["embedding"])
    if not dimension:
        _violation(kind, "data[0].embedding = []: an embedding has at least one dimension")
    for i, entry in enumerate(data):
        vector = entry["embedding"]
        if len(vector) != dimension:
            _violation(
                kind,
                f"data[{i}].embedding has {len(vector)} dimensions, data[0].embedding {dimension}",
            )
        for j, value in enumerate(vector):
            if not math.isfinite(value):
                _violation(kind, f"data[{i}].embedding[{j}] = {value!r} is not a finite number")
    _usage_sum(kind, payload["usage"], "usage")


def _models(kind: str, payload: object, inputs: int | None) -> None:
    if not isinstance(payload, dict):
        _violation(kind, f"body = {_excerpt(payload)}: expected an object")
    if payload.get("object") != "list":
        _violation(kind, f"{_shown(payload, 'object')}, expected 'list'")
    data = payload.get("data")
    if not isinstance(data, list):
        _violation(kind, f"data = {_excerpt(data)}: expected a list of models")
    for i, entry in enumerate(data):
        _strict(kind, entry, f"data[{i}]")


def _response(kind: str, payload: object, inputs: int | None) -> None:
    _strict(kind, payload)
    assert isinstance(payload, dict)
    _usage_sum(kind, payload.get("usage"), "usage", ("input_tokens", "output_tokens"))


def _message(kind: str, payload: object, inputs: int | None) -> None:
    _strict(kind, payload)


def _response_event(kind: str, payload: object, inputs: int | None) -> None:
    _event(kind, payload)
    assert isinstance(payload, dict)
    if isinstance(payload.get("response"), dict):
        usage = payload["response"].get("usage")
        _usage_sum(kind, usage, "response.usage", ("input_tokens", "output_tokens"))


def _message_event(kind: str, payload: object, inputs: int | None) -> None:
    """Anthropic's versioning policy adds event types and asks clients to pass over the ones
    they do not know (``ping`` is one the SDK's union leaves out; ``error`` ends a stream and is
    the stream reader's to report): only the known ones are held to their schema."""
    kind_of_event = payload.get("type") if isinstance(payload, dict) else None
    if isinstance(kind_of_event, str) and kind_of_event not in _event_types(kind):
        return
    _event(kind, payload)


def _unknown_kind(kind: str, payload: object, inputs: int | None) -> None:
    raise ValueError(f"unknown contract kind {kind!r} (known: {', '.join(KINDS)})")


_CHECKS: Mapping[str, Callable[[str, object, int | None], None]] = {
    "chat.completion": _chat_completion,
    "chat.completion.chunk": _chunk,
    "embeddings": _embeddings,
    "models": _models,
    "response": _response,
    "message": _message,
    "response.event": _response_event,
    "message.event": _message_event,
}


# --- streams ------------------------------------------------------------------------------


class StreamContract:
    """A stream, checked event by event as the reader parses them (``event``), then as a whole
    (``end``). Each API's subclass knows its terminator and what must have arrived by then."""

    kind = ""
    terminator = ""

    def __init__(self) -> None:
        self.events = 0

    def event(self, payload: object) -> None:
        self.events += 1
        try:
            validate(self.kind, payload)
        except ContractViolation as exc:
            raise ContractViolation(self.where, exc.what) from None
        assert isinstance(payload, dict)
        self._track(payload)

    def end(self, done: bool) -> None:
        """The stream ended cleanly (no transport fault); ``done``: its terminator arrived."""
        if not done:
            raise ContractViolation(
                f"{self.kind} stream", f"ended without {self.terminator} after {self.events} events"
            )
        self._complete()

    @property
    def where(self) -> str:
        return f"{self.kind} {self.events}"

    def _track(self, payload: dict[str, Any]) -> None:
        """What the whole stream must show, taken from each event."""

    def _complete(self) -> None:
        """The whole stream's checks, once its terminator arrived."""

    def _fail(self, what: str) -> typing.NoReturn:
        raise ContractViolation(self.where, what)


class ChatStreamContract(StreamContract):
    """``data: [DONE]`` ends the stream; every chunk carries the same ``id`` ("each chunk has
    the same ID", the API reference says); every choice gets a ``finish_reason``, and no content
    after it. (Not "in the last chunk with choices": LiteLLM's usage chunk repeats the choice
    with an empty delta and no reason, which the SDKs read without complaint.)"""

    kind = "chat.completion.chunk"
    terminator = "data: [DONE]"

    def __init__(self) -> None:
        super().__init__()
        self._id: str | None = None
        self._finished: dict[int, bool] = {}  # choice index -> its finish_reason arrived

    def _track(self, payload: dict[str, Any]) -> None:
        if self._id is None:
            self._id = payload["id"]
        elif payload["id"] != self._id:
            self._fail(f"id = {_excerpt(payload['id'])} differs from the first chunk's")
        for i, choice in enumerate(payload["choices"]):
            index, delta = choice["index"], choice["delta"]
            if self._finished.get(index) and (delta.get("content") or delta.get("tool_calls")):
                self._fail(f"choices[{i}].delta: content after index {index}'s finish_reason")
            finished = choice.get("finish_reason") is not None
            self._finished[index] = self._finished.get(index, False) or finished

    def _complete(self) -> None:
        if not self._finished:
            raise ContractViolation(f"{self.kind} stream", "no chunk with choices")
        unfinished = sorted(index for index, done in self._finished.items() if not done)
        if unfinished:
            raise ContractViolation(
                f"{self.kind} stream",
                f"choices[].finish_reason: none for index {unfinished[0]} in {self.events} chunks",
            )


class ResponsesStreamContract(StreamContract):
    """Events numbered by an increasing ``sequence_number``; ``response.completed`` (or
    ``response.incomplete``) ends the stream."""

    kind = "response.event"
    terminator = "response.completed"

    def __init__(self) -> None:
        super().__init__()
        self._sequence = -1

    def _track(self, payload: dict[str, Any]) -> None:
        number = payload["sequence_number"]
        if number <= self._sequence:
            self._fail(f"sequence_number = {number} after {self._sequence}")
        self._sequence = number


class MessagesStreamContract(StreamContract):
    """``message_start`` first, content block deltas only inside their block, a stop reason in a
    ``message_delta``, ``message_stop`` last."""

    kind = "message.event"
    terminator = "message_stop"

    def __init__(self) -> None:
        super().__init__()
        self._open: set[int] = set()
        self._stop_reason: str | None = None

    def _track(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if self.events == 1 and kind != "message_start":
            self._fail(f"type = {_excerpt(kind)}, expected 'message_start' first")
        if kind == "content_block_start":
            self._open.add(payload["index"])
        elif kind in ("content_block_delta", "content_block_stop"):
            if payload["index"] not in self._open:
                self._fail(f"index = {payload['index']}: no content block open at that index")
            if kind == "content_block_stop":
                self._open.discard(payload["index"])
        elif kind == "message_delta":
            self._stop_reason = payload["delta"].get("stop_reason") or self._stop_reason

    def _complete(self) -> None:
        if self._stop_reason is None:
            raise ContractViolation(f"{self.kind} stream", "no message_delta with a stop_reason")


STREAMS: Mapping[str, type[StreamContract]] = {
    "chat": ChatStreamContract,
    "responses": ResponsesStreamContract,
    "messages": MessagesStreamContract,
}


def stream_contract(api: str) -> StreamContract:
    """A fresh checker for one stream of ``api`` (chat, responses, messages), its schemas
    imported now: before the request is sent, not while its first token is timed."""
    contract = STREAMS[api]()
    prepare((contract.kind,))
    return contract


# --- hand-made checks ---------------------------------------------------------------------


def _usage_sum(
    kind: str,
    usage: object,
    path: str,
    parts: tuple[str, str] = ("prompt_tokens", "completion_tokens"),
) -> None:
    """``total_tokens`` = the two parts, where the answer reports a total (an embeddings
    answer has no completion tokens: its total is its prompt's)."""
    if not isinstance(usage, dict) or usage.get("total_tokens") is None:
        return
    counts: list[Any] = [usage.get(parts[0]), usage.get(parts[1]) or 0, usage["total_tokens"]]
    if not all(isinstance(count, int) and count >= 0 for count in counts):
        shown = {name: usage.get(name) for name in (*parts, "total_tokens")}
        _violation(kind, f"{path} = {_excerpt(shown)}: token counts must be integers >= 0")
    first, second, total = counts
    if total != first + second:
        _violation(
            kind,
            f"{path}.total_tokens = {total}, expected {parts[0]} + {parts[1]} = "
            f"{first} + {second} = {first + second}",
        )


def _distinct_indexes(kind: str, items: list[dict[str, Any]], path: str) -> None:
    seen: set[int] = set()
    for i, item in enumerate(items):
        if item["index"] in seen:
            _violation(kind, f"{path}[{i}].index = {item['index']} repeats")
        seen.add(item["index"])


def _violation(kind: str, what: str) -> typing.NoReturn:
    raise ContractViolation(kind, what)


# --- validation with the SDKs' types ------------------------------------------------------


def _strict(kind: str, payload: object, path: str = "") -> None:
    model = _model(kind)
    try:
        model.model_validate(payload, strict=True)
    except _validation_error() as exc:
        _violation(kind, _describe(exc, payload, path))


def _event(kind: str, payload: object) -> None:
    """Against the model its ``type`` names: the SDK's union of 50-odd event types, validated
    as one, would try every member for every event and report every member's mismatch."""
    if not isinstance(payload, dict):
        _violation(kind, f"body = {_excerpt(payload)}: expected an object")
    name = payload.get("type")
    model = _event_types(kind).get(name) if isinstance(name, str) else None
    if model is None:
        _violation(kind, _shown(payload, "type") + ("" if name is None else " is no event type"))
    try:
        model.model_validate(payload, strict=True)
    except _validation_error() as exc:
        _violation(kind, _describe(exc, payload))


@functools.cache
def _model(kind: str) -> type[BaseModel]:
    module, name = _TYPES[kind]
    model: type[BaseModel] = getattr(_import(module), name)
    model.model_rebuild(force=True)  # the SDKs defer it to the first validation
    return model


@functools.cache
def _event_types(kind: str) -> dict[str, type[BaseModel]]:
    """``type`` value -> the SDK's model of that event, from the members of its union."""
    module, name = _EVENTS[kind]
    union = getattr(_import(module), name)
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    members: dict[str, type[BaseModel]] = {}
    for member in typing.get_args(union):
        member.model_rebuild(force=True)  # deferred by the SDKs to the first validation
        for value in typing.get_args(member.model_fields["type"].annotation):
            members[value] = member
    return members


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # a core dependency, so only a broken installation gets here
        package = module.partition(".")[0]
        raise RuntimeError(
            f"contract checks need the {package} package ({exc}): "
            f"pip install 'pytest-observatory' with its dependencies, or pip install {package}"
        ) from None


def _validation_error() -> type[ValidationError]:
    from pydantic import ValidationError

    return ValidationError


# --- messages -----------------------------------------------------------------------------


def _describe(exc: ValidationError, payload: object, root: str = "") -> str:
    """The first relevant error, as ``path = value: what is wrong`` (and how many more).

    Inside an untagged union pydantic reports every member's mismatch; a member whose ``type``
    literal does not match the payload's is the wrong member, not the error, so its errors go.
    If every member is wrong, the error is the ``type`` itself: none of theirs.
    """
    located = [(*_path(error["loc"], payload), error) for error in exc.errors(include_url=False)]
    tags = [(path, branch, error) for path, branch, error in located if _is_tag(error, branch)]
    wrong = {branch for _, branch, _ in tags}
    relevant = [
        (path, error)
        for path, branch, error in located
        if not any(branch[: len(w)] == w for w in wrong)
    ]
    if not relevant:
        path, _, error = tags[0]
        expected = [name for at, _, tag in tags if at == path for name in _literals(tag)]
        error = {**error, "ctx": {"expected": repr(expected)}}
        relevant = [(path, error)]
    (path, error), more = relevant[0], len(relevant) - 1
    text = _error_text(_join(root, path) or "body", error)
    return text + (f" (and {more} more)" if more else "")


def _is_tag(error: Mapping[str, Any], branch: tuple[int | str, ...]) -> bool:
    return bool(branch) and error["type"] == "literal_error" and error["loc"][-1] == "type"


def _literals(error: Mapping[str, Any]) -> list[str]:
    """The values a literal_error expected, from its ``'a', 'b' or 'c'``."""
    return re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))


def _path(loc: tuple[int | str, ...], payload: object) -> tuple[str, tuple[int | str, ...]]:
    """The field path as a reader writes it (``choices[0].finish_reason``), found by walking the
    payload: a ``loc`` element that is no key of the value at that point names a union member,
    not a field. Also returns ``loc`` up to the last such member (empty if none)."""
    text = ""
    branch: tuple[int | str, ...] = ()
    value: Any = payload
    for depth, part in enumerate(loc):
        if isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value):
            text, value = f"{text}[{part}]", value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            text, value = _join(text, part), value[part]
        elif depth == len(loc) - 1:
            text = _join(text, str(part))  # a missing field
        else:
            branch = loc[: depth + 1]
    return text, branch


def _join(head: str, field: str) -> str:
    if not field:
        return head
    if not head or field.startswith("["):
        return head + field
    return f"{head}.{field}"


def _error_text(path: str, error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return f"{path} is missing"
    value = _excerpt(error.get("input"))
    if kind == "literal_error":
        expected = _literals(error)
        if len(expected) == 1:
            return f"{path} = {value}, expected {expected[0]!r}"
        return _excerpt_list(f"{path} = {value} is not one of ", expected)
    message = str(error["msg"])
    return f"{path} = {value}: {message[:1].lower()}{message[1:]}"


def _shown(payload: Mapping[str, Any], field: str) -> str:
    return f"{field} = {_excerpt(payload[field])}" if field in payload else f"{field} is missing"


def _excerpt_list(head: str, names: list[str]) -> str:
    """``head`` and as many names as fit in a message's one line."""
    shown = ", ".join(names)
    room = MAX_VALUE_CHARS * 2 - len(head)
    return head + (shown if len(shown) <= room else shown[: room - 1].rpartition(", ")[0] + ", …")


def _excerpt(value: object) -> str:
    """A value as it would be written in Python, cut to :data:`MAX_VALUE_CHARS`: enough to
    recognise, never a whole answer (a message is stored, and may be shown anywhere)."""
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
