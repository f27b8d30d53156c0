"""The local inference engine: a worker thread that runs one transformers model with
continuous batching, ragged decode steps, packed weights and a prefix cache, and the
store that fetches and caches the embedded default model.

Callers build a `ModelWorker` with an `EngineConfig`, `submit` jobs (`GenerationJob`,
`ScoringJob`) and wait on each job's future. The engine knows nothing of sessions,
agents or AutoGen.

Importing the engine imports neither torch nor transformers (tests/test_lazy_imports.py):
a worker's thread imports them when it loads its model, so that everything that never
loads one stays fast to import.
"""

from journey.engine._model_worker import ModelWorker
from journey.engine.config import EngineConfig
from journey.engine.jobs import (
    GREEDY,
    Chat,
    FinishReason,
    Generated,
    GenerationJob,
    GenerationStats,
    Job,
    Sampling,
    ScoringJob,
)
from journey.engine.model_store import EMBEDDED_MODEL_ID, embedded_gguf_file, embedded_model_dir
from journey.engine.plain_prompt import PlainPromptTemplate, load_plain_template
from journey.engine.quiet import quiet_loading

__all__ = [
    "EMBEDDED_MODEL_ID",
    "GREEDY",
    "Chat",
    "EngineConfig",
    "FinishReason",
    "Generated",
    "GenerationJob",
    "GenerationStats",
    "Job",
    "ModelWorker",
    "PlainPromptTemplate",
    "Sampling",
    "ScoringJob",
    "embedded_gguf_file",
    "embedded_model_dir",
    "load_plain_template",
    "quiet_loading",
]
