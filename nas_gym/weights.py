"""Prefix weight inheritance: an inheriting child starts from the trained weights of its prefix
(the architecture without its last layer) and trains briefly.

:class:`WeightsCache` keeps the trained weights: one file per (dataset, store key, architecture,
seed), next to the result store they belong to, within a disk budget. :class:`PrefixInheritance`
says, for the children of one configuration, where each one's weights are kept, which weights a
child starts from, and which prefixes must train first for theirs; the evaluator trains them.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas_gym.child import ChildSetup
from nas_gym.search_space import Architecture

__all__ = ["PrefixInheritance", "WeightsCache"]

# what a request's stored row is (a StoredResult; None: the request would train), and a training
Lookup = Callable[[Architecture, int, float | None], Any]
TrainPrefix = Callable[[Architecture], str]  # trains a prefix and returns its status


class WeightsCache:
    """The folder of trained weights of one store: ``STORE.weights`` next to a file store (so a
    resumed search and the pool's workers find them), else a temporary folder of this process's.
    ``limit_mb``: the disk kept; the oldest files beyond it are deleted by :meth:`prune`."""

    def __init__(self, store_path: str | Path | None, limit_mb: float) -> None:
        self._store_path = None if store_path is None else Path(store_path)
        self.limit_mb = float(limit_mb)
        self._folder: Path | None = None

    @property
    def folder(self) -> Path:
        if self._folder is None:
            if self._store_path is not None:
                self._folder = Path(str(self._store_path) + ".weights")
            else:
                self._folder = Path(tempfile.mkdtemp(prefix="nas_gym_weights_"))
            self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder

    def file(self, dataset: str, key: str, arch: str, seed: int) -> Path:
        name = hashlib.sha256(f"{dataset}|{key}|{arch}|{seed}".encode()).hexdigest()[:24]
        return self.folder / f"{name}.pt"

    def prune(self, keep: set[Path] | None = None) -> None:
        """Delete the oldest weight files beyond ``limit_mb`` (never those in ``keep``)."""
        keep = keep or set()
        files = sorted(self.folder.glob("*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        total, limit = 0, self.limit_mb * 2**20
        for f in files:
            try:
                total += f.stat().st_size
                if total > limit and f not in keep:
                    f.unlink()
            except OSError:
                pass  # another process pruned it first


class PrefixInheritance:
    """Prefix weight inheritance for the children of one configuration (``setup``) filed in the
    store at ``store_path``: their trained weights are kept in :attr:`weights` (next to that
    store), under the store key of the request's epochs. Nothing here trains: the evaluator passes
    its ``lookup`` (the stored row that answers a request, None when it would train) and, where a
    prefix must train first, a function that trains one.

    With ``inherit=False`` no child starts from a prefix and none trains one first.
    """

    def __init__(self, setup: ChildSetup, store_path: str | Path | None) -> None:
        self.setup = setup
        self.weights = WeightsCache(store_path, setup.child.weights_cache_mb)

    def file(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> Path:
        """Where the trained weights of ``arch`` (trained with ``seed`` for ``epochs``) are kept."""
        return self.weights.file(self.setup.child.dataset, self.setup.key_of(epochs), str(arch), int(seed))

    def parent_weights(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> Path | None:
        """The trained weights an inheriting ``arch`` starts from when they are here (None: it
        starts from scratch, or its parent is not trained yet); never trains anything."""
        layers = str(arch).split("-")
        if not self.setup.child.inherit or len(layers) < 2:
            return None
        path = self.file("-".join(layers[:-1]), seed, epochs)
        return path if path.exists() else None

    def prefixes_to_train(
        self, arch: Architecture, seed: int, epochs: float | None, lookup: Lookup
    ) -> list[str]:
        """The prefixes an inheriting ``arch`` trains first for their weights, shortest first
        (none without ``inherit``)."""
        plan = []
        while self.setup.child.inherit and len(arch) >= 2:
            arch = Architecture(arch.layers[:-1])
            if not self._trains_first(arch, seed, epochs, lookup):
                break
            plan.append(str(arch))
        return plan[::-1]

    def start_from(
        self, arch: Architecture, seed: int, epochs: float | None, lookup: Lookup, train: TrainPrefix
    ) -> Path | None:
        """The trained prefix's weights ``arch`` starts from, training the prefix first (with
        ``train``) when they are missing, or None when ``arch`` starts from scratch."""
        if not self.setup.child.inherit or len(arch) < 2:
            return None
        parent = Architecture(arch.layers[:-1])
        path = self.file(parent, seed, epochs)
        if self._trains_first(parent, seed, epochs, lookup):
            if train(parent) == "ok" and path.exists():
                return path
        return path if path.exists() else None  # a parent that failed: the child trains from scratch

    def _trains_first(self, parent: Architecture, seed: int, epochs: float | None, lookup: Lookup) -> bool:
        """Whether an inheriting child of ``parent`` trains ``parent`` first: its weights are not
        here and it has not failed (never trained here, or trained and its weights are gone)."""
        if self.file(parent, seed, epochs).exists():
            return False
        row = lookup(parent, seed, epochs)
        return row is None or row.status == "ok"
