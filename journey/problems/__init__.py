"""Problems: datasets of problems with gold answers, and of step-labelled solutions,
from files or the Hugging Face hub cache, validated line by line and split into shards."""

from journey.problems.dataset import (
    DatasetIssue,
    ProblemDataset,
    ProblemRecord,
    Shard,
    load_problems,
)
from journey.problems.held_out import HeldOutProblems
from journey.problems.ids import problem_key, session_id_for
from journey.problems.step_labels import (
    LabelledSolution,
    LabelledSolutions,
    load_labelled_solutions,
)
from journey.problems.step_layouts import LAYOUTS, StepLabelLayout, parse_field_map

__all__ = [
    "LAYOUTS",
    "DatasetIssue",
    "HeldOutProblems",
    "LabelledSolution",
    "LabelledSolutions",
    "ProblemDataset",
    "ProblemRecord",
    "Shard",
    "StepLabelLayout",
    "load_labelled_solutions",
    "load_problems",
    "parse_field_map",
    "problem_key",
    "session_id_for",
]
