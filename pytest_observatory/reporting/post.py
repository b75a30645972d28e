"""POST a JSON body to a webhook, bounded in time, retried when the service asks for it.

A notification must never hang or fail a run: each attempt has its own timeout, 429 and 5xx
answers (and timeouts, refused connections) are retried with exponential backoff or after the
service's ``Retry-After``, and the whole post gives up once its time budget would be exceeded.
The outcome is data for one summary line; exception texts are never shown, since requests puts
the URL (the webhook's secret) in them.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..redact import scrub

if TYPE_CHECKING:
    import requests

ATTEMPT_TIMEOUT_S = 10.0
BUDGET_S = 30.0
FIRST_BACKOFF_S = 1.0
DETAIL_CHARS = 100
JOIN_GRACE_S = 0.5


@dataclass(frozen=True)
class PostOutcome:
    ok: bool
    attempts: int
    elapsed_s: float
    detail: str  # what the last attempt got: "HTTP 200", "HTTP 500: no_service", "no answer ..."


def post_json(
    url: str,
    body: bytes,
    secrets: Iterable[str | None] = (),
    attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
    budget_s: float = BUDGET_S,
) -> PostOutcome:
    import requests  # on first use: a run without a webhook never loads it

    secrets = tuple(secrets)
    start = time.monotonic()
    backoff_s = FIRST_BACKOFF_S
    attempts = 0
    while True:
        attempts += 1
        timeout_s = max(0.1, min(attempt_timeout_s, budget_s - (time.monotonic() - start)))
        retry_after: float | None = None
        try:
            response = _post_within(url, body, timeout_s)
        except requests.Timeout:
            detail = f"no answer within {timeout_s:.3g}s"
        except requests.RequestException as exc:
            detail = f"connection failed ({type(exc).__name__})"
        except Exception as exc:  # whatever it is, a notification must not end the session
            detail = f"request failed ({type(exc).__name__})"
        else:
            detail = f"HTTP {response.status_code}"
            text = scrub(response.text.strip()[:DETAIL_CHARS], secrets)
            if text and not response.ok:
                detail += f": {text}"
            if response.ok:
                return PostOutcome(True, attempts, time.monotonic() - start, detail)
            if response.status_code != 429 and response.status_code < 500:
                return PostOutcome(False, attempts, time.monotonic() - start, detail)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait_s = backoff_s if retry_after is None else retry_after
        backoff_s *= 2
        remaining_s = budget_s - (time.monotonic() - start)
        if wait_s >= remaining_s:
            if retry_after is not None:
                detail += f" (Retry-After {retry_after:g}s is past the {budget_s:g}s bound)"
            return PostOutcome(False, attempts, time.monotonic() - start, detail)
        time.sleep(wait_s)


def _post_within(url: str, body: bytes, timeout_s: float) -> requests.Response:
    """requests' timeout bounds each socket wait, not the whole answer: a server that trickles
    bytes could hold it for ever. The attempt runs in a daemon thread that is abandoned once
    ``timeout_s`` has passed."""
    import requests

    outcome: list[requests.Response | BaseException] = []

    def send() -> None:
        try:
            outcome.append(
                requests.post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=timeout_s,
                    allow_redirects=False,
                )
            )
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=send, name="observatory-post", daemon=True)
    thread.start()
    thread.join(timeout_s + JOIN_GRACE_S)
    if not outcome:
        raise requests.Timeout()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait: ``Retry-After`` is either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
