"""A search's trainings in the result store's ledger, and which of them its steps have reached.

Every training is written to the store's ledger under the search's tag in the same transaction as
its row. A training's place is (architecture, store key of the fidelity it was trained at): a child
trained at two fidelities is two trainings, each priced at its own seconds and reached by a step at
its own fidelity. The key is read up to the torch threads it names (a pool's workers or an SB3
agent's env copies may train with fewer threads than the search's own env: the same training).
A history row written before rows named their fidelity is matched at the evaluator's own
epochs first, then at any other of the same architecture. Those in the ledger that no recorded step reached yet (a pool's batch, a kill
between the store and the history) are *pending*: they count against the budget, and the step that
reaches one records it as its training. :class:`~agents.common.tracked_env.TrackedEnv` keeps one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from agents.common.history import HistoryRow
from nas_gym.evaluation import ArchEvaluator
from nas_gym.search_space import Architecture

__all__ = ["SearchLedger"]


class Search(Protocol):
    """What a ledger reads of its search (a TrackedEnv), each time it needs it."""

    tag: str

    @property
    def evaluator(self) -> ArchEvaluator: ...

    @property
    def epochs(self) -> float | None: ...

    @property
    def train_seed(self) -> int: ...


class SearchLedger:
    """The trainings of ``search`` by place: ``reached`` (recorded by its steps, from ``rows`` on
    resume) and ``pending`` (in the store's ledger under its tag, not reached yet)."""

    def __init__(self, search: Search, rows: Sequence[HistoryRow]) -> None:
        self.search = search
        self._keys: dict[float | None, str] = {}
        self._epochs_of: dict[str, float | None] = {}
        self.reached: Counter[tuple[str, str]] = Counter()
        for previous, row in zip([None, *rows], rows, strict=False):
            if row.new_training:
                took = row.training - (previous.training if previous else 0)
                self.reached[self.slot(row.arch, row.epochs, own=row.epochs is None)] += took
        self.pending: Counter[tuple[str, str]] = Counter()
        # prefixes a pool trains first for an inheriting child, by the child's place
        self._prefixes_for: dict[tuple[str, str], list[str]] = {}
        self.sync()

    def slot(
        self, arch: Architecture | str, epochs: float | None = None, own: bool = False
    ) -> tuple[str, str]:
        """A training's place in the ledger: ``arch`` and the store key of ``epochs`` (None: the
        current episode's fidelity; ``own``: the evaluator's own epochs)."""
        e = None if own else (self.search.epochs if epochs is None else float(epochs))
        key = self._keys.get(e)
        if key is None:
            key = self._keys[e] = _place(self.search.evaluator.key_of(e))
            self._epochs_of.setdefault(key, e)
        return str(arch), key

    def waiting(self, arch: Architecture | str, epochs: float | None = None) -> int:
        """The pending trainings of ``arch`` at ``epochs`` (None: the current episode's fidelity)."""
        return self.pending[self.slot(arch, epochs)]

    def sync(self) -> None:
        """Pending = trained for this search (the store's ledger) and not reached by a step yet."""
        store = self.search.evaluator.result_store
        if store is None:
            return
        ledger: Counter[tuple[str, str]] = Counter()
        for (arch, key), n in store.trained_keys(self.search.tag).items():
            ledger[arch, _place(key)] += n
        reached = self.reached
        pending = Counter({a: n - reached[a] for a, n in ledger.items() if n > reached[a]})
        for a in [a for a, n in reached.items() if n > ledger[a]]:
            excess = reached[a] - ledger[a]
            for p in self._reached_instead(a, pending):
                took = min(excess, pending[p])
                pending[p] -= took
                excess -= took
        self.pending = +pending

    @staticmethod
    def _reached_instead(place: tuple[str, str], pending: Counter[tuple[str, str]]) -> list[tuple[str, str]]:
        """Where the steps recorded at ``place`` beyond its trainings in the store's ledger were
        trained: its prefixes at the same key (a step records the prefixes an inheriting child
        trained first, see :meth:`take_prefixes`), then the same architecture at other keys (a row
        of an older history, which did not name its fidelity)."""
        arch, key = place
        layers = arch.split("-")
        prefixes = [("-".join(layers[:i]), key) for i in range(len(layers) - 1, 0, -1)]
        return prefixes + [p for p in pending if p[0] == arch and p[1] != key]

    def reach(self, arch: str, count: int) -> None:
        """Note that a step at the current fidelity recorded ``count`` trainings of ``arch``."""
        self.reached[self.slot(arch)] += count

    def take(self, arch: str | None) -> int:
        """The pending trainings of ``arch`` at the current fidelity, now reached by a step."""
        if arch is None or not self.pending[self.slot(arch)]:
            return 0
        return self.pending.pop(self.slot(arch))

    def expect_prefixes(self, arch: str, prefixes: list[str], epochs: float | None = None) -> None:
        """A pool trains ``prefixes`` first for an inheriting ``arch`` at ``epochs``: the step that
        reaches ``arch`` there records their trainings too (see :meth:`take_prefixes`)."""
        self._prefixes_for[self.slot(arch, epochs)] = prefixes

    def take_prefixes(self, arch: str | None) -> tuple[int, float]:
        """The trainings (and their seconds) of the prefixes a pool trained first for an inheriting
        ``arch`` that no step reached: the step that reaches ``arch`` records them."""
        count, seconds = 0, 0.0
        for p in self._prefixes_for.pop(self.slot(arch), []) if arch is not None else []:
            n = self.pending.pop(self.slot(p), 0)
            count += n
            seconds += n * float(
                self.search.evaluator.recorded_seconds(p, self.search.train_seed, self.search.epochs)
            )
        return count, seconds

    def pending_seconds(self) -> float:
        """The train seconds of the pending trainings, each at the fidelity it was trained at."""
        seed = self.search.train_seed
        return sum(
            n * self.search.evaluator.recorded_seconds(a, seed, self._epochs_of.get(key, self.search.epochs))
            for (a, key), n in self.pending.items()
        )


def _place(key: str) -> str:
    """A store key without the torch threads it names: where a ledger matches a training."""
    try:
        config = json.loads(key)
    except ValueError:
        return key
    if not isinstance(config, dict) or "threads" not in config:
        return key
    return json.dumps({k: v for k, v in config.items() if k != "threads"}, sort_keys=True)
