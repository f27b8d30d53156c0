"""Evaluation: generate answers to MATH-style problems, grade them, compare runs."""

from journey.evaluation.compare import ComparedRun, Comparison, bootstrap_difference, compare_runs
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
    "EvalMetrics",
    "EvalOptions",
    "EvalRecord",
    "EvalRunner",
    "Grade",
    "PhraseCounter",
    "bootstrap_difference",
    "compare_runs",
    "compute_metrics",
    "grade_output",
    "load_records",
    "same_answer",
]
