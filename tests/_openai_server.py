"""A tiny scriptable OpenAI-compatible server on loopback, for backend tests.

`POST /v1/chat/completions` is served, plain or streamed (SSE), `POST /v1/completions`
plain, and `GET /v1/models` lists one model (what a client polls to see that a server
is up). Each request takes the next scripted reply from a queue (a default completion
when it is empty) and is recorded, so a test can check what the client sent.

    server.enqueue(Reply.error(429, retry_after="0"), Reply.text("hello"))

Replies are shaped as vLLM's OpenAI server shapes them (vllm/entrypoints/openai,
`chat_completion/protocol.py` and `serving.py`): the message carries `reasoning`
(null unless the reply has thoughts; `reasoning_content` in vLLM before the rename,
and in DeepSeek's API), each choice a `stop_reason`; a stream opens with an empty
assistant delta, sends the thoughts as `reasoning` deltas before the answer's `content`
deltas, closes with a `finish_reason` chunk and, when `stream_options.include_usage`
is set, a chunk with no choices and the usage. Log-probs come per token with their
top alternatives (`logprobs.content`) in chat, and in the legacy form (`tokens`,
`token_logprobs`, `top_logprobs` mappings) from `/v1/completions`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted response. Build it with the class methods below."""

    status: int = 200
    content: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: bytes | None = None
    top_logprobs: list[tuple[str, float]] | None = None
    prompt_tokens: int = 7
    completion_tokens: int = 3
    reasoning: str | None = None
    """The thoughts before the answer, sent beside `content` as vLLM's reasoning parsers do."""
    reasoning_field: str = "reasoning"
    """Their field: "reasoning" (vLLM now) or "reasoning_content" (older vLLM, DeepSeek)."""
    model: str | None = None
    """The model name the reply reports; default the one asked for (llama.cpp reports its
    file's name whatever was asked)."""
    finish_reason: str = "stop"

    @classmethod
    def text(
        cls,
        content: str,
        *,
        prompt_tokens: int = 7,
        completion_tokens: int = 3,
        model: str | None = None,
        finish_reason: str = "stop",
    ) -> Reply:
        return cls(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            model=model,
            finish_reason=finish_reason,
        )

    @classmethod
    def thinking(
        cls,
        reasoning: str,
        content: str,
        *,
        field: str = "reasoning",
        prompt_tokens: int = 7,
        completion_tokens: int = 12,
    ) -> Reply:
        """A reasoning model's reply: thoughts in `field`, the answer in `content`."""
        return cls(
            content=content,
            reasoning=reasoning,
            reasoning_field=field,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    @classmethod
    def error(
        cls,
        status: int,
        *,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        message: str = "scripted failure",
    ) -> Reply:
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        body = json.dumps({"error": {"message": message, "type": "scripted", "code": status}})
        return cls(status=status, headers=headers, raw_body=body.encode())

    @classmethod
    def slow(cls, seconds: float, content: str = "late") -> Reply:
        """A completion sent only after `seconds` (to trip the client's timeout)."""
        return cls(content=content, delay=seconds)

    @classmethod
    def truncated(cls) -> Reply:
        """A 200 whose JSON body is cut off mid-object."""
        return cls(raw_body=b'{"id": "chatcmpl-1", "object": "chat.completion", "choi')

    @classmethod
    def empty(cls) -> Reply:
        return cls(content="")

    @classmethod
    def logprobs(cls, top: list[tuple[str, float]]) -> Reply:
        """A one-token completion whose first token carries these top log-probs."""
        return cls(content=top[0][0], top_logprobs=top, completion_tokens=1)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


class OpenAIStubServer:
    """Runs on 127.0.0.1 with an ephemeral port (or the given one) in a daemon thread."""

    def __init__(self, port: int = 0, served_model: str = "stub-model") -> None:
        self.served_model = served_model
        self.replies: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies.popleft() if self.replies else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest output clean

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    self._send(404, b'{"error": {"message": "no such route"}}', {})
                    return
                model = {"id": server.served_model, "object": "model", "owned_by": "stub"}
                self._send(200, json.dumps({"object": "list", "data": [model]}).encode(), {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                recorded = RecordedRequest(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                reply = server._next(recorded)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._send(404, b'{"error": {"message": "no such route"}}', {})
                elif reply.raw_body is not None or reply.status != 200:
                    self._send(reply.status, reply.raw_body or b"{}", reply.headers)
                elif self.path == "/v1/completions":
                    answer = _text_completion(reply, body)
                    self._send(200, json.dumps(answer).encode(), reply.headers)
                elif body.get("stream"):
                    self._stream(reply, body)
                else:
                    self._send(200, json.dumps(_completion(reply, body)).encode(), reply.headers)

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, reply: Reply, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for event in _stream_events(reply, body):
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "completion_tokens": reply.completion_tokens,
    }


def _model(reply: Reply, body: dict[str, Any]) -> str:
    return reply.model or body.get("model", "stub-model")


def _completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        reply.reasoning_field: reply.reasoning,
    }
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": reply.finish_reason,
        "stop_reason": None,
    }
    if reply.top_logprobs is not None:
        first_token, first_logprob = reply.top_logprobs[0]
        choice["logprobs"] = {
            "content": [
                {
                    "token": first_token,
                    "logprob": first_logprob,
                    "bytes": list(first_token.encode()),
                    "top_logprobs": [
                        {"token": token, "logprob": logprob, "bytes": list(token.encode())}
                        for token, logprob in reply.top_logprobs
                    ],
                }
            ]
        }
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(reply, body),
        "choices": [choice],
        "usage": {**_usage(reply), "prompt_tokens_details": None},
        "prompt_logprobs": None,
    }


def _text_completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    logprobs = None
    if reply.top_logprobs is not None and body.get("logprobs") is not None:
        first_token, first_logprob = reply.top_logprobs[0]
        logprobs = {
            "text_offset": [0],
            "token_logprobs": [first_logprob],
            "tokens": [first_token],
            "top_logprobs": [dict(reply.top_logprobs)],
        }
    choice = {
        "index": 0,
        "text": reply.content,
        "logprobs": logprobs,
        "finish_reason": reply.finish_reason,
        "stop_reason": None,
        "prompt_logprobs": None,
    }
    return {
        "id": "cmpl-stub",
        "object": "text_completion",
        "created": int(time.time()),
        "model": _model(reply, body),
        "choices": [choice],
        "usage": {**_usage(reply), "prompt_tokens_details": None},
    }


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)] if text else []


def _stream_events(reply: Reply, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    base = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(reply, body),
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None}
        if finish_reason is not None:
            choice.update(finish_reason=finish_reason, stop_reason=None)
        return {**base, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(reply.reasoning or ""):
        yield chunk({reply.reasoning_field: piece})
    for piece in _pieces(reply.content):
        yield chunk({"content": piece})
    yield chunk({"content": ""}, reply.finish_reason)
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(reply)}


@pytest.fixture
def openai_server() -> Iterator[OpenAIStubServer]:
    """A started stub server, stopped after the test."""
    server = OpenAIStubServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
