"""Throughput of the embedded model: one request, 8 concurrent requests, raw batched generate.

    python bench/bench_embedded.py [--dtype auto|float32|bfloat16] [--max-tokens 64]

All three paths decode greedily from the same prompts with the same token limit and
count only the tokens each reply really has (up to its end-of-turn token), so a batch
is not credited for padding. Uses the cached model (built on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import torch
from autogen_core.models import UserMessage
from transformers import AutoModelForCausalLM, AutoTokenizer

from journey.agents.backends.transformers_client import (
    AUTO_DTYPE,
    TransformersChatCompletionClient,
)
from journey.engine._packed_linear import pack_linears
from journey.engine.config import EngineConfig
from journey.engine.model_store import EMBEDDED_MODEL_ID, embedded_model_dir
from journey.engine.quiet import quiet_loading

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms, step by step.",
    "Describe your ideal weekend in detail.",
    "Write a poem about the ocean at night.",
    "Explain why the sky is blue to a child.",
    "List ten things to pack for a camping trip and say why.",
    "Describe how to bake bread from scratch.",
    "Tell me about the history of the bicycle.",
]


async def through_client(dtype: str, max_tokens: int) -> tuple[float, float, float]:
    directory = embedded_model_dir(log=print)
    client = TransformersChatCompletionClient(
        directory, model_name=EMBEDDED_MODEL_ID, temperature=0.0, engine=EngineConfig(dtype=dtype)
    )
    started = time.perf_counter()
    await client.load()
    load_s = time.perf_counter() - started
    args = {"max_tokens": max_tokens}
    await client.create(
        [UserMessage(content="Hi", source="user")], extra_create_args={"max_tokens": 4}
    )

    started = time.perf_counter()
    alone = await client.create(
        [UserMessage(content=PROMPTS[0], source="user")], extra_create_args=args
    )
    alone_rate = alone.usage.completion_tokens / (time.perf_counter() - started)

    batches = client.stats.batches
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            client.create([UserMessage(content=p, source="user")], extra_create_args=args)
            for p in PROMPTS
        )
    )
    elapsed = time.perf_counter() - started
    batched_rate = sum(r.usage.completion_tokens for r in results) / elapsed
    print(
        f"client, 1 request:       {alone_rate:6.1f} tokens/s "
        f"({alone.usage.completion_tokens} tokens)"
    )
    print(
        f"client, 8 concurrent:    {batched_rate:6.1f} tokens/s "
        f"({client.stats.batches - batches} generate call(s), {elapsed:.1f} s)"
    )
    await client.close()
    return load_s, alone_rate, batched_rate


# Padding for prompts as long as a synthesis's: a worked solution, repeated as needed.
_FILLER = (
    "Step 1. Let the unknown be x and write the condition as an equation. "
    "Step 2. Simplify both sides and collect the terms in x. "
    "Step 3. Check the result against the original statement. "
)


def raw_generate(
    dtype: torch.dtype, max_tokens: int, *, prompt_tokens: int = 0, sample: bool = False
) -> float:
    """Tokens/s of one batched `generate` over the 8 prompts, each padded with a worked
    solution to about `prompt_tokens` tokens when given, decoding greedily or (`sample`)
    with the client's default temperature 0.7 and top-p 0.95. The linear layers run over
    oneDNN-packed weights as the client's do, so that a comparison with the client
    measures what the orchestration adds, not the kernels."""
    directory = embedded_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.padding_side = "left"
    with quiet_loading():  # no weight-loading bar inside the bench's output
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype).eval()
    pack_linears(model)
    filler = tokenizer(_FILLER * (1 + prompt_tokens // 30), add_special_tokens=False)["input_ids"]
    texts = []
    for prompt in PROMPTS:
        chat = [{"role": "user", "content": prompt}]
        short = len(tokenizer.apply_chat_template(chat, add_generation_prompt=True)["input_ids"])
        if prompt_tokens > short:
            chat[0]["content"] += "\n\n" + tokenizer.decode(filler[: prompt_tokens - short])
        texts.append(
            tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        )
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    settings = {"do_sample": True, "temperature": 0.7, "top_p": 0.95, "top_k": 0} if sample else {}
    with torch.inference_mode():
        model.generate(**batch, max_new_tokens=4, do_sample=False)
        started = time.perf_counter()
        output = model.generate(**batch, max_new_tokens=max_tokens, **settings)
        elapsed = time.perf_counter() - started
    new = output[:, batch["input_ids"].shape[1] :]
    eos = tokenizer.eos_token_id
    tokens = 0
    for row in new.tolist():
        tokens += row.index(eos) + 1 if eos in row else len(row)
    rate = tokens / elapsed
    width = batch["input_ids"].shape[1]
    print(
        f"raw generate, batch of 8: {rate:6.1f} tokens/s ({elapsed:.1f} s, prompts {width} tokens)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--max-tokens", type=int, default=64)
    options = parser.parse_args()
    dtype_name = AUTO_DTYPE if options.dtype == "auto" else options.dtype
    print(f"{EMBEDDED_MODEL_ID}, dtype {dtype_name}, max_tokens {options.max_tokens}")
    load_s, alone, batched = asyncio.run(through_client(options.dtype, options.max_tokens))
    print(f"torch threads:            {torch.get_num_threads():6d}")
    raw = raw_generate(getattr(torch, dtype_name), options.max_tokens)
    print(f"cached model load:        {load_s:6.2f} s")
    print(f"batched / alone:          {batched / alone:6.2f}x")
    print(f"client batched / raw:     {batched / raw:6.2f}x")


if __name__ == "__main__":
    main()
