"""Evaluation: the child builder and the trainer joined, behind a result store and a budget.

This is the only place that owns the cache and counts the budget. A request for a key that is
already stored (dataset, budget, architecture, seed) trains nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.search_space import Architecture

__all__ = ["EvalResult", "Evaluator", "ResultStore", "StoreError", "StoredResult"]

log = logging.getLogger("nas_gym")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    dataset       TEXT    NOT NULL,
    budget        TEXT    NOT NULL,  -- canonical JSON of everything that changes the accuracy
    arch          TEXT    NOT NULL,
    seed          INTEGER NOT NULL,
    accuracy      REAL    NOT NULL,  -- validation accuracy in [0, 1]; 0.0 for a failed child
    test_accuracy REAL,              -- only after a final evaluation
    num_params    INTEGER NOT NULL,
    train_seconds REAL    NOT NULL,
    status        TEXT    NOT NULL,  -- ok / diverged / out_of_memory / timeout / error
    message       TEXT    NOT NULL DEFAULT '',
    device        TEXT    NOT NULL DEFAULT '',
    created_at    REAL    NOT NULL,  -- unix seconds
    updated_at    REAL    NOT NULL,
    PRIMARY KEY (dataset, budget, arch, seed)
)
"""


_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (  -- who trains what, when several workers share a batch
    dataset TEXT NOT NULL, budget TEXT NOT NULL, arch TEXT NOT NULL, seed INTEGER NOT NULL,
    pid INTEGER NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (dataset, budget, arch, seed)
)
"""


class StoreError(ValueError):
    """The result store cannot be opened or written; the message names the path."""


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


@dataclass(frozen=True)
class StoredResult:
    dataset: str
    budget: str
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


class ResultStore:
    """SQLite store of trained children, one row per (dataset, budget, architecture, seed).

    WAL journal and a busy timeout make it safe for several processes at once; each process
    (and each fork) opens its own connection. Every write commits at once, so a crash loses
    nothing written before it. ``path=None`` keeps the store in memory.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
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
            conn.execute(_SCHEMA)
            conn.execute(_CLAIMS)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the result store {target}: {e}") from e
        self._conn, self._pid = conn, os.getpid()
        return conn

    def __getstate__(self) -> dict[str, Any]:
        if self.path is None:
            raise TypeError("an in-memory ResultStore cannot be shared with another process")
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def get(self, dataset: str, budget: str, arch: str, seed: int) -> StoredResult | None:
        row = (
            self._connect()
            .execute(
                "SELECT * FROM results WHERE dataset=? AND budget=? AND arch=? AND seed=?",
                (dataset, budget, arch, seed),
            )
            .fetchone()
        )
        return None if row is None else StoredResult(*row)

    def put(self, result: StoredResult) -> StoredResult:
        """Insert ``result`` unless its key is stored already; return the stored row.

        With several writers the first one wins and everyone reads back the same row.
        """
        try:
            conn = self._connect()
            conn.execute(
                "INSERT OR IGNORE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    result.dataset,
                    result.budget,
                    result.arch,
                    result.seed,
                    result.accuracy,
                    result.test_accuracy,
                    result.num_params,
                    result.train_seconds,
                    result.status,
                    result.message,
                    result.device,
                    result.created_at,
                    result.updated_at,
                ),
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the result store {self.path or ':memory:'}: {e}") from e
        stored = self.get(result.dataset, result.budget, result.arch, result.seed)
        assert stored is not None
        return stored

    def claim(self, dataset: str, budget: str, arch: str, seed: int) -> bool:
        """Claim the training of a key for this process: True for the first claimant only.

        Workers that share a batch all walk it in the same order and each trains what it claims
        first, so the batch is shared out as the workers become free.
        """
        try:
            cur = self._connect().execute(
                "INSERT OR IGNORE INTO claims VALUES (?,?,?,?,?,?)",
                (dataset, budget, arch, seed, os.getpid(), time.time()),
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the result store {self.path or ':memory:'}: {e}") from e
        return cur.rowcount == 1

    def release(self, dataset: str, budget: str, archs: list[str], seed: int) -> None:
        """Drop the claims on these keys (left by a worker that was stopped mid-training)."""
        try:
            self._connect().executemany(
                "DELETE FROM claims WHERE dataset=? AND budget=? AND arch=? AND seed=?",
                [(dataset, budget, a, seed) for a in archs],
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the result store {self.path or ':memory:'}: {e}") from e

    def set_test_accuracy(self, dataset: str, budget: str, arch: str, seed: int, value: float) -> None:
        try:
            self._connect().execute(
                "UPDATE results SET test_accuracy=?, updated_at=? "
                "WHERE dataset=? AND budget=? AND arch=? AND seed=?",
                (value, time.time(), dataset, budget, arch, seed),
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the result store {self.path or ':memory:'}: {e}") from e

    def rows(self, dataset: str | None = None, budget: str | None = None) -> Iterator[StoredResult]:
        query, args = "SELECT * FROM results", []
        clauses = []
        if dataset is not None:
            clauses.append("dataset=?")
            args.append(dataset)
        if budget is not None:
            clauses.append("budget=?")
            args.append(budget)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        for row in self._connect().execute(query + " ORDER BY created_at", args):
            yield StoredResult(*row)

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM results").fetchone()[0])


@dataclass(frozen=True)
class EvalResult:
    arch: str
    accuracy: float
    num_params: int
    status: str
    cached: bool  # answered from the store, nothing trained
    train_seconds: float  # of the training that produced the row (0 when it was cached)
    test_accuracy: float | None = None

    @classmethod
    def from_stored(cls, stored: StoredResult) -> EvalResult:
        """A stored row, answered without training."""
        return cls(
            stored.arch, stored.accuracy, stored.num_params, stored.status, True, 0.0, stored.test_accuracy
        )


@dataclass
class Evaluator:
    """Trains children of one dataset at one budget, through a result store.

    Data are read and moved to the device on first use. ``trainings`` and ``train_seconds``
    count only store misses: the budget that agents are compared on.
    """

    dataset: str
    train_size: int | None
    val_size: int
    image_size: int | None = None  # None: the dataset's own size
    width: float = 1.0
    epochs: float = 1.0
    batch_size: int = 128
    lr: float = 0.05
    time_limit: float | None = None  # seconds per child
    data_dir: str | None = None
    download: bool = True
    device: str | None = None  # None: CUDA when available
    store: ResultStore | str | os.PathLike[str] | None = None
    split_seed: int = 0
    trainings: int = field(default=0, init=False)
    train_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        from nas_gym.training.data import DATASETS  # numpy only

        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}")
        self.info = DATASETS[self.dataset]
        if self.image_size is None:
            self.image_size = self.info.image_size
        for name in ("val_size", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.train_size is not None and (
            not isinstance(self.train_size, int | np.integer) or self.train_size <= 0
        ):
            raise ValueError(f"train_size must be a positive int or None, got {self.train_size!r}")
        if self.image_size > self.info.image_size:
            raise ValueError(f"image_size {self.image_size} exceeds {self.dataset}'s {self.info.image_size}")
        if not (isinstance(self.width, int | float) and self.width > 0):
            raise ValueError(f"width must be a positive number, got {self.width!r}")
        from nas_gym.training.trainer import TrainConfig

        self.config = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            augment=self.info.augment,
            time_limit=self.time_limit,
        )
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise ValueError(f"data_dir {self.data_dir!r} does not exist or is not a folder")
        if not isinstance(self.store, ResultStore):
            self.store = ResultStore(self.store)
        self._data: Any = None  # DeviceData once loaded
        self._test: tuple[np.ndarray, np.ndarray] | None = None
        self._device: Any = None  # torch.device once resolved

    def set_epochs(self, epochs: float) -> None:
        """Change the training budget mid-search (a curriculum); later children use a new store key."""
        from nas_gym.training.trainer import TrainConfig

        self.config = TrainConfig(**{**self.config.__dict__, "epochs": epochs})
        self.epochs = epochs

    @property
    def result_store(self) -> ResultStore:
        assert isinstance(self.store, ResultStore)
        return self.store

    @property
    def device_type(self) -> str:
        from nas_gym.training.trainer import resolve_device

        if self._device is None:
            self._device = resolve_device(self.device)
        return self._device.type

    @property
    def budget_key(self) -> str:
        """Canonical JSON of everything that changes a child's accuracy, the device kind included."""
        key = {
            **self.config.key(),
            "train_size": self.train_size,
            "val_size": self.val_size,
            "image_size": self.image_size,
            "width": float(self.width),
            "split_seed": self.split_seed,
            "device": self.device_type,
        }
        return json.dumps(key, sort_keys=True, separators=(",", ":"))

    def num_params(self, arch: Architecture | str) -> int:
        import torch

        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        from nas_gym.models import count_parameters

        if not arch.fits(self.image_size):  # type: ignore[arg-type]
            return 0
        with torch.random.fork_rng(devices=[]):  # building draws from the RNG: leave the caller's alone
            return count_parameters(self._factory(arch)())

    def _factory(self, arch: Architecture):
        from nas_gym.models import build_model

        size = int(self.image_size)  # type: ignore[arg-type]
        return lambda: build_model(arch, self.info.channels, size, self.info.num_classes, self.width)

    def _load(self):
        if self._data is None:
            from nas_gym.training.data import load_dataset, resize_images, split_train_val
            from nas_gym.training.trainer import DeviceData, resolve_device

            raw = load_dataset(self.dataset, self.data_dir, self.download)
            split = split_train_val(raw, self.train_size, self.val_size, self.split_seed)
            size = int(self.image_size)  # type: ignore[arg-type]
            self._device = resolve_device(self.device)
            self._data = DeviceData.from_numpy(
                resize_images(split.train_x, size),
                split.train_y,
                resize_images(split.val_x, size),
                split.val_y,
                self._device,
            )
            self._test = (resize_images(raw.test_x, size), raw.test_y)
        return self._data

    def lookup(self, arch: Architecture | str, seed: int) -> StoredResult | None:
        return self.result_store.get(self.dataset, self.budget_key, str(arch), int(seed))

    def claim(self, arch: Architecture | str, seed: int) -> bool:
        """Claim ``arch``'s training for this process (see :meth:`ResultStore.claim`)."""
        return self.result_store.claim(self.dataset, self.budget_key, str(arch), int(seed))

    def release(self, archs: list[str], seed: int) -> None:
        """Drop stale claims on ``archs`` before a batch of them is handed to workers."""
        self.result_store.release(self.dataset, self.budget_key, [str(a) for a in archs], int(seed))

    def evaluate(self, arch: Architecture | str, seed: int) -> EvalResult:
        """Validation accuracy of ``arch`` trained with ``seed``: from the store, or trained now."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        stored = self.lookup(arch, seed)
        if stored is not None:
            return EvalResult.from_stored(stored)
        return self._train(arch, int(seed), final=False)

    def final_evaluate(self, arch: Architecture | str, seed: int) -> EvalResult:
        """Train (or reuse) ``arch`` and measure the held-out *test* set as well."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        stored = self.lookup(arch, seed)
        if stored is not None and stored.test_accuracy is not None:
            return EvalResult.from_stored(stored)
        return self._train(arch, int(seed), final=True)

    def _train(self, arch: Architecture, seed: int, final: bool) -> EvalResult:
        from nas_gym.training.trainer import evaluate_accuracy, train

        if not arch.fits(self.image_size):  # type: ignore[arg-type]
            raise ValueError(f"{arch} shrinks a {self.image_size}x{self.image_size} input below 1x1")
        data = self._load()
        factory = self._factory(arch)
        params = self.num_params(arch)
        result = train(factory, data, self.config, seed, keep_model=final)
        self.trainings += 1
        self.train_seconds += result.train_seconds
        if result.status != "ok":
            log.warning("child %s (seed %d) ended %s: %s", arch, seed, result.status, result.message)
        now = time.time()
        stored = self.result_store.put(
            StoredResult(
                self.dataset,
                self.budget_key,
                str(arch),
                seed,
                result.accuracy,
                None,
                params,
                result.train_seconds,
                result.status,
                result.message,
                str(data.device),
                now,
                now,
            )
        )
        test_accuracy = None
        if final and result.model is not None and result.status == "ok":
            assert self._test is not None
            tx, ty = self._test
            test_data = data.with_validation(tx, ty)
            test_accuracy = evaluate_accuracy(result.model, test_data.val_x, test_data.val_y, data)
            self.result_store.set_test_accuracy(self.dataset, self.budget_key, str(arch), seed, test_accuracy)
        return EvalResult(
            stored.arch,
            stored.accuracy,
            stored.num_params,
            stored.status,
            False,
            result.train_seconds,
            test_accuracy,
        )
