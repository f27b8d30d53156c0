"""A fixed-capacity OpenAI-compatible server on loopback: a benchmark fixture, not product.

    python -m bench._capacity_server --slots 32 --rate 200 --latency 0.05

It serves `POST /v1/chat/completions` (not streamed) with at most `slots` requests
being answered at once; others wait in line for a slot. Each answer takes
`latency + completion_tokens / rate` seconds inside its slot, so the server's
capacity is known in advance: `slots * rate` tokens/s when replies are long enough
that latency is small, and measured directly by `bench.bench_server`.

Replies are realistic debate turns, chosen from the prompt alone (so a run is
deterministic): the policy (any model name but "critic") writes one step of a few
dozen words and reaches the boxed gold answer at step 3 to 5, sometimes with a wrong
step first; the critic (model name "critic") answers in the VERDICT/ACTION/REASON
form, asking for a reflection on a wrong step.

`GET /stats` returns the served totals and, per role, how much of each prompt
repeats the previous prompt of the same session (what a prefix cache could reuse);
`POST /stats` returns them too and starts the prefix counts afresh.
A token is a whitespace-separated word, for both the rate and the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

_PROBLEM = re.compile(r"Problem: (.*?)(?:\n|$)")
_NUMBERS = re.compile(r"(-?\d+)\s*\+\s*(-?\d+)")
_FILLER_TEXT = (
    "We keep every quantity named in the problem and write the relation between them "
    "before computing anything, so that each number we use has a clear meaning and the "
    "next step can build on it without guessing what was intended here"
)
_FILLER = _FILLER_TEXT.split()


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest())


def _problem(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        found = _PROBLEM.search(str(message.get("content", "")))
        if found and "A box holds 5 pencils" not in found.group(1):  # skip the worked example
            return found.group(1)
    return ""


def _gold(problem: str) -> int:
    found = _NUMBERS.search(problem)
    return int(found.group(1)) + int(found.group(2)) if found else 42


def policy_reply(messages: list[dict[str, Any]], words: int) -> str:
    """One step: `Step N: ...` with filler words, the boxed answer at the last step."""
    problem = _problem(messages)
    asked = re.findall(r"Step (\d+)", str(messages[-1].get("content", "")))
    step = int(asked[-1]) if asked else 1
    seed = _digest(problem)
    last = 3 + seed % 3
    wrong_step = 2 if seed % 4 == 0 else 0  # a quarter of the sessions need one reflection
    retry = "wrong" in str(messages[-1].get("content", ""))
    body = " ".join(_FILLER[(seed + i) % len(_FILLER)] for i in range(max(words - 12, 1)))
    if step == wrong_step and not retry:
        return f"Step {step}: {body}. Adding gives {_gold(problem) + 1}, a slip."
    if step >= last:
        return f"Step {step}: {body}. So the answer is \\boxed{{{_gold(problem)}}}."
    return f"Step {step}: {body}. This gives part {step} of the result."


def critic_reply(messages: list[dict[str, Any]], words: int) -> str:
    """A verdict in the form the critic prompt asks for."""
    newest = str(messages[-1].get("content", "")).rsplit("\nStep ", 1)[-1]
    reason = " ".join(_FILLER[: max(words - 6, 1)])
    if "a slip" in newest:
        return f"VERDICT: incorrect\nACTION: reflect\nREASON: The sum is off by one; {reason}."
    return f"VERDICT: correct\nACTION: continue\nREASON: The step is right; {reason}."


@dataclass
class PrefixReuse:
    """Share of each prompt repeating the previous prompt of its session, per role."""

    last: dict[tuple[str, str], str] = field(default_factory=dict)
    shares: dict[str, list[float]] = field(default_factory=dict)
    extends: dict[str, int] = field(default_factory=dict)
    """Requests whose prompt is the previous one with text appended (append-only)."""

    def record(self, role: str, session: str, prompt: str) -> None:
        previous = self.last.get((role, session))
        self.last[(role, session)] = prompt
        if previous is None or not prompt:
            return
        common = 0
        for a, b in zip(previous, prompt, strict=False):
            if a != b:
                break
            common += 1
        self.shares.setdefault(role, []).append(common / len(prompt))
        self.extends[role] = self.extends.get(role, 0) + (common == len(previous))

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            role: {
                "mean": statistics.fmean(values),
                "median": statistics.median(values),
                "requests": len(values),
                "append_only": self.extends.get(role, 0) / len(values),
            }
            for role, values in self.shares.items()
        }


def _serialise(messages: list[dict[str, Any]]) -> str:
    """The prompt as a chat template would lay it out (role markers and contents)."""
    return "".join(f"<|{m.get('role')}|>{m.get('content', '')}<|end|>" for m in messages)


@dataclass
class CapacityServer:
    """The server's state; `serve()` runs it on 127.0.0.1 (port 0: any free port)."""

    slots: int = 32
    rate: float = 200.0
    """Tokens per second emitted by one slot."""
    latency: float = 0.05
    """Seconds per request before the first token."""
    words: int = 40
    """Typical reply length in tokens."""
    requests: int = 0
    by_role: dict[str, int] = field(default_factory=dict)
    completion_tokens: int = 0
    busy_seconds: float = 0.0
    active: int = 0
    """Requests holding a slot now."""
    prefix: PrefixReuse = field(default_factory=PrefixReuse)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.slots)

    def reply(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        role = "critic" if body.get("model") == "critic" else "policy"
        self.by_role[role] = self.by_role.get(role, 0) + 1
        problem = _problem(messages)
        self.prefix.record(role, problem, _serialise(messages))
        if role == "critic":
            return critic_reply(messages, self.words // 2)
        text = policy_reply(messages, self.words)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        return " ".join(text.split(" ")[:limit]) if limit else text

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._slots:
            started = time.monotonic()
            self.active += 1
            text = self.reply(body)
            tokens = len(text.split())
            await asyncio.sleep(self.latency + tokens / self.rate)
            self.busy_seconds += time.monotonic() - started
            self.active -= 1
            self.requests += 1
            self.completion_tokens += tokens
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": tokens,
                "total_tokens": prompt_tokens + tokens,
            },
        }

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_role": self.by_role,
            "completion_tokens": self.completion_tokens,
            "busy_seconds": self.busy_seconds,
            "active": self.active,
            "prefix_reuse": self.prefix.summary(),
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive: enough for the openai SDK (httpx)."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (h.partition(":") for h in header_lines if h)
                }
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path.endswith("/stats"):
                    status, payload = 200, self.stats()
                elif method == "POST" and path.endswith("/stats"):
                    status, payload = 200, self.stats()
                    self.prefix = PrefixReuse()
                elif method == "POST" and path.endswith("/chat/completions"):
                    status, payload = 200, await self.complete(json.loads(raw))
                else:
                    status, payload = 404, {"error": {"message": f"no route {path}"}}
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve(self, port: int = 0, ready: Any = None) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", port, backlog=1024)
        bound = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready(bound)
        async with server:
            await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    server = CapacityServer(options.slots, options.rate, options.latency, options.words)

    def ready(port: int) -> None:
        print(f"PORT {port}", flush=True)  # the parent process reads this line

    try:
        asyncio.run(server.serve(options.port, ready))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
