"""Incremental parsing of the streamed answers of each API a gateway serves, timing every token.

The three APIs share server-sent events, stall and cut-off detection and the timing arithmetic
(TTFT, ITL, TPOT: :class:`StreamReader`); they differ in what an event means: which one carries
text, usage and the stop reason, and which one ends the stream (chat's ``data: [DONE]``, the
Responses API's ``response.completed``, the Messages API's ``message_stop``). A stream that ends
without its terminator was cut off, whatever the transport says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp

from .errors import DeploymentError
from .observe import StreamResult
from .stats import NS_PER_MS
from .transport import Stopwatch

JSONObject = dict[str, Any]


class StreamError(DeploymentError):
    """A stream that stalled, ended early or carried malformed data."""


class StreamReader:
    """One stream's SSE parsing and timing; subclasses read their API's events."""

    terminator = ""  # the event that ends a complete stream, for messages
    output_tokens_key = ""  # where the usage report counts the answer's tokens

    def __init__(self, watch: Stopwatch, timeout_s: float) -> None:
        self._watch = watch
        self._timeout_s = timeout_s
        self._text: list[str] = []
        self._content_times: list[int] = []
        self._data: list[str] = []
        self.bytes_in = 0
        self.chunks = 0
        self.done = False
        self.finish_reason: str | None = None
        self.usage: JSONObject | None = None
        self.ended_ns = 0

    async def read(self, response: aiohttp.ClientResponse) -> None:
        """Lines are split here rather than by aiohttp's line iterator, which gives up on a line
        over 512 KiB (``LineTooLong``): one event may legitimately carry a whole answer."""
        try:
            async with contextlib.aclosing(self._lines(response)) as lines:
                async for line in lines:
                    if self._feed(line):
                        break
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError):  # not builtin on 3.10
            raise StreamError(
                f"stream stalled: no data for {self._timeout_s:g}s after {self.chunks} chunks",
                "stream_stalled",
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise StreamError(
                f"stream cut off after {self.chunks} chunks: {type(exc).__name__}",
                "stream_truncated",
            ) from None
        if not self.done:
            raise StreamError(
                f"stream ended without {self.terminator} after {self.chunks} chunks",
                "stream_truncated",
            )
        self.ended_ns = time.perf_counter_ns()

    async def _lines(self, response: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
        partial: list[bytes] = []  # pieces of a line not ended yet: joined once, not re-copied
        async for chunk in response.content.iter_any():
            self.bytes_in += len(chunk)
            *ended, rest = chunk.split(b"\n")
            for piece in ended:
                partial.append(piece)
                line, partial = b"".join(partial), []
                yield line.decode("utf-8", errors="replace").rstrip("\r")
            if rest:
                partial.append(rest)

    def _feed(self, line: str) -> bool:
        """One SSE line; True once the stream's terminator arrived."""
        if line:
            if line.startswith(":"):
                return False  # comment / keep-alive
            field, _, value = line.partition(":")
            if field == "data":
                self._data.append(value[1:] if value.startswith(" ") else value)
            elif field not in ("event", "id", "retry"):
                raise StreamError(f"bad SSE line: {line[:60]!r}", "bad_sse")
            return False
        if not self._data:
            return False
        data, self._data = "\n".join(self._data), []
        return self._data_event(data)

    def _data_event(self, data: str) -> bool:
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise StreamError(f"bad SSE data: {data[:60]!r}", "bad_sse") from None
        if not isinstance(event, dict):
            raise StreamError(f"bad SSE data: {data[:60]!r}", "bad_sse")
        self.chunks += 1
        self.done = self._event(event)
        return self.done

    def _event(self, event: JSONObject) -> bool:
        """Read one parsed event; True if it ends the stream."""
        raise NotImplementedError

    def _content(self, text: object) -> None:
        if isinstance(text, str) and text:
            self._text.append(text)
            self._content_times.append(time.perf_counter_ns())

    def _failed(self, error: object) -> StreamError:
        """A gateway whose upstream failed mid-stream says so in-band (LiteLLM, vLLM), then
        ends the stream: without this, a terminator after it would pass for a good answer."""
        return StreamError(
            f"stream ended by an error event after {self.chunks - 1} chunks: "
            f"{error_message(error)}",
            "stream_truncated",
        )

    def result(self) -> StreamResult:
        times = self._content_times
        if not times:
            raise StreamError("stream carried no content", "bad_response")
        started = self._watch.sent_ns  # queueing is the client's
        ttft_ns = times[0] - started
        total_ns = self.ended_ns - started
        gaps = tuple((b - a) / NS_PER_MS for a, b in itertools.pairwise(times))
        usage_tokens = (self.usage or {}).get(self.output_tokens_key)
        if isinstance(usage_tokens, int) and usage_tokens > 0:
            tokens, source = usage_tokens, "usage"
        else:
            tokens, source = len(times), "chunks"
        return StreamResult(
            text="".join(self._text),
            finish_reason=self.finish_reason,
            usage=self.usage,
            ttft_ms=ttft_ns / NS_PER_MS,
            itl_ms=gaps,
            tpot_ms=(total_ns - ttft_ns) / NS_PER_MS / (tokens - 1) if tokens > 1 else None,
            output_tokens=tokens,
            tokens_source=source,
            tokens_per_s=tokens / (total_ns / 1e9) if total_ns > 0 else 0.0,
            total_ms=total_ns / NS_PER_MS,
        )


class ChatStream(StreamReader):
    """``/v1/chat/completions``: content in ``choices[].delta``, ended by ``data: [DONE]``."""

    terminator = "[DONE]"
    output_tokens_key = "completion_tokens"

    def _data_event(self, data: str) -> bool:
        if data == "[DONE]":
            self.done = True
            return True
        return super()._data_event(data)

    def _event(self, event: JSONObject) -> bool:
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise StreamError(f"bad SSE data: choices={choices!r:.40}", "bad_sse")
        if event.get("error") and not choices:
            raise self._failed(event["error"])
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        for choice in choices:
            self._content((choice.get("delta") or {}).get("content"))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return False


class ResponsesStream(StreamReader):
    """``/v1/responses``: text in ``response.output_text.delta`` events; ``response.completed``
    carries the usage and ends the stream (``response.incomplete`` too, with its reason)."""

    terminator = "response.completed"
    output_tokens_key = "output_tokens"

    def _event(self, event: JSONObject) -> bool:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            self._content(event.get("delta"))
        elif kind in ("error", "response.failed"):
            response = event.get("response") or {}
            raise self._failed(event if kind == "error" else response.get("error"))
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            usage = response.get("usage")
            self.usage = usage if isinstance(usage, dict) else None
            self.finish_reason = response.get("status")
            return True
        return False


class MessagesStream(StreamReader):
    """``/v1/messages`` (Anthropic): text in ``content_block_delta`` events, input tokens in
    ``message_start``, the stop reason and output tokens in ``message_delta``, ended by
    ``message_stop``."""

    terminator = "message_stop"
    output_tokens_key = "output_tokens"

    def _event(self, event: JSONObject) -> bool:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._content(delta.get("text"))
        elif kind == "message_start":
            usage = (event.get("message") or {}).get("usage")
            self.usage = dict(usage) if isinstance(usage, dict) else {}
        elif kind == "message_delta":
            self.finish_reason = (event.get("delta") or {}).get("stop_reason")
            if isinstance(event.get("usage"), dict):
                self.usage = {**(self.usage or {}), **event["usage"]}
        elif kind == "error":
            raise self._failed(event.get("error"))
        return kind == "message_stop"


def error_message(error: object) -> str:
    """The message of an ``error`` member (an object or a plain string)."""
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return error if isinstance(error, str) else json.dumps(error)[:160]
