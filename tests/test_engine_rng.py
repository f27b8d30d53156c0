"""Each sampled row draws from a random generator of its own: a seeded request gives the
same tokens alone and batched with other requests, seeded or not, on every decode path
(ragged steps, a running batch, one `generate` call). A tiny random Llama with a
word-level tokenizer, built in a temporary directory, keeps this fast and offline; its
end-of-turn token is past the model's vocabulary, so every reply runs to its limit."""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from _tiny_models import TINY_DECODER
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from journey.engine import EngineConfig, Generated, GenerationJob, ModelWorker, Sampling
from journey.engine._ragged_batch import RaggedBatch
from journey.engine._running_batch import RunningBatch, choose_tokens
from journey.errors import ConfigError

WORDS = [f"w{i}" for i in range(TINY_DECODER["vocab_size"] - 2)]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)
SEEDED = Sampling(1.0, 0.9, 7)
PROMPTS = ["w1 w2 w3 w4", "w5 w6 w7", "w8 w9 w10 w11 w12", "w13 w14"]

PATHS = {  # how the worker decodes: ragged steps, a running batch, one `generate` call
    "ragged": EngineConfig(max_batch_size=8),
    "running": EngineConfig(max_batch_size=8, prefill_in_step=False),
    "generate": EngineConfig(max_batch_size=8, continuous_batching=False),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-llama")
    vocab = {"<pad>": 0, "<unk>": 1} | {w: i + 2 for i, w in enumerate(WORDS)}
    vocab["<eos>"] = len(vocab)  # never generated: the model's logits stop before it
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # unannotated
        tokenizer_object=words, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    config = LlamaConfig(**TINY_DECODER, pad_token_id=0, eos_token_id=vocab["<eos>"])
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def _job(prompt: str, sampling: Sampling, max_new_tokens: int = 12) -> GenerationJob:
    chat = [{"role": "user", "content": prompt}]
    return GenerationJob(chat, max_new_tokens, (), sampling, concurrent.futures.Future())


def _run(worker: ModelWorker, jobs: list[GenerationJob]) -> list[Generated]:
    """Queue `jobs` at once (so that they share a batch) and wait for their replies."""
    for job in jobs:
        worker.submit(job)
    return [job.future.result(timeout=60) for job in jobs]


def _worker(model_dir: Path, config: EngineConfig) -> ModelWorker:
    worker = ModelWorker(model_dir, name="tiny", config=config)
    worker.start()
    worker.ready.result(timeout=60)
    return worker


def _stop(worker: ModelWorker) -> None:
    thread = worker.stop()
    if thread is not None:
        thread.join(timeout=60)


@pytest.mark.parametrize("path", PATHS)
def test_a_seeded_request_samples_the_same_alone_and_in_any_batch(
    model_dir: Path, path: str
) -> None:
    worker = _worker(model_dir, PATHS[path])
    try:
        (alone,) = _run(worker, [_job(PROMPTS[0], SEEDED)])
        assert alone.completion_tokens == 12
        batches = worker.stats.batches
        others = [
            _job(PROMPTS[1], Sampling(1.0, 0.9, 8)),
            _job(PROMPTS[2], Sampling(1.0, 0.9, None)),
            _job(PROMPTS[0], Sampling(1.0, 0.9, None)),  # the same prompt, unseeded
        ]
        first, *rest = _run(worker, [others[0], _job(PROMPTS[0], SEEDED), *others[1:]])
        together = rest[0]
        assert worker.stats.batches == batches + 1  # all four shared one batch
        assert worker.stats.largest_batch == 4
        assert together == alone
        # Its neighbours drew from their own generators: none repeats its sample.
        assert all(reply.text != alone.text for reply in [first, *rest[1:]])
    finally:
        _stop(worker)


@pytest.mark.parametrize("path", ["ragged", "running"])
def test_a_seeded_request_joining_a_running_batch_samples_as_alone(
    model_dir: Path, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = _worker(model_dir, PATHS[path])
    try:
        (alone,) = _run(worker, [_job(PROMPTS[3], SEEDED)])
        joiner = _job(PROMPTS[3], SEEDED)
        steps = itertools.count()
        kind: Any = RaggedBatch if path == "ragged" else RunningBatch
        step: Callable[[Any, Any], None] = kind.step

        def submitting_step(self: Any, choose: Any) -> None:
            step(self, choose)
            if next(steps) == 2:  # queued now, it joins between this step and the next
                worker.submit(joiner)

        monkeypatch.setattr(kind, "step", submitting_step)
        batches = worker.stats.batches
        running = [_job(PROMPTS[1], Sampling(1.0, 0.9, 3), 30), _job(PROMPTS[2], SEEDED, 30)]
        _run(worker, running)
        assert joiner.future.result(timeout=60) == alone
        assert worker.stats.batches == batches + 1  # it joined the running batch
        assert worker.stats.largest_batch == 3
    finally:
        _stop(worker)


def test_unseeded_requests_are_reproducible_from_the_worker_seed(model_dir: Path) -> None:
    def replies(seed: int) -> list[str]:
        worker = _worker(model_dir, EngineConfig(seed=seed))
        try:
            unseeded = Sampling(1.0, 0.9, None)
            return [r.text for r in _run(worker, [_job(p, unseeded) for p in PROMPTS])]
        finally:
            _stop(worker)

    first = replies(seed=5)
    assert replies(seed=5) == first
    assert replies(seed=6) != first


def test_a_row_draws_from_its_generator_whatever_rows_are_beside_it() -> None:
    peaked = torch.log(torch.tensor([0.4, 0.3, 0.2, 0.1] + [1e-9] * 996))
    flat = torch.zeros(1000)  # its top-p nucleus is wider than the candidates sorted first

    def draws(rows: list[torch.Tensor], seeds: list[int | None]) -> list[int]:
        generators = [None if s is None else torch.Generator().manual_seed(s) for s in seeds]
        logits = torch.stack(rows)
        return [int(choose_tokens(logits, 1.0, 0.95, generators)[0]) for _ in range(50)]

    alone = draws([peaked], [7])
    assert len(set(alone)) > 1  # it samples
    assert draws([peaked, flat], [7, 8]) == alone
    assert draws([peaked, peaked, flat], [7, 7, None]) == alone
    # A row without a generator (a scoring row riding in the batch) takes its likeliest.
    generators = [torch.Generator().manual_seed(1), None]
    picked = choose_tokens(torch.stack([flat, peaked]), 1.0, 0.95, generators)
    assert int(picked[1]) == 0


def test_engine_config_quotes_a_bad_setting() -> None:
    with pytest.raises(ConfigError, match="'int8'"):
        EngineConfig(dtype="int8")
    with pytest.raises(ConfigError, match="max_batch_size must be >= 1, got 0"):
        EngineConfig(max_batch_size=0)
    with pytest.raises(ConfigError, match="num_threads must be >= 1, got 0"):
        EngineConfig(num_threads=0)
    with pytest.raises(ConfigError, match="prefix_cache_mb must be >= 0, got -1"):
        EngineConfig(prefix_cache_mb=-1)
    with pytest.raises(ConfigError, match="seed must be an integer, got '3'"):
        EngineConfig(seed="3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'packed_weight'"):
        EngineConfig.of({"packed_weight": False})
    assert EngineConfig.of({"prefix_cache_mb": 2}) == EngineConfig(prefix_cache_mb=2)
    assert EngineConfig(prefix_cache_mb=2).prefix_cache_bytes == 2 << 20
    assert EngineConfig().torch_dtype == torch.float32  # "auto"
    assert EngineConfig(dtype="bf16").torch_dtype == torch.bfloat16
