"""Evaluation: generate answers to MATH-style problems, grade them, compare runs; judge
a critic on step-labelled solutions."""

from journey.evaluation.compare import ComparedRun, Comparison, bootstrap_difference, compare_runs
from journey.evaluation.critic_compare import CriticComparison, compare_critic_runs
from journey.evaluation.critic_eval import CriticEvalOptions, CriticEvalRunner, load_critic_records
from journey.evaluation.critic_metrics import (
    CriticEvalMetrics,
    CriticRecord,
    compute_critic_metrics,
)
from journey.evaluation.grading import Grade, grade_output, same_answer
from journey.evaluation.metrics import (
    DEFAULT_BACKTRACK_PHRASES,
    DEFAULT_REFLECTION_KEYWORDS,
    EvalMetrics,
    EvalRecord,
    PhraseCounter,
    compute_metrics,
)
from journey.evaluation.runner import EvalOptions, EvalRunner, load_records

__all__ = [
    "DEFAULT_BACKTRACK_PHRASES",
    "DEFAULT_REFLECTION_KEYWORDS",
    "ComparedRun",
    "Comparison",
    "CriticComparison",
    "CriticEvalMetrics",
    "CriticEvalOptions",
    "CriticEvalRunner",
    "CriticRecord",
    "EvalMetrics",
    "EvalOptions",
    "EvalRecord",
    "EvalRunner",
    "Grade",
    "PhraseCounter",
    "bootstrap_difference",
    "compare_critic_runs",
    "compare_runs",
    "compute_critic_metrics",
    "compute_metrics",
    "grade_output",
    "load_critic_records",
    "load_records",
    "same_answer",
]
