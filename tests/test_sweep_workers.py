"""Sweep workers: a worker that dies is replaced and its job tried once more, then reported lost while the other
jobs finish; a killed sweep leaves no process behind (its workers, fork server and resource tracker all end)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from gradwatch.sweep.executors import ProcessExecutor, WorkerLost

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process sessions")


def square_or_die(job: tuple[int, str]) -> int:
    """A job for the pool: ``(n, tries_dir)``; n = 13 kills its own worker (and leaves a mark per try)."""
    n, tries_dir = job
    if n == 13:
        Path(tries_dir, f"try-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return n * n


def test_a_dead_worker_is_replaced_its_job_retried_once_then_reported_lost(tmp_path):
    jobs = [(n, str(tmp_path)) for n in (2, 13, 3, 4, 5)]
    with ProcessExecutor(2) as ex:
        got = dict(ex.submit_all(square_or_die, jobs, lost=lambda job, reason: ("lost", job[0], reason)))
    assert sorted(got) == [0, 1, 2, 3, 4]  # every job answered: the sweep went on
    assert [got[i] for i in (0, 2, 3, 4)] == [4, 9, 16, 25]
    kind, n, reason = got[1]
    assert (kind, n) == ("lost", 13) and "died" in reason and "2 tries" in reason
    assert len(list(tmp_path.glob("try-*"))) == 2  # tried twice, in two different worker processes


def test_without_a_lost_handler_a_dead_worker_is_a_named_error_not_broken_process_pool(tmp_path):
    with ProcessExecutor(1) as ex, pytest.raises(WorkerLost, match="job 0: the worker process running it died"):
        list(ex.submit_all(square_or_die, [(13, str(tmp_path))]))


def _session(sid: int) -> list[str]:
    """The processes of session ``sid`` (read from /proc): their command lines."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except (ProcessLookupError, PermissionError, FileNotFoundError):
                pass
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_leaves_no_process_behind(tmp_path, sig):
    store = tmp_path / "runs.sqlite"
    cmd = [sys.executable, "-m", "gradwatch", "sweep", "--param", "lr=0.01,0.02,0.03,0.04", "--epochs", "200",
           "--width", "32", "--store", str(store), "--workers", "2", "--json"]  # runs far longer than the test
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)  # its own session: every process it starts is found by sid
    try:
        deadline = time.time() + 120
        while time.time() < deadline and sum("forkserver" in c for c in _session(proc.pid)) < 3:
            time.sleep(0.1)  # until the fork server and both workers run
        assert proc.poll() is None and sum("forkserver" in c for c in _session(proc.pid)) >= 3, _session(proc.pid)
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.time() + 10
        while _session(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert _session(proc.pid) == []
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if _session(proc.pid) else None
