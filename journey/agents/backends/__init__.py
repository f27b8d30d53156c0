"""Model backends behind AutoGen's `ChatCompletionClient`, chosen by a spec string.

The embedded (transformers) and OpenAI-compatible clients import heavy libraries;
import them from their modules (`transformers_client`, `openai_compat`) or let
`create_client` do it when a spec needs them.
"""

from journey.agents.backends.base import (
    LabelScoringClient,
    LoadableClient,
    RecordingClient,
    RetryCounting,
    can_score_labels,
    ensure_loaded,
    retry_causes,
)
from journey.agents.backends.limited import ConcurrencyLimitedClient, limit_requests
from journey.agents.backends.rate_limited import RateLimitedClient, RateWindow
from journey.agents.backends.scripted import (
    FunctionChatCompletionClient,
    ScriptedChatCompletionClient,
    ScriptExhaustedError,
)
from journey.agents.backends.spec import (
    DEFAULT_MODEL_SPEC,
    ClientPool,
    ModelSpec,
    create_client,
    parse_model_spec,
)
from journey.engine.plain_prompt import PlainPromptTemplate, load_plain_template

__all__ = [
    "DEFAULT_MODEL_SPEC",
    "ClientPool",
    "ConcurrencyLimitedClient",
    "FunctionChatCompletionClient",
    "LabelScoringClient",
    "LoadableClient",
    "ModelSpec",
    "PlainPromptTemplate",
    "RateLimitedClient",
    "RateWindow",
    "RecordingClient",
    "RetryCounting",
    "ScriptExhaustedError",
    "ScriptedChatCompletionClient",
    "can_score_labels",
    "create_client",
    "ensure_loaded",
    "limit_requests",
    "load_plain_template",
    "parse_model_spec",
    "retry_causes",
]
