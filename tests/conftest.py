"""Shared fixtures. Tests run on CPU with no network; real MNIST is read from ../shared/data/mnist."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

torch.set_num_threads(1)  # tests may run two at a time on 2 cores
# hypothesis keeps caches (.hypothesis/) in the working directory unless told otherwise: not in the checkout
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="gradwatch-hypothesis-"))


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache or the network: an empty cache dir and no GRADWATCH_DATA."""
    monkeypatch.setenv("GRADWATCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("GRADWATCH_DATA", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _never_the_users_store(tmp_path_factory, monkeypatch):
    """Run every test in an empty temporary working directory, so the default run store
    (``gradwatch-runs/runs.sqlite``, relative to the working directory) lands in tmp; and fail the test if it
    still created ``gradwatch-runs`` in the checkout."""
    leftover = REPO / "gradwatch-runs"
    existed = leftover.exists()
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    monkeypatch.delenv("GRADWATCH_DOWNLOAD", raising=False)
    yield
    if not existed and leftover.exists():
        pytest.fail(f"the test wrote the user's run store {leftover.name}/ in the checkout; give it a tmp store")


@pytest.fixture
def no_download(monkeypatch):
    """Make every MNIST download attempt fail as it would offline."""
    from gradwatch.lab import mnist

    def refuse(*a, **k):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", refuse)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST t10k files not found in {SHARED_MNIST}")
    return SHARED_MNIST


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m gradwatch ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gradwatch", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)
