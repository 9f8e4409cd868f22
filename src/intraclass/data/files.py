"""Checksums, downloads and archive extraction that never leave a half-written file.

A download goes to a temporary sibling of its destination and is renamed into
place only once complete and its md5 verified; an archive is extracted to a temporary
directory and its folder renamed into place. An interrupted job therefore leaves either
nothing or a stray temporary directory, never a file that looks like the real one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from intraclass.data.format import DatasetError
from intraclass.runtime import replace_dir, write_atomic

log = logging.getLogger(__name__)


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes (``md5`` for the torchvision archives, ``sha256`` for ours)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def download(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest``, verified against ``md5`` (torchvision's helper checks it)."""
    from torchvision.datasets.utils import download_url

    log.info("downloading %s to %s", url, dest)
    try:  # into a temporary sibling, renamed to dest once complete and md5-verified
        write_atomic(dest, lambda tmp: download_url(url, str(tmp.parent), tmp.name, md5))
    except Exception as e:  # network errors come in many types; all mean the same here
        raise DatasetError(
            f"downloading {url} to {dest} failed ({type(e).__name__}: {e}); check network access "
            f"(compute nodes often have none: run prepare_dataset on a login node), or fetch the "
            f"file by hand and place it at {dest}"
        ) from e


def extract_folder(archive: Path, folder_name: str, root: Path) -> Path:
    """Extract ``archive`` (tar.gz) and move its top folder ``folder_name`` to ``root``.

    An existing ``root/folder_name`` (incomplete or corrupt, or the caller would not be
    extracting) is replaced. Returns the folder's path.
    """
    target = root / folder_name
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{folder_name}.extract-", dir=root))
    log.info("extracting %s", archive)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmpdir, filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DatasetError(
                f"{archive} cannot be extracted ({e}); delete it and download it again"
            ) from e
        extracted = tmpdir / folder_name
        if not extracted.is_dir():
            raise DatasetError(f"{archive} holds no folder {folder_name!r}; it is not the expected archive")
        replace_dir(extracted, target)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return target
