"""Trained weights kept for inheriting children: one file per (dataset, store key, architecture,
seed), next to the result store they belong to, within a disk budget."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

__all__ = ["WeightsCache"]


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
