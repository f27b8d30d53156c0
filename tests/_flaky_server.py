"""A flaky OpenAI-compatible server on loopback: injects faults at a set rate, by seed.

Serves `POST /v1/chat/completions` (not streamed) from an asyncio loop in its own
process (`python tests/_flaky_server.py RATE SEED HANG`, which prints `PORT n`), so
the client under test does not share a GIL with it; `GET /stats` returns the counts.
`FlakyServer` starts and stops that process. Each request either gets a fault or a
good debate reply. Which one depends only on the seed, the request body and how many
times that same body was sent before, so a run is reproducible whatever order
concurrent requests arrive in, and a retried request gets a fresh draw.

Faults (`FAULTS`): `timeout` (no answer until well after the client gave up),
`reset` (connection reset, nothing sent), `429` with `Retry-After`, `500`, `503`,
`truncated` (a 200 whose JSON is cut off), `empty` (a 200 with an empty completion)
and `off_protocol` (a 200 whose text ignores the requested format).

Good replies: the policy (model name "policy") writes `Step N:` and reaches the boxed
gold answer of "What is A + B?" at step 2; the critic (model "critic") says correct
and continue.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from typing import Any

FAULTS = ("timeout", "reset", "429", "500", "503", "truncated", "empty", "off_protocol")

_SUM = re.compile(r"What is (\d+) \+ (\d+)\?")


def good_reply(body: dict[str, Any]) -> str:
    """The reply a well-behaved model would give, from the request alone."""
    messages = body.get("messages") or []
    last = str(messages[-1].get("content", "")) if messages else ""
    if body.get("model") == "critic":
        return "VERDICT: correct\nACTION: continue\nREASON: The step follows."
    text = "\n".join(str(m.get("content", "")) for m in messages)
    sums = _SUM.findall(text)
    a, b = (int(x) for x in sums[-1]) if sums else (1, 1)
    steps = re.findall(r"Step (\d+)", last)
    step = int(steps[-1]) if steps else 1
    if step >= 2:
        return f"Step {step}: So {a} + {b} = {a + b}, the answer is \\boxed{{{a + b}}}."
    return f"Step {step}: We add {a} and {b}."


class FlakyServer:
    """The server process: `start()`, then `base_url`; `stop()` fetches the counts.

    Args:
        rate: Share of requests that get a fault.
        seed: Seeds every draw.
        hang: Seconds a `timeout` fault waits before closing (longer than the client's timeout).
    """

    def __init__(self, rate: float, seed: int, *, hang: float = 1.0) -> None:
        self.command = [sys.executable, __file__, str(rate), str(seed), str(hang)]
        self.faults: Counter[str] = Counter()
        self.requests = 0
        self.authorization = ""
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    def start(self) -> None:
        self._process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"flaky server did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            with urllib.request.urlopen(f"{self.base_url}/stats", timeout=30) as response:
                stats = json.loads(response.read())
            self.requests = stats["requests"]
            self.faults = Counter(stats["faults"])
            self.authorization = stats["authorization"]
        finally:
            self._process.terminate()
            self._process.wait(30)
            self._process = None


class _Server:
    """The serving side, run by `main()` in the server process."""

    def __init__(self, rate: float, seed: int, hang: float) -> None:
        self.rate = rate
        self.seed = seed
        self.hang = hang
        self.faults: Counter[str] = Counter()
        self.requests = 0
        self.authorization = ""
        """The last `Authorization` header received (tests check the key was sent)."""
        self._seen: Counter[str] = Counter()

    def draw(self, body: dict[str, Any]) -> str | None:
        """The fault for this request (None: answer well), from the seed and the body."""
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        attempt = self._seen[key]
        self._seen[key] += 1
        rng = random.Random(f"{self.seed}:{key}:{attempt}")
        return rng.choice(FAULTS) if rng.random() < self.rate else None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                    elif name.strip().lower() == "authorization":
                        self.authorization = value.strip()
                raw = await reader.readexactly(length)
                if head.startswith(b"GET"):
                    stats = {
                        "requests": self.requests,
                        "faults": self.faults,
                        "authorization": self.authorization,
                    }
                    data = json.dumps(stats).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
                    writer.write(data)
                    await writer.drain()
                    continue
                body = json.loads(raw)
                self.requests += 1
                fault = self.draw(body)
                if fault is not None:
                    self.faults[fault] += 1
                if fault == "timeout":
                    await asyncio.sleep(self.hang)
                    writer.close()
                    return
                if fault == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                status, payload, headers = self._answer(fault, body)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n{headers}\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()

    def _answer(self, fault: str | None, body: dict[str, Any]) -> tuple[int, bytes, str]:
        if fault in ("429", "500", "503"):
            error = {"error": {"message": f"injected {fault}", "type": "flaky", "code": fault}}
            headers = "Retry-After: 0\r\n" if fault == "429" else ""
            return int(fault), json.dumps(error).encode(), headers
        if fault == "truncated":
            return 200, b'{"id": "chatcmpl-flaky", "object": "chat.completion", "choi', ""
        text = good_reply(body)
        if fault == "empty":
            text = ""
        elif fault == "off_protocol":
            text = "Sure! Happy to help with that. What would you like to do next?"
        completion = {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "flaky"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": len(text.split()),
                "total_tokens": 10 + len(text.split()),
            },
        }
        return 200, json.dumps(completion).encode(), ""


async def _serve(rate: float, seed: int, hang: float) -> None:
    server = await asyncio.start_server(
        _Server(rate, seed, hang).handle, "127.0.0.1", 0, backlog=1024
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
