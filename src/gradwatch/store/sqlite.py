"""The embedded run store: one SQLite database (WAL mode), no server, no pickle.

Tables: ``runs`` (id, config JSON, seed, status, start/end times, gradwatch and torch versions, pid and host
of the process writing it, summary JSON, error), ``metrics`` (run, epoch, name, value), ``layers`` (run, index,
name), ``history`` (run, step, layer index, stat, value — the watch history: only measured values, a NaN, which the
watch records where a statistic was not measured, is not stored), ``stats`` (run, the names of the statistics
the watch recorded, in its order), ``histograms`` (run, step,
layer index, the log10|g| bin counts as JSON), ``time_grads`` (run, epoch, t,
‖∂L/∂h_t‖ of recurrent runs). Every write is one transaction (an epoch's metrics and history rows go in
together with ``executemany``), so a process killed mid-run leaves the database consistent: the epochs written
so far and a run whose status is still ``running``. On the next open, such a run whose process is gone is
marked ``interrupted``. NaN is stored as NULL and read back as NaN; configs are JSON, tensors are never stored.

Every run has a ``key``: a hash of its canonical config, seed included (:func:`gradwatch.store.keys.config_key`).
Starting a run removes the earlier ``interrupted`` or ``failed`` runs with the same key, so retrying never
leaves a duplicate; sweeps and ``gradwatch lab all`` skip the keys that are already ``completed``. A store
written before keys existed gets the column (and its runs their keys) when it is opened.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gradwatch.errors import ConfigError, PathError

DEFAULT_STORE = Path("gradwatch-runs") / "runs.sqlite"
APPLICATION_ID = 0x67726477  # "grdw" in the SQLite header: this file is a gradwatch run store
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0
STATUSES = ("running", "completed", "diverged", "failed", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    seed INTEGER,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'diverged', 'failed', 'interrupted')),
    started REAL NOT NULL,
    ended REAL,
    gradwatch_version TEXT,
    torch_version TEXT,
    pid INTEGER,
    host TEXT,
    summary TEXT,
    error TEXT,
    key TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, epoch, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS layers (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stat TEXT NOT NULL,
    step INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, stat, step, layer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (run_id, name)
);
CREATE TABLE IF NOT EXISTS histograms (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    counts TEXT NOT NULL,
    PRIMARY KEY (run_id, step, layer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS time_grads (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    t INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, epoch, t)
) WITHOUT ROWID;
"""


def store_problem(exc: BaseException) -> str:
    """What an SQLite error means for a run store, in one line for its user."""
    text = str(exc)
    if "full" in text:
        return f"the disk is full ({text}); free some space and run again (what was stored before is kept)"
    if "malformed" in text or "corrupt" in text:
        return f"the file is damaged ({text}); `sqlite3 FILE .recover` may save its runs"
    if "not a database" in text:
        return f"is not an SQLite database ({text}): not a gradwatch run store"
    if "locked" in text or "busy" in text:
        return f"another process holds it locked ({text}); try again when it is done"
    return text


def _translated(exc: sqlite3.Error) -> bool:  # an error of the file or the disk, not of gradwatch's own SQL
    return type(exc) in (sqlite3.DatabaseError, sqlite3.OperationalError)


def _reads(method):
    """A reading method of :class:`RunStore`: a damaged file or a failing disk is a :class:`PathError` naming
    the store, not a raw ``sqlite3`` error."""
    import functools

    @functools.wraps(method)
    def read(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            if not _translated(exc):
                raise
            raise PathError("store", self.path, store_problem(exc)) from None

    return read


def _num(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


OPEN_ATTEMPTS = 6  # 0.05 s, then doubling: 1.55 s in all before a transient error is reported


def _transient(exc: sqlite3.OperationalError) -> bool:
    """An error that another process's work on the same store causes for a moment (not a damaged file)."""
    text = str(exc)
    return "disk I/O error" in text or "locked" in text or "busy" in text


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """Open for reading only; when SQLite cannot create its WAL side files (a read-only directory), read the file
    as immutable."""
    from urllib.parse import quote

    uri = "file:" + quote(str(path.resolve()))
    try:
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if _transient(exc) and os.access(path.parent, os.W_OK):
            raise  # another process at work on the store: the caller tries again
        # the WAL side files cannot be created (a read-only directory): read the file as it is
        conn = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


TABLES = ("runs", "metrics", "layers", "history", "stats", "histograms", "time_grads")
RUN_COLUMNS = {"id", "config", "status", "started"}  # what any gradwatch store's runs table has had


def _check_header(path: Path, readonly: bool) -> None:
    """A file that is not an SQLite database (text, a truncated copy) is refused before SQLite opens it; an empty
    one is a store only once gradwatch has written it."""
    if not path.is_file():
        return
    if path.with_name(path.name + "-wal").exists():  # a store being written (WAL mode): its first page may still
        return  # be in the write-ahead log, or half copied by a checkpoint; SQLite reads it whole
    with open(path, "rb") as f:
        head = f.read(100)
    if not head.strip(b"\0"):
        if readonly:
            raise PathError(
                "store",
                path,
                "is an empty file (0 bytes), not a run store yet; `gradwatch train "
                "--store PATH` or gw.watch(..., store=PATH) creates one",
            )
        return
    if not head.startswith(SQLITE_MAGIC):
        raise PathError(
            "store",
            path,
            "is not an SQLite database (its first bytes say otherwise): not a gradwatch "
            "run store; pass the .sqlite file gradwatch wrote",
        )
    if len(head) < 100:
        raise PathError(
            "store", path, f"is truncated ({len(head)} bytes, shorter than an SQLite header): not a usable run store"
        )


def _check_ours(conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
    """Refuse an SQLite database that another program wrote (other tables, another application id): gradwatch
    never reads it as runs, nor writes its tables into it."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_")
    }
    if not tables:
        if readonly:
            raise PathError(
                "store", path, "is an SQLite database without any runs table: not a gradwatch run store (yet)"
            )
        return
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    foreign = sorted(tables - set(TABLES) - {"runs_new"})
    if app_id not in (0, APPLICATION_ID) or not RUN_COLUMNS <= columns or foreign:
        what = f"its tables: {', '.join(sorted(tables)[:5])}" if foreign or not columns else "another application id"
        raise PathError(
            "store",
            path,
            f"is another program's SQLite database ({what}), not a gradwatch run store; "
            "gradwatch leaves it untouched: pass another --store",
        )


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on an exception); nested ones join the outer one. An
    SQLite error of the file or the disk (full, damaged, locked) becomes a :class:`PathError` naming the store."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn, self.path, self.outer = conn, path, False

    def __enter__(self) -> _Transaction:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> Literal[False]:
        if not self.outer:
            return False
        try:
            self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
        except sqlite3.Error as failed:
            if self.conn.in_transaction:
                self.conn.rollback()
            if exc is None and _translated(failed):
                raise PathError("store", self.path, store_problem(failed)) from None
            if exc is None:
                raise
        if isinstance(exc, sqlite3.Error) and _translated(exc):
            raise PathError("store", self.path, store_problem(exc)) from None
        return False


class RunStore:
    """``RunStore(path)`` opens (creating if needed) the database; usable as a context manager."""

    def __init__(self, path: str | os.PathLike = DEFAULT_STORE, *, readonly: bool = False):
        """``readonly=True`` opens an existing store for reading only (a read-only file or directory works);
        a missing, unreadable or unwritable store raises :class:`~gradwatch.errors.PathError`."""
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError("store", path, "expected the path of an SQLite file")
        self.path = Path(path).expanduser()
        self.readonly = readonly
        self.host = socket.gethostname()
        if self.path.is_dir():
            raise PathError("store", path, "is a directory; expected an SQLite file (e.g. DIR/runs.sqlite)")
        if readonly and not self.path.is_file():
            raise PathError("store", path, "no run store there; train a run first or pass --store")
        if self.path.exists() and not os.access(self.path, os.R_OK):
            raise PathError("store", path, "cannot be read (permission denied)")
        _check_header(self.path, readonly)
        try:
            for attempt in range(OPEN_ATTEMPTS):
                try:
                    self._open(readonly)
                    break
                except sqlite3.OperationalError as exc:
                    # another process creating, checkpointing or closing the WAL files at this very moment: a
                    # moment later the same open succeeds
                    if not _transient(exc) or attempt == OPEN_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * 2**attempt)
        except OSError as exc:
            raise PathError("store", path, f"cannot be created ({exc.strerror or exc})") from None
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "unable to open" in str(exc):
                raise PathError("store", path, f"cannot be written ({exc}); pass a writable --store") from None
            raise PathError("store", path, store_problem(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise PathError("store", path, store_problem(exc)) from None
        if not readonly:
            self.mark_interrupted()

    def _open(self, readonly: bool) -> None:
        if readonly:
            self.conn = _connect_readonly(self.path)
            _check_ours(self.conn, self.path, readonly)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        _check_ours(self.conn, self.path, readonly)  # before anything is written into it
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._create_or_migrate()
        self.conn.execute("PRAGMA foreign_keys=ON")

    def _create_or_migrate(self) -> None:
        """Create the tables; rebuild a ``runs`` table from before the ``diverged`` status (its CHECK lists
        the allowed statuses, which SQLite cannot alter in place). Foreign keys are off here, so the rebuild
        keeps every run's metrics and history."""
        row = self.conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
        with self._tx():
            if row is not None:
                self._migrate()  # run keys first: the column is added last, where the schema has it
            if row is not None and "'diverged'" not in row[0]:
                self.conn.execute(SCHEMA.split(";")[0].replace("EXISTS runs", "EXISTS runs_new"))
                self.conn.execute("INSERT INTO runs_new SELECT * FROM runs")
                self.conn.execute("DROP TABLE runs")
                self.conn.execute("ALTER TABLE runs_new RENAME TO runs")
            for stmt in filter(str.strip, SCHEMA.split(";")):
                self.conn.execute(stmt)
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._migrate()

    # --- plumbing -------------------------------------------------------------------------------------------
    def _tx(self):
        """One write transaction; inside :meth:`batch` (or another ``_tx``) it joins the open one."""
        return _Transaction(self.conn, self.path)

    def batch(self) -> _Transaction:
        """``with store.batch():`` makes every write inside one transaction (one commit, one fsync): storing
        thousands of runs back to back, or a sweep's record with its epochs. An exception rolls all of it back."""
        return self._tx()

    def _migrate(self) -> None:
        """Stores from before run keys: add the column and key every run from its stored config."""
        from gradwatch.store.keys import config_key

        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(runs)")}
        if "key" not in columns:
            self.conn.execute("ALTER TABLE runs ADD COLUMN key TEXT")
            rows = self.conn.execute("SELECT id, config FROM runs").fetchall()
            self.conn.executemany(
                "UPDATE runs SET key = ? WHERE id = ?", [(config_key(json.loads(cfg)), rid) for rid, cfg in rows]
            )
        self.conn.execute("CREATE INDEX IF NOT EXISTS runs_key ON runs(key)")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- writing --------------------------------------------------------------------------------------------
    def start_run(self, run_id: str, config: Any, key: str | None = None, *, replace: bool = False) -> str:
        """Record a new ``running`` run; returns its key (by default the hash of ``config``). Earlier
        ``interrupted`` or ``failed`` runs with the same key are deleted in the same transaction; with
        ``replace`` (a forced re-run) every earlier run of the key is, but one still running in a live process,
        so a key never holds two records, even when the re-run is killed."""
        import torch

        from gradwatch._version import __version__
        from gradwatch.store.keys import config_key

        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        key = key or config_key(cfg)
        with self._tx():
            if replace:
                earlier = self.conn.execute("SELECT id, status, pid, host FROM runs WHERE key = ?", (key,))
                self.conn.executemany(
                    "DELETE FROM runs WHERE id = ?",
                    [
                        (rid,)
                        for rid, status, pid, host in earlier.fetchall()
                        if status != "running" or not self._alive(pid, host)
                    ],
                )
            else:
                self.conn.execute("DELETE FROM runs WHERE key = ? AND status IN ('interrupted', 'failed')", (key,))
            if self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None:
                raise ConfigError(
                    "run_id",
                    run_id,
                    "a run with this id is already stored; ids come from gradwatch.store.ids.new_run_id()",
                )
            self.conn.execute(
                "INSERT INTO runs (id, config, seed, status, started, gradwatch_version, torch_version, pid, host,"
                " key) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    json.dumps(cfg, sort_keys=True),
                    cfg.get("seed"),
                    time.time(),
                    __version__,
                    torch.__version__,
                    os.getpid(),
                    self.host,
                    key,
                ),
            )
        return key

    def _alive(self, pid: int | None, host: str | None) -> bool:
        """Whether the process that writes a ``running`` run may still be alive (always, on another host)."""
        return host != self.host or pid is None or _pid_alive(pid)

    def add_epoch(
        self,
        run_id: str,
        epoch: int,
        metrics: dict[str, Any],
        *,
        layers: Sequence[str] = (),
        history: Iterable[tuple[int, int, str, float]] = (),
        time_grads: Sequence[float] | None = None,
    ) -> None:
        """One epoch's metrics, the watch-history rows ``(step, layer index, stat, value)`` recorded since the
        last call and the per-time-step gradient norms, in one transaction."""
        with self._tx():
            self.conn.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)",
                [
                    (run_id, epoch, k, _num(v))
                    for k, v in metrics.items()
                    if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
                ],
            )
            self._insert_history(run_id, layers, history)
            if time_grads is not None:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO time_grads VALUES (?, ?, ?, ?)",
                    [(run_id, epoch, t, _num(v)) for t, v in enumerate(time_grads)],
                )

    def add_history(
        self,
        run_id: str,
        rows: Iterable[tuple[int, int, str, float]],
        *,
        layers: Sequence[str] = (),
        histograms: Iterable[tuple[int, int, Sequence[float]]] = (),
    ) -> None:
        """Watch-history rows ``(step, layer index, stat, value)`` and histogram rows ``(step, layer index,
        counts)`` of a run that has no epochs (a watched run of the user's own model), in one transaction."""
        with self._tx():
            self._insert_history(run_id, layers, rows)
            self.conn.executemany(
                "INSERT OR REPLACE INTO histograms VALUES (?, ?, ?, ?)",
                [(run_id, step, layer, json.dumps([float(c) for c in counts])) for step, layer, counts in histograms],
            )

    def _insert_history(self, run_id: str, layers: Sequence[str], rows: Iterable[tuple[int, int, str, float]]) -> None:
        if layers:
            self.conn.executemany(
                "INSERT OR IGNORE INTO layers VALUES (?, ?, ?)", [(run_id, i, name) for i, name in enumerate(layers)]
            )
        rows = list(rows)
        self.conn.executemany(
            "INSERT OR IGNORE INTO stats VALUES (?, ?)", [(run_id, stat) for stat in dict.fromkeys(r[2] for r in rows)]
        )
        self.conn.executemany(
            "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?)",
            [(run_id, stat, step, layer, x) for step, layer, stat, v in rows for x in (float(v),) if not math.isnan(x)],
        )  # NaN: not measured here, not stored

    def finish_run(
        self, run_id: str, status: str, *, summary: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        if status not in STATUSES:
            raise ConfigError("status", status, "expected one of " + ", ".join(STATUSES))
        with self._tx():
            self.conn.execute(
                "UPDATE runs SET status = ?, ended = ?, summary = ?, error = ? WHERE id = ?",
                (status, time.time(), json.dumps(summary or {}, default=str), error, run_id),
            )

    def keep_only(self, key: str, run_id: str) -> None:
        """Delete every other run with this key (a forced re-run replaces the completed one)."""
        with self._tx():
            self.conn.execute("DELETE FROM runs WHERE key = ? AND id != ?", (key, run_id))

    @_reads
    def mark_interrupted(self) -> list[str]:
        """Mark ``interrupted`` every run still ``running`` whose process (on this host) is gone."""
        rows = self.conn.execute("SELECT id, pid, host FROM runs WHERE status = 'running'").fetchall()
        dead = [rid for rid, pid, host in rows if not self._alive(pid, host)]
        if dead:
            with self._tx():
                self.conn.executemany(
                    "UPDATE runs SET status = 'interrupted' WHERE id = ? AND status = 'running'",
                    [(rid,) for rid in dead],
                )
        return dead

    def delete(self, run_id: str) -> None:
        with self._tx():
            self.conn.execute("DELETE FROM runs WHERE id = ?", (self.resolve(run_id),))

    # --- reading --------------------------------------------------------------------------------------------
    @_reads
    def resolve(self, run_id: str) -> str:
        """The full id of the run whose id is ``run_id`` or starts with it (unique prefix)."""
        if not isinstance(run_id, str) or not run_id.strip():
            raise ConfigError(
                "run_id", run_id, "expected a run id (or a unique prefix of one); list them with `gradwatch runs`"
            )
        rows = self.conn.execute(
            "SELECT id FROM runs WHERE id = ? OR id LIKE ? ORDER BY id",
            (run_id, run_id.replace("%", "").replace("_", "") + "%"),
        ).fetchall()
        exact = [r[0] for r in rows if r[0] == run_id]
        if exact:
            return exact[0]
        if len(rows) != 1:
            allowed = "no run has this id" if not rows else f"ambiguous prefix ({len(rows)} runs match)"
            raise ConfigError("run_id", run_id, allowed + "; list them with `gradwatch runs`")
        return rows[0][0]

    @_reads
    def runs(self, limit: int | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every run (or those with this status), newest first, with its config and summary. A ``running`` run
        whose process (on this host) is gone reads as ``interrupted``, even from a read-only store."""
        if status in ("running", "interrupted"):  # which runs are still running is known once they are read
            return [r for r in self.runs() if r["status"] == status][:limit]
        q = (
            "SELECT * FROM runs"
            + (" WHERE status = ?" if status else "")
            + " ORDER BY started DESC, id DESC"
            + (" LIMIT ?" if limit else "")
        )
        return self._rows(q, tuple(v for v in (status, limit) if v))

    def _rows(self, query: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        cur = self.conn.execute(query, args)
        names = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(names, row))
            if d["status"] == "running" and not self._alive(d["pid"], d["host"]):
                d["status"] = "interrupted"  # its writer is gone: read as such before any writer marks it
            d["config"] = json.loads(d["config"])
            d["summary"] = json.loads(d["summary"]) if d["summary"] else {}
            out.append(d)
        return out

    @_reads
    def completed(self, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """{key: the newest completed run with that key} for the given keys (every key when None)."""
        wanted = None if keys is None else set(keys)
        out: dict[str, dict[str, Any]] = {}
        for run in self.runs(status="completed"):  # newest first: keep the first seen per key
            if run["key"] is not None and (wanted is None or run["key"] in wanted):
                out.setdefault(run["key"], run)
        return out

    @_reads
    def get(self, run_id: str) -> dict[str, Any]:
        """One run (its id or a unique prefix) with its config and summary."""
        return self._rows("SELECT * FROM runs WHERE id = ?", (self.resolve(run_id),))[0]

    @_reads
    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        """Per-epoch metrics as a list of dicts (epoch order)."""
        rid = self.resolve(run_id)
        epochs: dict[int, dict[str, Any]] = {}
        for epoch, name, value in self.conn.execute(
            "SELECT epoch, name, value FROM metrics WHERE run_id = ? ORDER BY epoch", (rid,)
        ):
            value = math.nan if value is None else int(value) if name == "step" else value
            epochs.setdefault(epoch, {"epoch": epoch})[name] = value
        return [epochs[e] for e in sorted(epochs)]

    @_reads
    def history(self, run_id: str) -> dict[str, Any]:
        """The stored watch history: ``layers``, ``steps`` (every step with a stored value) and ``stats``
        {name: array [steps, layers]}, NaN where a statistic was not measured. One query and one array per
        statistic: time and memory linear in the stored values."""
        rid = self.resolve(run_id)
        layers = [r[0] for r in self.conn.execute("SELECT name FROM layers WHERE run_id = ? ORDER BY idx", (rid,))]
        names = list(
            dict.fromkeys(  # in the watch's order; stores from before the stats table: those with values
                (
                    [r[0] for r in self.conn.execute("SELECT name FROM stats WHERE run_id = ? ORDER BY rowid", (rid,))]
                    if self._has_table("stats")
                    else []
                )
                + [r[0] for r in self.conn.execute("SELECT DISTINCT stat FROM history WHERE run_id = ?", (rid,))]
            )
        )
        columns: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name in names:
            rows = self.conn.execute(
                "SELECT step, layer, value FROM history WHERE run_id = ? AND stat = ?", (rid, name)
            ).fetchall()
            cols = np.array(rows, dtype=float).reshape(-1, 3)  # [values, (step, layer, value)]; NULL → NaN
            columns[name] = (cols[:, 0].astype(np.int64), cols[:, 1].astype(np.int64), cols[:, 2])
        steps = np.unique(np.concatenate([c[0] for c in columns.values()] + [np.zeros(0, np.int64)]))
        n_layers = max([len(layers)] + [int(c[1].max()) + 1 for c in columns.values() if len(c[1])])
        stats: dict[str, np.ndarray] = {}
        for name, (step, layer, value) in columns.items():
            arr = np.full((len(steps), n_layers), np.nan)  # [steps, layers]
            arr[np.searchsorted(steps, step), layer] = value
            stats[name] = arr
        return {"layers": layers, "steps": steps.astype(int), "stats": stats}

    def _has_table(self, name: str) -> bool:  # a read-only store written by an older gradwatch may lack one
        return (
            self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
            is not None
        )

    @_reads
    def histograms(self, run_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The stored log10|g| histograms: (steps ``[n]``, counts ``[n, layers, bins]``; zeros where a layer has
        none at a step)."""
        rid = self.resolve(run_id)
        rows = self.conn.execute(
            "SELECT step, layer, counts FROM histograms WHERE run_id = ? ORDER BY step, layer", (rid,)
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=int), np.zeros((0, 0, 0))
        steps = sorted({r[0] for r in rows})
        n_layers = self.conn.execute("SELECT COUNT(*) FROM layers WHERE run_id = ?", (rid,)).fetchone()[0]
        bins = len(json.loads(rows[0][2]))
        counts = np.zeros((len(steps), max(n_layers, 1 + max(r[1] for r in rows)), bins))
        pos = {s: i for i, s in enumerate(steps)}
        for step, layer, text in rows:
            counts[pos[step], layer] = json.loads(text)
        return np.array(steps, dtype=int), counts

    @_reads
    def time_grads(self, run_id: str) -> dict[int, np.ndarray]:
        """Recurrent runs: ‖∂L/∂h_t‖ over t, per recorded epoch."""
        rid = self.resolve(run_id)
        out: dict[int, list[float]] = {}
        for epoch, _t, value in self.conn.execute(
            "SELECT epoch, t, value FROM time_grads WHERE run_id = ? ORDER BY epoch, t", (rid,)
        ):
            out.setdefault(epoch, []).append(math.nan if value is None else value)
        return {e: np.array(v) for e, v in out.items()}

    @_reads
    def check(self) -> None:
        """Read every page (``PRAGMA quick_check``): a damaged store is a :class:`PathError` now, not on some later
        read (``gradwatch serve`` checks its store so at the start)."""
        problem = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise PathError("store", self.path, store_problem(sqlite3.DatabaseError(f"malformed: {problem}")))

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
