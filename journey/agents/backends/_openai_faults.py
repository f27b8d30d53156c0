"""Faults of an OpenAI-compatible server or the wire: which to retry, and how to say them.

Retried: timeouts, connection errors, HTTP 408/409/429 and every 5xx, and 200 answers
whose body cannot be read. Other 4xx answers are the request's fault and are not. A
fault is described in one line (a server's multi-line message is folded), and a
server's `retry-after-ms` or `Retry-After` (seconds or an HTTP date) says how long to
wait before the next attempt.
"""

from __future__ import annotations

import email.utils
import json
import math
import time

import openai

__all__ = [
    "RETRYABLE_STATUSES",
    "describe_fault",
    "fault_cause",
    "is_retryable",
    "is_transport_fault",
    "retry_after",
]

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""Retried besides every 5xx."""


def is_retryable(exc: BaseException) -> bool:
    """A fault worth another attempt."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
    # APITimeoutError is an APIConnectionError; the other two are unreadable 200 bodies.
    return isinstance(
        exc, openai.APIConnectionError | openai.APIResponseValidationError | json.JSONDecodeError
    )


def is_transport_fault(exc: BaseException) -> bool:
    """A fault of the server or the wire (retryable or not), not a bug or a bad argument."""
    return isinstance(exc, openai.APIError | json.JSONDecodeError)


def fault_cause(exc: BaseException) -> str:
    """What a retry is counted under: an HTTP status ("429"), "timeout", "connection" or
    "invalid_response"."""
    if isinstance(exc, openai.APIStatusError):
        return str(exc.status_code)
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    return "invalid_response"


def describe_fault(exc: BaseException, timeout: float) -> str:
    """The fault in one line of at most 300 characters."""
    if isinstance(exc, openai.APIStatusError):
        message = _server_message(exc)
        text = f"HTTP {exc.status_code}" + (f" ({message})" if message else "")
    elif isinstance(exc, openai.APITimeoutError):
        text = f"timed out after {timeout:g} s"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = "connection failed" + (f" ({type(cause).__name__}: {cause})" if cause else "")
    else:
        text = f"unreadable response body ({type(exc).__name__}: {exc})"
    text = " ".join(text.split())  # one line, whatever the server sent
    return text if len(text) <= 300 else text[:297] + "..."


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    return ""


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `Retry-After` seconds or date)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return seconds
    value = headers.get("retry-after")
    if value:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return None
