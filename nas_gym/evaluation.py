"""Evaluation: the child builder and the trainer joined, behind a result store.

This is the only place that decides whether a request trains: a key already stored (dataset,
training configuration, architecture, seed) trains nothing unless its row is a failure that may
be retried (:func:`nas_gym.store.may_retry`). Children train in a watched worker process by
default (:mod:`nas_gym.child`), so one that hangs or crashes in native code becomes a status.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nas_gym.child import ChildOutcome, ChildRequest, ChildSetup
from nas_gym.config import ChildConfig
from nas_gym.search_space import Architecture
from nas_gym.store import RETRIED_AT_ONCE, KeyedStore, ResultStore, StoredResult, StoreError, may_retry
from nas_gym.weights import PrefixInheritance

__all__ = [
    "ArchEvaluator",
    "EvalResult",
    "Evaluator",
    "ResultStore",
    "StoreError",
    "StoredResult",
    "check_fixed_epochs",
    "evaluator_members",
]

log = logging.getLogger("nas_gym")


@dataclass(frozen=True)
class EvalResult:
    arch: str
    accuracy: float
    num_params: int
    status: str
    cached: bool  # answered from the store, nothing trained
    train_seconds: float  # of the training that produced the row (0 when it was cached)
    test_accuracy: float | None = None
    trainings: int = 0  # trainings this request took (a retry is one more)

    @classmethod
    def from_stored(cls, stored: StoredResult) -> EvalResult:
        """A stored row, answered without training."""
        return cls(
            stored.arch, stored.accuracy, stored.num_params, stored.status, True, 0.0, stored.test_accuracy
        )


@runtime_checkable
class ArchEvaluator(Protocol):
    """What the envs and the agents ask of an evaluator: real training (:class:`Evaluator`), a table
    (:class:`nas_gym.tabular.TableEvaluator`), a surrogate
    (:class:`nas_gym.surrogate.SurrogateEvaluator`) or a test's function all answer it.

    ``trainings`` counts this object's store misses (and retries); ``lookup`` is what
    ``evaluate`` would answer without training (None: it would train; anything else is stored);
    ``recorded_seconds`` what a training cost; ``training_plan`` what an evaluation would train;
    ``claim`` / ``release`` share a batch between processes through the store;
    ``ledger_tag`` names the search whose trainings are being written (the store's ledger);
    ``result_store`` is that store, or None for an evaluator that keeps no ledger.

    A request is (architecture, seed, fidelity): ``epochs=None`` asks at the evaluator's own
    ``epochs``; another value asks for a child trained that many epochs, filed under that
    configuration's key. ``kind`` says what answers ("train": real trainings, "table": a table
    of trainings, "surrogate": a model's predictions) and ``takes_epochs`` whether it answers at
    any fidelity; one that does not refuses other epochs with a ValueError naming its own.
    """

    trainings: int
    ledger_tag: str
    kind: str

    @property
    def takes_epochs(self) -> bool: ...

    @property
    def epochs(self) -> float: ...

    @property
    def image_size(self) -> int: ...

    @property
    def result_store(self) -> ResultStore | None: ...

    def evaluate(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> EvalResult: ...

    def lookup(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> Any: ...

    def recorded_seconds(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float:
        """What training ``arch`` with ``seed`` cost in seconds (the store's row, the table's entry,
        the surrogate's prediction); 0.0 for one not trained. A budget in seconds counts these."""
        ...

    def training_plan(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> list[str]:
        """The trainings evaluating ``arch`` would start, in order: none when ``lookup`` answers it,
        else ``arch``, after the prefixes an inheriting evaluator trains first for their weights.
        A budget counts these ahead; a pool trains them."""
        ...

    def num_params(self, arch: Architecture | str) -> int: ...

    def key_of(self, epochs: float | None = None) -> str:
        """The configuration key a request at ``epochs`` is filed under in the store (and in its
        ledger); None: at the evaluator's own epochs. A training is (architecture, seed, key)."""
        ...

    def claim(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> bool:
        """Claim ``arch``'s training for this process in a store shared by several (True: train it;
        False: another has claimed it). An evaluator whose store is not shared claims everything."""
        ...

    def release(self, archs: list[str], seed: int, epochs: float | None = None) -> None:
        """Drop stale claims on ``archs`` (left by a worker stopped mid-training)."""
        ...

    def close(self) -> None:
        """Release what the evaluator holds (a worker process); it may be used again after."""
        ...


def evaluator_members() -> list[str]:
    """The names :class:`ArchEvaluator` asks an evaluator to have, in the order it lists them."""
    skip = {"__init__", "__subclasshook__", "__slots__", "__parameters__"}
    own = [*ArchEvaluator.__annotations__, *vars(ArchEvaluator)]
    return [m for m in dict.fromkeys(own) if not m.startswith("_") and m not in skip]


def check_fixed_epochs(what: str, own: float, epochs: float | None) -> None:
    """Refuse a request for other ``epochs`` than ``own`` from an evaluator that answers at one
    fidelity only (a table, a surrogate of one configuration), naming both."""
    if epochs is not None and float(epochs) != float(own):
        raise ValueError(
            f"{what} answers children trained {float(own):g} epochs only, not {epochs!r} (an env that "
            "trains its children answers at any epochs)"
        )


class Evaluator:
    """Trains children of one :class:`~nas_gym.config.ChildConfig` through a result store.

    ``Evaluator(config, store=...)``, or ``Evaluator(store=..., **settings)`` with the settings of
    a ``ChildConfig`` (``Evaluator(config, epochs=2)``: ``config`` with that change). The
    configuration is ``child``; its store key is :attr:`config_key`. ``setup``
    (:class:`~nas_gym.child.ChildSetup`) is that configuration with its device and torch threads
    resolved (``setup.device_type``, ``setup.torch_threads``); ``inheritance``
    (:class:`~nas_gym.weights.PrefixInheritance`) keeps the trained weights inheriting children
    start from, next to the store.

    ``trainings`` and ``train_seconds`` count this object's trainings (store misses and retries);
    the store's ledger counts every process's (``result_store.trainings(tag)``), which is what a
    search's budget is read from. ``ledger_tag`` names the search these trainings are for (a
    builder gives it here; a search's ``TrackedEnv`` gives it to its env).

    The configuration never changes: a request for other ``epochs`` (a curriculum, a fidelity
    chosen per episode) is answered with ``child.replace(epochs=...)``, filed under that key
    (``setup.request_config``).

    ``isolate`` (default): children train in a worker process watched for hangs (no training
    step for ``hang_limit`` seconds) and crashes; ``isolate=False`` trains in this process, where
    ``time_limit`` is only checked between steps. ``retry_failed``: train again children stored
    with a failure caused by the circumstances (out of memory, crashed, hung, error).
    """

    kind = "train"
    takes_epochs = True

    def __init__(
        self,
        config: ChildConfig | None = None,
        store: ResultStore | str | os.PathLike[str] | None = None,
        ledger_tag: str = "",
        **settings: Any,
    ) -> None:
        if config is None:
            config = ChildConfig(**settings)
        elif settings:
            config = config.replace(**settings)
        self.setup = ChildSetup(config)
        # what the envs and the agents read of the configuration, which never changes
        self.dataset: str = config.dataset
        self.epochs = float(config.epochs)
        self.image_size = int(config.image_size)  # type: ignore[arg-type]
        self.store = store if isinstance(store, ResultStore) else ResultStore(store)
        self.trainings = 0
        self.train_seconds = 0.0
        self.ledger_tag = ledger_tag
        self._runner: Any = None  # LocalTrainer or ChildProcess, at the first training
        self._inheritance: PrefixInheritance | None = None

    def __repr__(self) -> str:
        return f"Evaluator({self.child!r}, store={self.store.path!r})"

    def __getstate__(self) -> dict[str, Any]:
        # a copy starts its own worker and loads its own data
        return {**self.__dict__, "_runner": None}

    def close(self) -> None:
        """End the worker process, if any (it also ends with this process), and close the store's
        file, which the next use opens again."""
        if self._runner is not None and hasattr(self._runner, "close"):
            self._runner.close()
        self._runner = None
        self.store.close_file()

    @property
    def child(self) -> ChildConfig:
        """The configuration of this evaluator's children (requests may ask for other epochs)."""
        return self.setup.child

    @property
    def result_store(self) -> ResultStore:
        return self.store

    @property
    def config_key(self) -> str:
        """The store key of this evaluator's children (:meth:`ChildConfig.key`, with the device
        kind and the thread count resolved by :attr:`setup`)."""
        return self.key_of(None)

    def key_of(self, epochs: float | None = None) -> str:
        """The store key of a request for ``epochs`` (None: this evaluator's own)."""
        return self.setup.key_of(epochs)

    @property
    def inheritance(self) -> PrefixInheritance:
        """Prefix weight inheritance: where inheriting children's trained weights are kept (next
        to the store) and which prefixes a child trains first."""
        if self._inheritance is None:
            self._inheritance = PrefixInheritance(self.setup, self.store.path)
        return self._inheritance

    def training_plan(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> list[str]:
        """The trainings an evaluation of ``arch`` would start, in order: none when it is stored;
        with ``inherit``, the prefixes it would train first for their weights, shortest first, then
        ``arch``. What a pool trains for a batch, and what a budget counts ahead."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        if self.lookup(arch, seed, epochs) is not None:
            return []
        return [*self.inheritance.prefixes_to_train(arch, seed, epochs, self.lookup), str(arch)]

    def train_from(
        self, arch: Architecture | str, seed: int, parent_weights: Path | None, epochs: float | None = None
    ) -> EvalResult:
        """Train ``arch`` now, starting from ``parent_weights`` (its prefix's trained weights, a file
        of ``inheritance.file``'s format) or from scratch when None; never trains a prefix. With
        ``inherit``, its own weights are kept at ``inheritance.file``. For a pool whose prefixes
        trained elsewhere (a Ray task: its parent's weights come through the object store)."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        return self._train(
            arch, int(seed), final=False, parent=parent_weights, find_parent=False, epochs=epochs
        )

    def num_params(self, arch: Architecture | str) -> int:
        return self.setup.num_params(arch)

    def _runner_for_children(self) -> Any:
        if self._runner is None:
            from nas_gym.child import ChildProcess, LocalTrainer

            spec = self.setup.data_spec()
            self._runner = (
                ChildProcess(spec, self.child.hang_limit) if self.child.isolate else LocalTrainer(spec)
            )
        return self._runner

    def filed(self, epochs: float | None = None) -> KeyedStore:
        """Where the children of a request for ``epochs`` are filed: the store under its key."""
        return KeyedStore(self.store, self.dataset, self.key_of(epochs))

    def stored(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> StoredResult | None:
        """The stored row of ``arch``, whatever its status."""
        return self.filed(epochs).get(str(arch), int(seed))

    def lookup(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> StoredResult | None:
        """The stored row that answers a request for ``arch``; None when the request would train."""
        row = self.stored(arch, seed, epochs)
        if row is None or may_retry(row, self.child.time_limit, self.child.retry_failed):
            return None
        return row

    def recorded_seconds(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float:
        """The train seconds of the stored row of ``arch`` (0.0 when there is none)."""
        row = self.stored(arch, seed, epochs)
        return 0.0 if row is None else float(row.train_seconds)

    def record_trained(
        self,
        arch: str,
        seed: int,
        tag: str,
        accuracy: float,
        num_params: int,
        train_seconds: float,
        status: str,
        message: str = "",
        device: str = "",
        test_accuracy: float | None = None,
        replace_ok: bool = False,
        node: str = "",
        host: str | None = None,
        curve: Sequence[Sequence[float]] = (),
        epochs: float | None = None,
    ) -> StoredResult:
        """Write a training to this evaluator's store, under its key, with its line in the ledger
        under ``tag``: this evaluator's own trainings, and those done elsewhere (a Ray task has no
        access to this store). ``replace_ok``: see :meth:`ResultStore.record_training`. ``node`` /
        ``host``: where it trained (the Ray node id, '' outside Ray; the host name, default this
        machine's)."""
        return self.filed(epochs).record(
            arch, seed, accuracy, num_params, train_seconds, status, tag=tag, device=device, message=message,
            test_accuracy=test_accuracy, time_limit=self.child.time_limit, node=node,
            host=platform.node() if host is None else host, replace_ok=replace_ok, curve=curve,
        )  # fmt: skip

    def claim(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> bool:
        """Claim ``arch``'s training for this process (see :meth:`ResultStore.claim`)."""
        return self.filed(epochs).claim(str(arch), int(seed))

    def release(self, archs: list[str], seed: int, epochs: float | None = None) -> None:
        """Drop stale claims on ``archs`` before a batch of them is handed to workers."""
        self.filed(epochs).release(archs, int(seed))

    def evaluate(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> EvalResult:
        """Validation accuracy of ``arch`` trained with ``seed`` for ``epochs`` (None: this
        evaluator's): from the store, or trained now."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        stored = self.lookup(arch, seed, epochs)
        if stored is not None:
            return EvalResult.from_stored(stored)
        return self._train(arch, int(seed), final=False, epochs=epochs)

    def final_evaluate(self, arch: Architecture | str, seed: int) -> EvalResult:
        """Validation and *test* accuracy of ``arch``, both from one training: a stored row that
        has both is answered as it is; otherwise ``arch`` is trained (again), and the row replaced.
        A failure other than ``diverged`` is retried."""
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        stored = self.stored(arch, seed)
        if stored is not None and (stored.test_accuracy is not None or stored.status == "diverged"):
            return EvalResult.from_stored(stored)
        return self._train(arch, int(seed), final=True)

    def _train(
        self,
        arch: Architecture,
        seed: int,
        final: bool,
        parent: Path | None = None,
        find_parent: bool = True,
        epochs: float | None = None,
    ) -> EvalResult:
        if not arch.fits(self.image_size):
            raise ValueError(f"{arch} shrinks a {self.image_size}x{self.image_size} input below 1x1")
        params = self.num_params(arch)
        threads = self.setup.torch_threads if self.setup.device_type == "cpu" else None
        inheritance = self.inheritance
        if find_parent:

            def train_prefix(prefix: Architecture) -> str:
                return self._train(prefix, seed, final=False, epochs=epochs).status

            parent = inheritance.start_from(arch, seed, epochs, self.lookup, train_prefix)
        elif parent is not None and not self.child.inherit:
            raise ValueError("parent weights given to an evaluator that does not inherit (inherit=False)")
        child = self.setup.request_config(epochs)
        config = child.train_config()
        save = None
        if child.inherit:
            save = str(inheritance.file(arch, seed, epochs))
            if parent is not None:
                config = child.train_config(epochs=child.inherit_epochs)
        request = ChildRequest(
            str(arch), seed, config, final, threads, None if parent is None else str(parent), save
        )
        runner = self._runner_for_children()
        attempts, seconds = 0, 0.0
        while True:
            outcome: ChildOutcome = runner.run(request)
            attempts += 1
            seconds += outcome.train_seconds
            self.trainings += 1
            self.train_seconds += outcome.train_seconds
            if outcome.status != "ok":
                log.warning("child %s (seed %d) ended %s: %s", arch, seed, outcome.status, outcome.message)
            stored = self.record_trained(
                str(arch), seed, self.ledger_tag, outcome.accuracy, params, outcome.train_seconds,
                outcome.status, outcome.message, outcome.device, outcome.test_accuracy, replace_ok=final,
                curve=outcome.curve, epochs=epochs,
            )  # fmt: skip
            if outcome.status not in RETRIED_AT_ONCE or attempts > 1:
                break
            log.warning("training %s (seed %d) once more", arch, seed)
        if save is not None:
            inheritance.weights.prune({Path(save)})
        return EvalResult(
            stored.arch,
            stored.accuracy,
            stored.num_params,
            stored.status,
            False,
            seconds,
            stored.test_accuracy,
            attempts,
        )
