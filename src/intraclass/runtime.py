"""Process-level plumbing shared by every workflow script: logging, threads, device.

The scripts in ``workflow/scripts`` are thin: they call :func:`script_logger` first, so
that every rule writes progress and, on failure, the full traceback to its own
``log:`` file (and to stderr, which Snakemake shows), then call the package.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def script_logger(log_path: str | os.PathLike | None, name: str = "intraclass",
                  append: bool = False) -> logging.Logger:
    """Configure the root logger to write to ``log_path`` and stderr; return a named logger.

    Uncaught exceptions are logged with their traceback before the process exits, so a
    failed job's log says why it failed. ``append`` keeps what the file holds (a resumed
    training job continues the log of the run that was killed). The two handlers print
    a failure once to the log file and once to stderr; Python's own hook is not called
    as well (it printed the traceback a second time to stderr; the exit status stays 1).
    Ctrl-C keeps Python's short message, unlogged.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_path, mode="a" if append else "w")
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)

    def _log_uncaught(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
        else:
            logging.getLogger(name).error("failed", exc_info=(exc_type, exc, tb))

    sys.excepthook = _log_uncaught
    return logging.getLogger(name)


def export_package_path(src: str | os.PathLike) -> None:
    """Put ``src`` first on ``PYTHONPATH`` of this process's children (the workflow's jobs,
    local or on SLURM nodes), so that they import the package from the same checkout."""
    current = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), current) if p)


def require_keys(mapping, keys, name: str) -> None:
    """Raise ``KeyError`` naming every key of ``keys`` missing from ``mapping`` (a rule's
    ``params.<name>``): stages never fall back to silent defaults for their settings."""
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise KeyError(f"params.{name} lacks {', '.join(missing)}")


def set_threads(threads: int) -> None:
    """Bound intra-op parallelism to the cores Snakemake gave the job (``threads:``).

    Sets the thread variables that numpy's BLAS and torch read when they load, and
    torch's pool if torch is loaded already. It never imports torch itself: importing
    the CUDA build costs seconds, which measures and analysis jobs do not need.
    """
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def pick_device(preference: str = "auto", log: logging.Logger | None = None):
    """Return a ``torch.device``: ``auto`` takes CUDA when present, else the CPU.

    ``cuda`` when no GPU is visible is an error (a GPU job silently running on a CPU
    node would take days), not a fallback. ``auto`` falling back to the CPU although
    torch was built with CUDA (a GPU job on a node without a usable GPU, or a laptop with
    the default Linux wheel) logs a WARNING to ``log``; the workflow's GPU scripts call
    this first, so the warning is the first line of the job's log.
    """
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.version.cuda is not None:
            (log or logging.getLogger(__name__)).warning(
                "device auto: torch %s is built for CUDA %s but no GPU is usable here; "
                "running on the CPU (set device: cpu to silence this, or check the job's "
                "GPU request)", torch.__version__, torch.version.cuda)
        return torch.device("cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {preference!r} was requested but no CUDA device is visible "
            "(check the job's GPU request, or set device: auto / cpu in the config)"
        )
    return torch.device(preference)


def atomic_target(path: str | os.PathLike) -> Path:
    """Temporary sibling path for writing ``path`` atomically (write there, then rename)."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``.

    Every file a stage writes goes through here, so a killed or failed job never leaves
    a file that later stages accept, and an earlier ``path`` stays untouched until the
    new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_target(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def replace_dir(new: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the finished directory ``new`` to ``target`` (same filesystem). An older
    ``target`` is renamed aside first and deleted only once ``new`` is in place, so a
    reader never finds a half-replaced directory."""
    new, target = Path(new), Path(target)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
    else:
        os.rename(new, target)
    return target
