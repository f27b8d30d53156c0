"""Scripted critics for `journey eval critic` on the shared MR-GSM8K file, the bounds any
critic is read against: an oracle that knows each solution's first wrong step (it must
score F1 1.0) and a critic that accepts everything (F1 0.0).

    PYTHONPATH=bench journey eval critic --critic function:mrgsm_critics:oracle \\
        --dataset ../shared/data/mr-gsm8k-steps.jsonl --out evals/critic-oracle
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from autogen_core.models import LLMMessage

_DATA = Path(
    os.environ.get(
        "JOURNEY_MR_GSM8K",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "mr-gsm8k-steps.jsonl",
    )
)
_ACCEPT = "VERDICT: correct\nACTION: continue\nREASON: fine."
_REJECT = "VERDICT: incorrect\nACTION: reflect\nREASON: this step is wrong."


def _first_errors() -> dict[tuple[str, str], int | None]:
    """Each solution's first wrong step, keyed by its question and first step (a question
    has several solutions), numbered as journey numbers steps: blank ones left out."""
    found: dict[tuple[str, str], int | None] = {}
    for line in _DATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        steps = [s for s in row["steps"] if s.strip()]
        first = row["first_error_step"]
        if first is not None:
            first = sum(1 for s in row["steps"][:first] if s.strip())
        found[(row["question"].strip(), steps[0].strip())] = first
    return found


_FIRST = _first_errors() if _DATA.is_file() else {}


def oracle(messages: Sequence[LLMMessage]) -> str:
    """Rejects exactly the labelled first wrong step."""
    prompt = str(messages[-1].content)
    problem = prompt.split("Problem: ", 1)[1].split("\n\nSteps:", 1)[0].strip()
    first_step = prompt.split("\n\nSteps:\n", 1)[1].split("\n")[0].split(": ", 1)[1].strip()
    step = int(re.findall(r"step (\d+)\.\s*$", prompt)[-1])
    return _REJECT if _FIRST[(problem, first_step)] == step else _ACCEPT


def accept(messages: Sequence[LLMMessage]) -> str:
    """Accepts every step."""
    return _ACCEPT
