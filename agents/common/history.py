"""What a search did, step by step: :class:`HistoryRow` and :class:`History` (JSON lines)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["History", "HistoryRow"]


@dataclass(frozen=True)
class HistoryRow:
    step: int  # 1-based count of recorded steps
    arch: str  # architecture after the step (token text)
    accuracy: float  # validation accuracy of ``arch``
    training: int  # trainings spent so far, this row included
    new_training: bool  # this row trained a child (a store miss)
    episode: int  # 0-based episode index (direct evaluations count one episode each)


class History:
    """An append-only list of :class:`HistoryRow`, optionally mirrored to a JSON-lines file."""

    def __init__(self, rows: Iterable[HistoryRow] = (), path: str | os.PathLike[str] | None = None):
        self.rows: list[HistoryRow] = list(rows)
        self.path = None if path is None else Path(path)

    def append(self, row: HistoryRow) -> None:
        self.rows.append(row)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(row)) + "\n")
                f.flush()
                os.fsync(f.fileno())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """Read a history file; a torn last line (the process was killed mid-write) is dropped."""
        rows = []
        p = Path(path)
        if p.exists():
            lines = p.read_text(encoding="utf-8").splitlines()
            for i, line in enumerate(lines):
                try:
                    rows.append(HistoryRow(**json.loads(line)))
                except (json.JSONDecodeError, TypeError):
                    if i == len(lines) - 1:
                        break
                    raise ValueError(f"{p}: line {i + 1} is not a history row") from None
            if len(rows) < len(lines):  # drop the torn line so later appends stay valid JSON lines
                tmp = p.with_name(p.name + ".tmp")
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write("".join(json.dumps(asdict(r)) + "\n" for r in rows))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, p)  # atomic: a kill leaves the old file or the new one
        return cls(rows, p)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[HistoryRow]:
        return iter(self.rows)

    @property
    def trainings(self) -> int:
        return self.rows[-1].training if self.rows else 0

    def best(self) -> HistoryRow | None:
        """The row with the highest accuracy (the earliest one on ties)."""
        best = None
        for row in self.rows:
            if row.arch and (best is None or row.accuracy > best.accuracy):
                best = row
        return best

    def best_so_far(self) -> list[tuple[int, float]]:
        """(trainings, best accuracy so far) after each new training."""
        out, best = [], 0.0
        for row in self.rows:
            best = max(best, row.accuracy)
            if row.new_training:
                out.append((row.training, best))
        return out
