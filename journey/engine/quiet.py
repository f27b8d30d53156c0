"""Keep transformers' per-load progress bars off our consoles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide the "Loading weights" bar while a model loads: a 0.2 s bar in the middle of a
    live debate or a synthesis progress bar is noise. Restores the setting afterwards,
    so a caller's own training bars are untouched."""
    from transformers.utils import logging as hf_logging  # only once a model loads

    was_enabled = hf_logging.is_progress_bar_enabled()
    # transformers leaves both toggles unannotated.
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
