"""The result store: one SQLite row per trained child, and a ledger of every training.

Standard library only. A row is keyed by (dataset, training configuration, architecture, seed);
the configuration is canonical JSON of everything that changes a child's result. Every training
(a first training, a retry, a final training) also appends one line to the ``trainings`` ledger
*in the same transaction* as its row, so the number of trainings a search spent is read from the
store and no interruption can leave a trained child uncounted.

Which failures are final (see :func:`may_retry`): ``ok`` and ``diverged`` are properties of the
child and are never trained again for the same key. ``timeout`` records the limit it ran under
and is retried by a request with no limit or a larger one. ``out_of_memory``, ``error``,
``crashed`` and ``hung`` depend on the circumstances (other children on the GPU, a lost worker, a
native crash); the evaluator retries them once at once, and afterwards only a request that asks
for it (``retry_failed``, a final evaluation) trains them again. Every retry counts as a training.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "FINAL_STATUSES",
    "RETRIED_AT_ONCE",
    "KeyedStore",
    "RETRYABLE_STATUSES",
    "STATUSES",
    "ResultStore",
    "StoreError",
    "StoredResult",
    "encode_curve",
    "may_retry",
]

FINAL_STATUSES = ("ok", "diverged", "mixed")  # "mixed": a table row whose seeds disagree
RETRYABLE_STATUSES = ("timeout", "out_of_memory", "error", "crashed", "hung")
STATUSES = ("ok", "diverged", "mixed", *RETRYABLE_STATUSES)
# failures of the circumstances that the evaluator trains once more at once (each attempt counts)
RETRIED_AT_ONCE = ("out_of_memory", "error", "crashed", "hung")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    dataset       TEXT    NOT NULL,
    budget        TEXT    NOT NULL,  -- canonical JSON of the training configuration
    arch          TEXT    NOT NULL,
    seed          INTEGER NOT NULL,
    accuracy      REAL    NOT NULL,  -- validation accuracy in [0, 1]; 0.0 for a failed child
    test_accuracy REAL,              -- only from a final training, with the accuracy of that training
    num_params    INTEGER NOT NULL,
    train_seconds REAL    NOT NULL,
    status        TEXT    NOT NULL,  -- see STATUSES
    message       TEXT    NOT NULL DEFAULT '',
    device        TEXT    NOT NULL DEFAULT '',
    created_at    REAL    NOT NULL,  -- unix seconds
    updated_at    REAL    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 1,  -- trainings that went into this row
    time_limit    REAL,              -- seconds the last attempt was allowed; NULL: none
    node          TEXT    NOT NULL DEFAULT '',  -- the Ray node that trained it ('' outside Ray)
    host          TEXT    NOT NULL DEFAULT '',  -- the machine that trained it ('' before it was kept)
    curve         TEXT    NOT NULL DEFAULT '',  -- JSON [[epoch, accuracy, seconds], ...]; '' when none
    PRIMARY KEY (dataset, budget, arch, seed)
)
"""

_LEDGER = """
CREATE TABLE IF NOT EXISTS trainings (  -- one line per training, written with its row
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tag TEXT NOT NULL,                  -- who asked (a search's id); '' when nobody said
    dataset TEXT NOT NULL, budget TEXT NOT NULL, arch TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL, created_at REAL NOT NULL
)
"""

_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (  -- who trains what, when several workers share a batch
    dataset TEXT NOT NULL, budget TEXT NOT NULL, arch TEXT NOT NULL, seed INTEGER NOT NULL,
    pid INTEGER NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (dataset, budget, arch, seed)
)
"""

# columns added after the first release, with their defaults: older stores gain them on open
_ADDED_COLUMNS = {
    "attempts": "INTEGER NOT NULL DEFAULT 1",
    "time_limit": "REAL",
    "node": "TEXT NOT NULL DEFAULT ''",
    "host": "TEXT NOT NULL DEFAULT ''",
    "curve": "TEXT NOT NULL DEFAULT ''",
}


class StoreError(ValueError):
    """The result store cannot be opened or written; the message names the path."""


@dataclass(frozen=True)
class StoredResult:
    dataset: str
    config: str  # canonical JSON of the training configuration (the ``budget`` column)
    arch: str
    seed: int
    accuracy: float
    test_accuracy: float | None
    num_params: int
    train_seconds: float
    status: str
    message: str
    device: str
    created_at: float
    updated_at: float
    attempts: int = 1
    time_limit: float | None = None
    node: str = ""  # the Ray node id of the worker that trained it ('' outside Ray)
    host: str = ""  # the host name of the machine that trained it
    # the validation curve, JSON [[epoch, accuracy, train seconds so far], ...] after every whole
    # epoch and at the end (its last accuracy is ``accuracy``); '' for rows without one (failed
    # children, rows written before curves were kept, tables and surrogates)
    curve: str = ""

    def curve_points(self) -> list[tuple[float, float, float]]:
        """:attr:`curve` read back: (epoch, accuracy, seconds) tuples, [] when there is none."""
        return [tuple(p) for p in json.loads(self.curve)] if self.curve else []  # type: ignore[misc]


# the configuration's column keeps its first name, "budget", so stores written before read unchanged
_COLUMNS = ", ".join("budget" if f.name == "config" else f.name for f in fields(StoredResult))
_PLACEHOLDERS = ", ".join("?" for _ in fields(StoredResult))


def encode_curve(curve: Sequence[Sequence[float]]) -> str:
    """A validation curve as the store keeps it: compact JSON, accuracies exact (the last is the
    row's accuracy), seconds to the millisecond ('' for no curve)."""
    if not curve:
        return ""
    points = [[float(e), float(a), round(float(s), 3)] for e, a, s in curve]
    return json.dumps(points, separators=(",", ":"))


def may_retry(row: StoredResult, time_limit: float | None, retry_failed: bool = False) -> bool:
    """Whether a request may train ``row``'s child again (and count it as a training).

    ``time_limit``: the limit of the request. ``retry_failed``: the request asks to retry failures
    caused by the circumstances (out of memory, a crash, a hang, a lost worker).
    """
    if row.status in FINAL_STATUSES or row.status not in RETRYABLE_STATUSES:
        return False
    if row.status == "timeout":
        if time_limit is None:
            return True
        return row.time_limit is not None and time_limit > row.time_limit
    return retry_failed


def _enable_wal(conn: sqlite3.Connection, timeout: float = 60.0) -> None:
    """Switch a file store to WAL, retrying while another process holds the lock.

    SQLite answers ``PRAGMA journal_mode = WAL`` with "database is locked" at once, without
    calling the busy handler, when several processes open a new store at the same moment.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.1)


class ResultStore:
    """SQLite store of trained children, one row per (dataset, configuration, architecture, seed).

    WAL journal and a busy timeout make it safe for several processes at once; each process
    (and each fork) opens its own connection. Every write commits at once, so a crash loses
    nothing written before it. ``path=None`` keeps the store in memory; such a store is copied
    (pickled, deep-copied) as a snapshot of its rows, which the copy then owns.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._snapshot: list[str] | None = None
        # an in-memory store is written by this object only: its rows are also kept in a dict,
        # so a lookup (most of a tabular or surrogate env's step) needs no query
        self._memo: dict[tuple[str, str, str, int], StoredResult] | None = None
        self._connect()  # fail now, with the path in the message, not at the first write

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        target = ":memory:" if self.path is None else str(self.path)
        try:
            if self.path is not None:
                if self.path.is_dir():
                    raise StoreError(f"result store {self.path} is a folder, not a file")
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(target, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            if self.path is not None:
                _enable_wal(conn)
            if self._snapshot is not None:
                conn.executescript("\n".join(self._snapshot))
                self._snapshot = None
            conn.execute(_SCHEMA)
            conn.execute(_LEDGER)
            conn.execute(_CLAIMS)
            present = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
            for name, decl in _ADDED_COLUMNS.items():
                if name not in present:
                    conn.execute(f"ALTER TABLE results ADD COLUMN {name} {decl}")
            self._memo = None
            if self.path is None:  # a fresh in-memory database (or a snapshot's copy)
                rows = (StoredResult(*r) for r in conn.execute(f"SELECT {_COLUMNS} FROM results"))
                self._memo = {(r.dataset, r.config, r.arch, r.seed): r for r in rows}
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the result store {target}: {e}") from e
        self._conn, self._pid = conn, os.getpid()
        return conn

    def __getstate__(self) -> dict[str, Any]:
        if self.path is None:
            return {"path": None, "dump": list(self._connect().iterdump())}
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self._conn, self._pid = state["path"], None, -1
        self._snapshot = state.get("dump")
        self._connect()

    def close_file(self) -> None:
        """Close a file store's connection (the next use opens it again), so no journal is left
        next to the file while the object lives on; an in-memory store keeps its connection,
        which is its data."""
        if self.path is not None:
            self.close()

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def _error(self, e: sqlite3.Error) -> StoreError:
        return StoreError(f"cannot write to the result store {self.path or ':memory:'}: {e}")

    def get(self, dataset: str, config: str, arch: str, seed: int) -> StoredResult | None:
        conn = self._connect()
        if self._memo is not None:
            return self._memo.get((dataset, config, arch, seed))
        return self._query(conn, dataset, config, arch, seed)

    @staticmethod
    def _query(
        conn: sqlite3.Connection, dataset: str, config: str, arch: str, seed: int
    ) -> StoredResult | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM results WHERE dataset=? AND budget=? AND arch=? AND seed=?",
            (dataset, config, arch, seed),
        ).fetchone()
        return None if row is None else StoredResult(*row)

    def put(self, result: StoredResult) -> StoredResult:
        """Insert ``result`` unless its key is stored already; return the stored row. Not a
        training (nothing goes to the ledger): for rows copied from elsewhere, e.g. a table."""
        try:
            self._connect().execute(
                f"INSERT OR IGNORE INTO results ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                tuple(getattr(result, f.name) for f in fields(StoredResult)),
            )
        except sqlite3.Error as e:
            raise self._error(e) from e
        key = (result.dataset, result.config, result.arch, result.seed)
        stored = self._query(self._connect(), *key)
        assert stored is not None
        if self._memo is not None:
            self._memo[key] = stored
        return stored

    def record_training(self, result: StoredResult, tag: str = "", replace_ok: bool = False) -> StoredResult:
        """Write the row of a training and its ledger line in one transaction; return the row.

        A stored row of a failure that ``result`` retries is replaced (its ``attempts`` carried
        on). A stored ``ok`` or ``diverged`` row wins over a concurrent writer's, unless
        ``replace_ok`` (a final training, whose validation and test accuracies belong together).
        """
        key = (result.dataset, result.config, result.arch, result.seed)
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._memo is not None:  # in memory: this object wrote every row
                    previous = self._memo.get(key)
                else:
                    old = conn.execute(
                        f"SELECT {_COLUMNS} FROM results WHERE dataset=? AND budget=? AND arch=? AND seed=?",
                        key,
                    ).fetchone()
                    previous = None if old is None else StoredResult(*old)
                stored = previous
                if previous is None or previous.status not in FINAL_STATUSES or replace_ok:
                    attempts = 1 if previous is None else previous.attempts + 1
                    created = result.created_at if previous is None else previous.created_at
                    row = stored = replace(result, attempts=attempts, created_at=created)
                    conn.execute(
                        f"INSERT OR REPLACE INTO results ({_COLUMNS}) VALUES ({_PLACEHOLDERS})",
                        tuple(getattr(row, f.name) for f in fields(StoredResult)),
                    )
                conn.execute(
                    "INSERT INTO trainings (tag, dataset, budget, arch, seed, status, created_at) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (tag, *key, result.status, time.time()),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a COMMIT that failed (a full disk) has rolled back already
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise self._error(e) from e
        assert stored is not None
        if self._memo is not None:
            self._memo[key] = stored
        return stored

    def trainings(self, tag: str | None = None) -> int:
        """Trainings in the ledger (those asked for by ``tag`` when given)."""
        query, args = "SELECT COUNT(*) FROM trainings", tuple[str, ...]()
        if tag is not None:
            query, args = query + " WHERE tag=?", (tag,)
        return int(self._connect().execute(query, args).fetchone()[0])

    def trained_keys(self, tag: str) -> Counter[tuple[str, str]]:
        """How many trainings each (architecture, configuration key) had for ``tag``: a child
        trained at two fidelities is two trainings of two keys."""
        rows = self._connect().execute("SELECT arch, budget FROM trainings WHERE tag=? ORDER BY id", (tag,))
        return Counter((arch, key) for arch, key in rows)

    def claim(self, dataset: str, config: str, arch: str, seed: int) -> bool:
        """Claim the training of a key for this process: True for the first claimant only.

        Workers that share a batch all walk it in the same order and each trains what it claims
        first, so the batch is shared out as the workers become free.
        """
        try:
            cur = self._connect().execute(
                "INSERT OR IGNORE INTO claims VALUES (?,?,?,?,?,?)",
                (dataset, config, arch, seed, os.getpid(), time.time()),
            )
        except sqlite3.Error as e:
            raise self._error(e) from e
        return cur.rowcount == 1

    def release(self, dataset: str, config: str, archs: list[str], seed: int) -> None:
        """Drop the claims on these keys (left by a worker that was stopped mid-training)."""
        try:
            self._connect().executemany(
                "DELETE FROM claims WHERE dataset=? AND budget=? AND arch=? AND seed=?",
                [(dataset, config, a, seed) for a in archs],
            )
        except sqlite3.Error as e:
            raise self._error(e) from e

    def rows(self, dataset: str | None = None, config: str | None = None) -> Iterator[StoredResult]:
        query, args = f"SELECT {_COLUMNS} FROM results", []
        clauses = []
        if dataset is not None:
            clauses.append("dataset=?")
            args.append(dataset)
        if config is not None:
            clauses.append("budget=?")
            args.append(config)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        for row in self._connect().execute(query + " ORDER BY created_at", args):
            yield StoredResult(*row)

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM results").fetchone()[0])


@dataclass(frozen=True)
class KeyedStore:
    """The rows of one (dataset, configuration key) in a store: what an evaluator reads and writes.

    Every evaluator (real training, a table, a surrogate) files its answers through one of these,
    so the key is assembled in one place per evaluator and each row is built in one place here.
    """

    store: ResultStore
    dataset: str
    key: str

    def get(self, arch: str, seed: int) -> StoredResult | None:
        return self.store.get(self.dataset, self.key, str(arch), int(seed))

    def claim(self, arch: str, seed: int) -> bool:
        return self.store.claim(self.dataset, self.key, str(arch), int(seed))

    def release(self, archs: list[str], seed: int) -> None:
        self.store.release(self.dataset, self.key, [str(a) for a in archs], int(seed))

    def record(
        self,
        arch: str,
        seed: int,
        accuracy: float,
        num_params: int,
        train_seconds: float,
        status: str,
        *,
        tag: str,
        device: str,
        message: str = "",
        test_accuracy: float | None = None,
        time_limit: float | None = None,
        node: str = "",
        host: str = "",
        replace_ok: bool = False,
        curve: Sequence[Sequence[float]] = (),
    ) -> StoredResult:
        """Write one training (its row and its line in the ledger under ``tag``, in one
        transaction); ``replace_ok``: see :meth:`ResultStore.record_training`."""
        now = time.time()
        row = StoredResult(
            self.dataset, self.key, str(arch), int(seed), accuracy, test_accuracy, num_params,
            train_seconds, status, message, device, now, now, 1, time_limit, node, host, encode_curve(curve),
        )  # fmt: skip
        return self.store.record_training(row, tag=tag, replace_ok=replace_ok)
