"""MNIST from the four standard IDX files: find, verify (md5), download only when allowed, parse.

Where the files are looked for, in order: the ``data_dir`` argument (``--data-dir``), the ``GRADWATCH_DATA``
environment variable, and the cache directory (``GRADWATCH_CACHE`` or ``~/.cache/gradwatch``); in each, the
directory itself and its ``mnist/`` subfolder. A directory that holds only the t10k pair is enough: the
caller then splits those 10,000 images into train and test.

Downloading is opt-in: ``download=True`` (the CLI's ``--download``) or ``GRADWATCH_DOWNLOAD=1``. Otherwise a
missing file is an error that says which files to put where and how to allow the download.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from gradwatch.errors import DataError

# Canonical md5 sums of the gzipped files (LeCun et al. 1998; the same values torchvision checks).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DOWNLOAD_TIMEOUT_S = 20.0
DOWNLOAD_ENV = "GRADWATCH_DOWNLOAD"


def download_allowed(download: bool | None = None) -> bool:
    """``download`` when given, else whether ``GRADWATCH_DOWNLOAD`` is set to 1 (or true, yes)."""
    if download is not None:
        return bool(download)
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def cache_dir() -> Path:
    """Where downloaded files go: ``$GRADWATCH_CACHE/mnist`` or ``~/.cache/gradwatch/mnist``."""
    root = os.environ.get("GRADWATCH_CACHE") or Path.home() / ".cache" / "gradwatch"
    return Path(root) / "mnist"


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """Parse one gzipped IDX file (magic 0x0000, type 0x08 = unsigned byte, then the dimensions, big-endian)."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"MNIST file {path} is not a readable gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"MNIST file {path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise DataError(f"MNIST file {path} is truncated: header says {dims}, data has {len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _candidates(data_dir: str | os.PathLike | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        if not d.is_dir():
            raise DataError(f"--data-dir {str(data_dir)!r} does not exist or is not a directory")
        roots.append(d)
    elif os.environ.get("GRADWATCH_DATA"):
        roots.append(Path(os.environ["GRADWATCH_DATA"]).expanduser())
    roots.append(cache_dir().parent)
    return [p for r in roots for p in (r, r / "mnist")]


def _verify(path: Path) -> Path:
    got = md5sum(path)
    if got != MD5[path.name]:
        raise DataError(
            f"MNIST file {path} has md5 {got}, expected {MD5[path.name]}: the file is corrupt or not the "
            "original; delete it and put the original there (or allow the download with --download)"
        )
    return path


def _find(names: tuple[str, str], dirs: list[Path]) -> tuple[Path, Path] | None:
    for d in dirs:
        images, labels = d / names[0], d / names[1]
        if images.is_file() and labels.is_file():
            return _verify(images), _verify(labels)
    return None


def _download(names: tuple[str, str]) -> tuple[Path, Path] | None:
    """Download the (images, labels) ``names`` into the cache; None (and nothing half-written) when no mirror
    answers."""
    images = _download_one(names[0])
    if images is None:
        return None
    labels = _download_one(names[1])
    return None if labels is None else (images, labels)


def _download_one(name: str) -> Path | None:
    target = cache_dir()
    dest = target / name
    if not dest.is_file():
        for mirror in MIRRORS:
            try:
                target.mkdir(parents=True, exist_ok=True)
                with (
                    urllib.request.urlopen(mirror + name, timeout=DOWNLOAD_TIMEOUT_S) as r,
                    tempfile.NamedTemporaryFile(dir=target, delete=False) as tmp,
                ):
                    shutil.copyfileobj(r, tmp)
                Path(tmp.name).replace(dest)
                break
            except OSError:
                continue
        else:
            return None
    return _verify(dest)


def locate(data_dir: str | os.PathLike | None = None, download: bool | None = None) -> dict[str, tuple[Path, Path]]:
    """Find MNIST: ``{"train": (images, labels), "test": (images, labels)}``, or only ``"test"``. When the files
    are missing, download them into the cache only if :func:`download_allowed` (``download`` or
    ``GRADWATCH_DOWNLOAD=1``)."""
    dirs = _candidates(data_dir)
    test = _find(TEST, dirs)
    train = _find(TRAIN, dirs)
    allowed = download_allowed(download)
    if test is None and allowed:
        test = _download(TEST)
        train = _download(TRAIN) if test is not None else None
    if test is None:
        where = str(data_dir) if data_dir is not None else os.environ.get("GRADWATCH_DATA") or str(cache_dir())
        files = f"put {TEST[0]} and {TEST[1]} (and optionally {TRAIN[0]}, {TRAIN[1]}) in {where}"
        if allowed:
            raise DataError(
                f"MNIST not found and no mirror answered the download: {files}, or pass --data-dir DIR "
                "/ set GRADWATCH_DATA"
            )
        raise DataError(
            f"MNIST not found: {files}, or pass --data-dir DIR / set GRADWATCH_DATA; or allow the "
            f"download into {cache_dir()} with --download or {DOWNLOAD_ENV}=1"
        )
    return {"test": test} if train is None else {"train": train, "test": test}


def load_arrays(paths: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [n, 28, 28]`` and labels ``uint8 [n]`` from one (images, labels) pair."""
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"MNIST files {paths[0].name} and {paths[1].name} do not match: "
            f"{images.shape} images, {labels.shape} labels"
        )
    return images, labels
