"""Problems: datasets of problems with gold answers, from files or the Hugging Face
hub cache, validated line by line and split into shards."""

from journey.problems.dataset import (
    DatasetIssue,
    ProblemDataset,
    ProblemRecord,
    Shard,
    load_problems,
)
from journey.problems.ids import session_id_for

__all__ = [
    "DatasetIssue",
    "ProblemDataset",
    "ProblemRecord",
    "Shard",
    "load_problems",
    "session_id_for",
]
