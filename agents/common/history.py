"""What a search did, step by step: :class:`HistoryRow` and :class:`History` (JSON lines)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["History", "HistoryRow", "prefix_use"]


@dataclass(frozen=True)
class HistoryRow:
    step: int  # 1-based count of recorded steps
    arch: str  # architecture after the step (token text)
    accuracy: float  # validation accuracy of ``arch``
    training: int  # trainings spent so far, this row included
    new_training: bool  # this row trained a child (a store miss)
    episode: int  # 0-based episode index (direct evaluations count one episode each)
    seconds: float = 0.0  # train seconds spent so far, this row included (0.0 in older files)
    # the fidelity the step asked for, when an episode named one (reset(options={"epochs": e}));
    # None, and absent from the file: the evaluator's own epochs
    epochs: float | None = None

    def to_json(self) -> str:
        row = asdict(self)
        if row["epochs"] is None:
            del row["epochs"]
        return json.dumps(row)


class History:
    """An append-only list of :class:`HistoryRow`, optionally mirrored to a JSON-lines file."""

    def __init__(self, rows: Iterable[HistoryRow] = (), path: str | os.PathLike[str] | None = None):
        self.rows: list[HistoryRow] = list(rows)
        self.path = None if path is None else Path(path)

    def append(self, row: HistoryRow) -> None:
        self.rows.append(row)
        if self.path is not None:
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(row.to_json() + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:  # a torn line is dropped when the folder is resumed
                raise ValueError(
                    f"cannot write {self.path}: {e.strerror or e} (the search resumes from its folder once "
                    "that is fixed)"
                ) from None

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
                    f.write("".join(r.to_json() + "\n" for r in rows))
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

    def budget_use(self) -> dict[str, int | float]:
        """How the trainings were spent: ``complete`` distinct architectures that ended an episode (a
        HEAD step, the last layer, or a direct evaluation), ``prefix_trainings`` trainings of an
        architecture that is a strict prefix of another one this history evaluated, and their share
        of all trainings (``prefix_share``)."""
        return prefix_use(self.rows)

    def best_so_far(self) -> list[tuple[int, float]]:
        """(trainings, best accuracy so far) after each new training."""
        out, best = [], 0.0
        for row in self.rows:
            best = max(best, row.accuracy)
            if row.new_training:
                out.append((row.training, best))
        return out


def prefix_use(rows: Iterable[HistoryRow]) -> dict[str, int | float]:
    """See :meth:`History.budget_use`; ``rows`` in history order."""
    rows = list(rows)
    complete: set[str] = set()
    for row, following in zip(rows, [*rows[1:], None], strict=True):
        if row.arch and (following is None or following.episode != row.episode):
            complete.add(row.arch)
    evaluated = {row.arch for row in rows if row.arch}
    # every strict prefix of an evaluated architecture, as text ("A-B" of "A-B-C")
    prefixes: set[str] = set()
    for arch in evaluated:
        parts = arch.split("-")
        prefixes.update("-".join(parts[:i]) for i in range(1, len(parts)))
    trainings = 0
    prefix_trainings = 0
    previous = 0
    for row in rows:
        count = row.training - previous
        previous = row.training
        if row.new_training:
            trainings += count
            if row.arch in prefixes:
                prefix_trainings += count
    return {
        "complete": len(complete),
        "trainings": trainings,
        "prefix_trainings": prefix_trainings,
        "prefix_share": prefix_trainings / trainings if trainings else 0.0,
    }
