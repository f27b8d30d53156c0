"""Where problems come from: a JSONL file, or a Hugging Face dataset when it is not a file.

How `--dataset TEXT` is read, first rule that applies:

1. `hf:NAME[:CONFIG][@SPLIT]` is a Hugging Face dataset. NAME is a Hub id
   (`hf:HuggingFaceH4/MATH-500`) or a local directory that `datasets` reads: a folder
   of jsonl/json/csv/parquet files, or a folder written by `save_to_disk`.
2. An existing path is a JSONL file (a directory is refused, pointing at `hf:DIR`).
3. A Hub-shaped id, `OWNER/NAME[:CONFIG][@SPLIT]` with no file suffix such as
   `.jsonl`, is a Hugging Face dataset: `HuggingFaceH4/MATH-500@test`.
4. Anything else is a JSONL file, which then does not exist (an error naming it).

The split is `@SPLIT`, else the `split` argument (`--split`), else `test` when the
dataset has one, else its only split; the split used is what `run.json` records.
Loading needs the `datasets` package (the `train` extra), imported only here and only
for such a source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from journey.errors import ConfigError, DatasetError

__all__ = ["DEFAULT_SPLIT", "DatasetSource", "load_hf_rows", "parse_dataset_source"]

DEFAULT_SPLIT = "test"
"""The split taken when none is named and the dataset has it (MATH-500 has only `test`)."""

_HF_PREFIX = "hf:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?(@[\w.-]+)?$")
_FILE_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".ndjson", ".txt", ".csv", ".parquet")
_INSTALL = "pip install 'journey-learning[train]' (or pip install datasets)"


@dataclass(frozen=True)
class DatasetSource:
    """A parsed `--dataset` value."""

    kind: Literal["jsonl", "hf"]
    name: str
    """The JSONL file, or the Hub id or local directory of a Hugging Face dataset."""
    config: str | None = None
    """The dataset's configuration (subset), for a Hugging Face dataset that has several."""
    split: str | None = None
    """The split asked for (None: chosen when loaded), or the one loaded."""

    def __str__(self) -> str:
        if self.kind == "jsonl":
            return self.name
        config = f":{self.config}" if self.config else ""
        split = f"@{self.split}" if self.split else ""
        return f"{_HF_PREFIX}{self.name}{config}{split}"

    def record(self) -> dict[str, Any]:
        """Where the problems came from, as `run.json`'s dataset section keeps it."""
        if self.kind == "jsonl":
            return {"format": "jsonl", "path": self.name}
        return {
            "format": "huggingface",
            "spec": str(self),  # what --dataset takes to load the same split again
            "name": self.name,
            "config": self.config,
            "split": self.split,
        }


def parse_dataset_source(text: str | Path, *, split: str | None = None) -> DatasetSource:
    """Read a `--dataset` value by the rules in the module docstring.

    Args:
        text: A JSONL path, `hf:NAME[:CONFIG][@SPLIT]`, or a Hub id.
        split: The split to load (`--split`), for a Hugging Face dataset only.

    Raises:
        ConfigError: an empty name, config or split; a split given for a JSONL file;
            or two different splits (`@SPLIT` and `split`).
    """
    raw = str(text)
    if raw.startswith(_HF_PREFIX):
        return _hf_source(raw, raw[len(_HF_PREFIX) :], split)
    path = Path(raw).expanduser()
    if not path.exists() and _HUB_ID.match(raw) and not raw.lower().endswith(_FILE_SUFFIXES):
        return _hf_source(raw, raw, split)
    if split is not None:
        raise ConfigError(
            f"a split ({split!r}) only applies to a Hugging Face dataset, "
            f"not to the JSONL file {raw!r}"
        )
    return DatasetSource("jsonl", str(Path(raw)))


def _hf_source(raw: str, body: str, split: str | None) -> DatasetSource:
    rest, at, named_split = body.partition("@")
    name, colon, config = rest.partition(":")
    if not name or (colon and not config) or (at and not named_split):
        raise ConfigError(
            f"dataset {raw!r} should look like hf:NAME[:CONFIG][@SPLIT], "
            "e.g. hf:HuggingFaceH4/MATH-500@test"
        )
    if at and split is not None and split != named_split:
        raise ConfigError(f"dataset {raw!r} names split {named_split!r} but --split is {split!r}")
    if split is not None and not split.strip():
        raise ConfigError("the split must not be empty")
    return DatasetSource("hf", name, config or None, named_split or split)


def load_hf_rows(source: DatasetSource) -> tuple[Iterable[Mapping[str, Any]], DatasetSource]:
    """The rows of a Hugging Face dataset's split, and the source with that split named.

    Raises:
        DatasetError: `datasets` is not installed, the Hub cannot be reached, the
            dataset, config or split does not exist, or its files cannot be read;
            one line naming the dataset.
    """
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            f"reading Hugging Face dataset {str(source)!r} needs {_INSTALL}"
        ) from None
    local = Path(source.name).expanduser()
    saved = _saved_to_disk(local)
    try:
        if saved:
            if source.config:
                raise DatasetError(
                    f"{str(source)!r} is a save_to_disk folder: it has no configs "
                    f"({source.config!r} asked for)"
                )
            loaded: Any = datasets.load_from_disk(str(local))
        else:
            loaded = datasets.load_dataset(source.name, source.config, split=source.split)
    except DatasetError:
        raise
    except ConnectionError as error:
        raise DatasetError(
            f"cannot reach the Hugging Face Hub for dataset {str(source)!r} "
            f"({_first_line(error)}): check the name and the network, or pass a local "
            "copy as hf:DIR"
        ) from None
    except Exception as error:  # datasets raises many kinds; each is the user's to fix
        raise DatasetError(
            f"cannot load Hugging Face dataset {str(source)!r}: "
            f"{type(error).__name__}: {_first_line(error)}"
        ) from None
    if not isinstance(loaded, Mapping):  # one split: asked for, or a saved Dataset
        if saved and source.split:
            raise DatasetError(
                f"{str(source)!r} is one saved dataset with no splits "
                f"({source.split!r} asked for): drop @SPLIT and --split"
            )
        return loaded, source
    return _pick_split(loaded, source)


def _pick_split(
    splits: Mapping[str, Any], source: DatasetSource
) -> tuple[Iterable[Mapping[str, Any]], DatasetSource]:
    names = list(splits)
    if source.split is not None:
        chosen = source.split
    elif DEFAULT_SPLIT in splits:
        chosen = DEFAULT_SPLIT
    elif len(names) == 1:
        chosen = names[0]
    else:
        raise DatasetError(
            f"Hugging Face dataset {str(source)!r} has splits {', '.join(names)} and no "
            f"{DEFAULT_SPLIT!r}: choose one with @SPLIT or --split"
        )
    if chosen not in splits:
        raise DatasetError(
            f"Hugging Face dataset {str(source)!r} has no split {chosen!r} "
            f"(splits: {', '.join(names)})"
        )
    return splits[chosen], replace(source, split=chosen)


def _saved_to_disk(path: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`, which
    `load_dataset` refuses (it wants `load_from_disk`)."""
    return path.is_dir() and any(
        (path / marker).is_file() for marker in ("state.json", "dataset_dict.json")
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"
