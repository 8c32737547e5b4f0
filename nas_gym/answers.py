"""Answers read from data, filed like trainings: what the table and surrogate evaluators share.

:class:`StoredAnswers` is the part of the evaluator contract (:class:`nas_gym.evaluation.ArchEvaluator`)
that does not depend on where an answer comes from: a request (architecture, seed, fidelity) is
looked up in the store under the key of its fidelity; a miss is answered by the subclass
(:meth:`StoredAnswers._answer`), filed with its line in the ledger, and counted as a training
with its seconds, so a search over a table or a surrogate spends its budget as a real one does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from nas_gym.evaluation import EvalResult
from nas_gym.search_space import Architecture
from nas_gym.store import KeyedStore, ResultStore, StoredResult

__all__ = ["Answer", "StoredAnswers"]


@dataclass(frozen=True)
class Answer:
    """What a table or a surrogate answers for one request, before it is filed."""

    accuracy: float
    num_params: int
    train_seconds: float
    status: str = "ok"
    curve: Sequence[Sequence[float]] = ()


class StoredAnswers:
    """The store side of an evaluator whose answers are read, not trained.

    A subclass says where a fidelity's answers are filed (:meth:`filed_at`, which refuses a
    fidelity it does not answer), which seed a row is filed under (:meth:`stored_seed`), what a
    miss answers (:meth:`_answer`) and what a training costs (``recorded_seconds``).
    """

    device = ""  # the store rows' device column (each subclass names itself, and its ``kind``)

    def __init__(self, store: ResultStore | str | os.PathLike[str] | None, dataset: str) -> None:
        self.store = store if isinstance(store, ResultStore) else ResultStore(store)
        self.dataset = dataset
        self.trainings = 0
        self.train_seconds = 0.0
        self.ledger_tag = ""

    @property
    def result_store(self) -> ResultStore:
        return self.store

    def filed_at(self, epochs: float | None) -> KeyedStore:
        """Where answers at ``epochs`` are filed (None: the evaluator's own epochs)."""
        raise NotImplementedError

    def stored_seed(self, seed: int) -> int:
        """The seed a request's row is filed under."""
        return int(seed)

    def _answer(self, arch: Architecture | str, text: str, seed: int, epochs: float | None) -> Answer:
        """Answer a request that is not stored yet (``text``: the architecture's token text)."""
        raise NotImplementedError

    def key_of(self, epochs: float | None = None) -> str:
        """The store key its answers at ``epochs`` are filed under (None: its own epochs)."""
        return self.filed_at(epochs).key

    def lookup(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> StoredResult | None:
        """The stored row, or None when asking for it would be a training."""
        return self.filed_at(epochs).get(str(arch), self.stored_seed(seed))

    def evaluate(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> EvalResult:
        filed, text = self.filed_at(epochs), str(arch)
        stored = filed.get(text, self.stored_seed(seed))
        if stored is not None:
            return EvalResult.from_stored(stored)
        answer = self._answer(arch, text, seed, epochs)
        filed.record(
            text, self.stored_seed(seed), answer.accuracy, answer.num_params, answer.train_seconds,
            answer.status, tag=self.ledger_tag, device=self.device, curve=answer.curve,
        )  # fmt: skip
        self.trainings += 1
        self.train_seconds += answer.train_seconds
        return EvalResult(
            text, answer.accuracy, answer.num_params, answer.status, False, answer.train_seconds, None, 1
        )

    def training_plan(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> list[str]:
        """What evaluating ``arch`` would train: itself, unless this search has asked for it."""
        return [] if self.lookup(arch, seed, epochs) is not None else [str(arch)]

    def claim(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> bool:
        return self.filed_at(epochs).claim(str(arch), self.stored_seed(seed))

    def release(self, archs: list[str], seed: int, epochs: float | None = None) -> None:
        self.filed_at(epochs).release(archs, self.stored_seed(seed))

    def close(self) -> None:
        self.store.close_file()  # the answers are plain arrays; the store's file opens again on the next use
