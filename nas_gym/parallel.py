"""Training many children at once: the one home of parallel training.

Searches and table / sample building alike train through here:

- :func:`train_jobs`: a list of (architecture, seed) jobs in spawned worker processes (tables,
  surrogate samples).
- :class:`LocalPool` / :class:`RayPool`: the pools a search's ``TrackedEnv.prefetch`` hands the
  architectures it is about to step.

Every training is written by the evaluator that owns the store it goes to: the worker's own
evaluator on the shared store file, or, for Ray, the driver's evaluator
(:meth:`~nas_gym.evaluation.Evaluator.record_trained`) with the rows the tasks send back.

The search pools serve agents that know their next architectures ahead. An agent plans a batch
(REINFORCE: its m episodes; random search: a few episodes; evolution: a population or a generation)
and hands the architectures it is about to step to ``TrackedEnv.prefetch``; the env's pool trains
the missing ones in parallel into the search's result store, and the agent then steps through them
as before, each step answered by the store. The history (architectures, accuracies, training
indices) is the one a single process would write, so a search gives the same result whatever the
number of workers (on the CPU, with a fixed ``threads``).

- :class:`LocalPool`: N worker processes on this machine, each with its own evaluator, sharing
  the store file; a GPU per worker (round-robin) and the CPU cores shared out
  (:mod:`nas_gym.workers`).
- :class:`RayPool`: children as Ray tasks asking for ``num_cpus`` / ``num_gpus``, on a local Ray or
  an existing cluster; the results come back to the driver, which writes its own store. A task whose
  worker dies is retried once by Ray, then recorded as a failed child (status ``error``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from nas_gym.config import ChildConfig
from nas_gym.evaluation import Evaluator
from nas_gym.store import ResultStore

__all__ = [
    "RayPool",
    "LocalPool",
    "train_child",
    "train_jobs",
]


class LocalPool:
    """``workers`` processes on this machine (spawned by default), each with a copy of
    ``evaluator`` (an env's: real training, a table or a surrogate) on its store file, which they
    share. A worker of a real evaluator takes GPU ``index % GPUs`` where there are several (unless
    ``device`` is set) and its share of the CPU cores for torch (unless ``threads`` is set), as
    :mod:`nas_gym.workers` places any worker.

    Each batch is a list of requests at one fidelity (``epochs``; None: the evaluator's own): a
    worker files every training under that request's key, whatever the batch before asked for. An
    inheriting child waits for its prefix when another worker trains it, then starts from its
    weights; a worker never trains anything but the architectures of the batch it was handed.
    """

    def __init__(self, evaluator: Any, workers: int, context: str | None = "spawn"):
        import multiprocessing

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        store = evaluator.result_store
        if store is None or store.path is None:
            raise ValueError("a pool of worker processes shares a result store file: give store=PATH")
        self.workers = workers
        self._context = multiprocessing.get_context(context)
        self._next = self._context.Value("i", 0)  # each worker takes the next index
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=self._context,
            initializer=_init_pool_worker,
            initargs=(evaluator, workers, self._next),
        )

    def train(self, archs: Sequence[str], seed: int, tag: str = "", epochs: float | None = None) -> None:
        """Train every architecture of ``archs`` not in the store yet at ``epochs``, ``workers`` at a
        time, in their order (an inheriting child's prefixes come before it); each training goes to
        the store's ledger under ``tag``."""
        if archs:
            archs = [str(a) for a in archs]
            shares = [
                self._executor.submit(_pool_share, archs, int(seed), tag, epochs) for _ in range(self.workers)
            ]
            for share in shares:
                share.result()  # a worker's error is raised here

    def close(self) -> None:
        self._executor.shutdown(wait=True)


_pool_evaluator: Any = None  # a LocalPool worker's evaluator


def _init_pool_worker(evaluator: Any, workers: int, counter: Any) -> None:
    global _pool_evaluator
    import multiprocessing.util

    from nas_gym.workers import cpu_share, end_with_parent, round_robin_device

    end_with_parent()
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    if evaluator.kind == "train":  # its own device and share of the cores, on the same store file
        config = evaluator.child
        if config.device is None:
            config = config.replace(device=round_robin_device(index))
        if config.threads is None:
            config = config.replace(threads=cpu_share(workers))
        evaluator = Evaluator(config, store=evaluator.result_store.path)
    _pool_evaluator = evaluator  # a table's or a surrogate's: the copy as it came
    # closed when the worker ends (the store's file, an isolated child's process)
    multiprocessing.util.Finalize(None, _pool_evaluator.close, exitpriority=10)


_PARENT_POLL = 0.05  # seconds between two looks for a prefix another worker is training


def _pool_share(archs: list[str], seed: int, tag: str, epochs: float | None = None) -> list[str]:
    """A worker's share of a batch: it walks the whole list and trains what it claims first in the
    shared store, so the work is shared out as workers become free; results and their ledger lines
    (under ``tag``, the search's id) go to the store, where the env that drives the search finds
    them. An inheriting child whose prefix is in the batch waits until the prefix is stored (its
    claimant trains it), then starts from its weights. Returns the statuses of what it trained."""
    import time

    evaluator = _pool_evaluator
    evaluator.ledger_tag = tag
    inherit = evaluator.kind == "train" and evaluator.child.inherit
    batch = set(archs)
    statuses = []
    for arch in archs:  # claim one, train it, then claim the next: the free worker takes it
        if evaluator.lookup(arch, seed, epochs) is not None or not evaluator.claim(arch, seed, epochs):
            continue
        if not inherit:
            statuses.append(evaluator.evaluate(arch, seed, epochs).status)
            continue
        parent = arch.rsplit("-", 1)[0] if "-" in arch else None
        while parent in batch and evaluator.stored(parent, seed, epochs) is None:
            time.sleep(_PARENT_POLL)  # claimed by a worker that has not finished it
        weights = evaluator.inheritance.parent_weights(arch, seed, epochs)
        statuses.append(evaluator.train_from(arch, seed, weights, epochs).status)
    return statuses


# -- Ray ----------------------------------------------------------------------------------------

_evaluators: dict[ChildConfig, Evaluator] = {}  # one per configuration in each Ray worker: data stay loaded


def _node_id() -> str:
    """The Ray node id of this process ('' outside a Ray worker)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001  (no Ray, or no runtime context here)
        return ""


def train_child(
    config: ChildConfig, arch: str, seed: int, threads: int, parent_weights: bytes | None = None
) -> dict[str, Any]:
    """Train one child in this process (a Ray task) and return its row for the driver's store.

    Trains ``arch`` and nothing else: with ``inherit``, the driver sends the prefix's trained
    weights (``parent_weights``, None: from scratch) and gets the child's back in the row
    (``weights``), so no node needs another's disk.
    """
    import platform

    import torch

    torch.set_num_threads(max(1, threads))
    config = config.replace(threads=config.threads or max(1, threads))
    evaluator = _evaluators.get(config)
    if evaluator is None:
        evaluator = _evaluators[config] = Evaluator(config)
    evaluator.store = ResultStore(None)  # this training's row only: the driver's store keeps them all
    parent = None
    if parent_weights is not None:
        parent = evaluator.inheritance.weights.folder / f"parent-{os.getpid()}.pt"
        parent.write_bytes(parent_weights)
    try:
        result = evaluator.train_from(arch, seed, parent)
    finally:
        if parent is not None:
            parent.unlink(missing_ok=True)
    stored = evaluator.stored(arch, seed)
    assert stored is not None
    weights = None
    if evaluator.child.inherit:
        own = evaluator.inheritance.file(arch, seed)
        if own.exists():
            weights = own.read_bytes()
            own.unlink()  # the driver keeps them
    return {
        "accuracy": stored.accuracy,
        "num_params": stored.num_params,
        "train_seconds": stored.train_seconds,
        "status": result.status,
        "message": stored.message,
        "device": stored.device,
        "node": _node_id(),
        "host": platform.node(),
        "weights": weights,
        "curve": stored.curve_points(),
    }


class RayPool:
    """Children as Ray tasks; results written to ``evaluator``'s store by this (the driver) process.

    ``address``: None starts a local Ray (``num_cpus`` CPUs, default all) unless one is running;
    ``"auto"`` or ``"ray://host:10001"`` joins a cluster. ``workers``: tasks in flight at most
    (default: as many as the cluster's CPUs allow). ``train_fn`` replaces :func:`train_child`
    (same arguments), e.g. to inject faults in tests.

    Nothing is shared on disk: the driver keeps the store and, with ``inherit``, the trained
    weights (next to its store, as in one process). A batch is trained in the order of
    :meth:`Evaluator.training_plan` (an inheriting child's missing prefixes first); a child whose
    prefix is in the batch waits for it and gets its weights through Ray's object store, so each
    architecture trains once, wherever its parent trained. Every row records the node and host.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_child: float = 1,
        gpus_per_child: float = 0,
        num_cpus: int | None = None,
        train_fn: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as e:
            raise ImportError('the Ray backend needs Ray: pip install "nas-gym[ray]"') from e
        if not ray.is_initialized():
            if address is None:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        self.ray = ray
        self.evaluator = evaluator
        self.threads = evaluator.setup.torch_threads
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_child, 1)))
        self._remote = ray.remote(
            num_cpus=cpus_per_child, num_gpus=gpus_per_child, max_retries=1, retry_exceptions=False
        )(train_fn or train_child)
        self.failures = 0

    def _parent(self, arch: str) -> str | None:
        layers = arch.split("-")
        return "-".join(layers[:-1]) if self.evaluator.child.inherit and len(layers) >= 2 else None

    def request_config(self, epochs: float | None) -> ChildConfig:
        """What a task trains a request for ``epochs`` with: the driver's configuration for those
        epochs, on the device kind its store key names and with its thread count (part of the key
        on the CPU)."""
        setup = self.evaluator.setup
        return setup.request_config(epochs).replace(
            device=setup.child.device or setup.device_type, threads=self.threads
        )

    def train(self, archs: Sequence[str], seed: int, tag: str = "", epochs: float | None = None) -> None:
        """Train what evaluating each of ``archs`` at ``epochs`` would train (see
        :meth:`Evaluator.training_plan`), ``workers`` at a time, each child once; the rows and
        ledger lines (under ``tag``, and the key of ``epochs``) go to the driver's store as the
        tasks finish."""
        ray, seed = self.ray, int(seed)
        config = self.request_config(epochs)
        queue: list[str] = []
        for a in archs:
            queue += [p for p in self.evaluator.training_plan(str(a), seed, epochs) if p not in queue]
        running: dict[Any, str] = {}
        sent: dict[str, Any] = {}  # parent -> its weights in the object store, for this batch
        while queue or running:
            for arch in list(queue):
                if len(running) >= self.workers:
                    break
                parent = self._parent(arch)
                if parent is not None and (parent in queue or parent in running.values()):
                    continue  # its prefix trains first (a chain's shortest is never waiting)
                queue.remove(arch)
                weights = None if parent is None else self._weights_ref(parent, seed, sent, epochs)
                running[self._remote.remote(config, arch, seed, self.threads, weights)] = arch
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                self._store(running.pop(ref), seed, ref, tag, epochs)

    def _weights_ref(self, parent: str, seed: int, sent: dict[str, Any], epochs: float | None) -> Any:
        """The object-store ref of ``parent``'s weights (kept by this driver), or None (it failed,
        or they are gone: the child trains from scratch, as it would in one process)."""
        if parent not in sent:
            path = self.evaluator.inheritance.file(parent, seed, epochs)
            sent[parent] = self.ray.put(path.read_bytes()) if path.exists() else None
        return sent[parent]

    def _store(self, arch: str, seed: int, ref: Any, tag: str, epochs: float | None = None) -> None:
        weights = None
        try:
            row = self.ray.get(ref)
            weights = row.get("weights")
            fields = {
                k: row[k]
                for k in (
                    "accuracy",
                    "num_params",
                    "train_seconds",
                    "status",
                    "message",
                    "device",
                    "node",
                    "host",
                )
            }
            fields["curve"] = row.get("curve", ())
        except self.ray.exceptions.RayError as e:  # the task failed twice, or its worker died twice
            self.failures += 1
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            fields = dict(accuracy=0.0, num_params=self.evaluator.num_params(arch), train_seconds=0.0,
                          status="error", message=f"{type(e).__name__}: {first_line}"[:500], device="",
                          host="")  # fmt: skip
        if weights is not None:  # kept before the row is written: a resumed search finds both
            path = self.evaluator.inheritance.file(arch, seed, epochs)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(weights)
            tmp.replace(path)
        self.evaluator.record_trained(arch, seed, tag, **fields, epochs=epochs)
        if weights is not None:
            self.evaluator.inheritance.weights.prune()

    def close(self) -> None:
        pass  # Ray stays up for the process (ray.shutdown() ends a local one)


# -- jobs in spawned processes (tables, samples) ------------------------------------------------

_worker_evaluator: Any = None


def _init_worker(config: ChildConfig, store: str, threads: int, tag: str) -> None:
    global _worker_evaluator
    import torch

    from nas_gym.workers import end_with_parent

    end_with_parent()
    torch.set_num_threads(threads)
    _worker_evaluator = Evaluator(config, store=store, ledger_tag=tag)


def _train_one(arch: str, seed: int) -> tuple[str, int, float, str, float]:
    result = _worker_evaluator.evaluate(arch, seed)
    return arch, seed, result.accuracy, result.status, result.train_seconds


def train_jobs(
    config: ChildConfig,
    store: str | os.PathLike[str],
    jobs: Sequence[tuple[str, int]],
    workers: int,
    threads: int,
    tag: str = "",
    on_result: Callable[[int, int, str, int, float], None] | None = None,
    longest_first: bool = True,
) -> int:
    """Train the (architecture, seed) ``jobs`` of ``config`` missing from ``store`` (a file) in
    ``workers`` spawned processes with ``threads`` torch threads
    each, longest architectures first (fewer stragglers) or in the given order; each training goes
    to the store's ledger under ``tag``. ``on_result(done, total, arch, seed, accuracy)`` reports
    progress (first with ``arch=""``: what was stored already). Returns how many were missing.
    Resumable: what is stored is not trained again."""
    import multiprocessing

    evaluator = Evaluator(config, store=str(store))
    jobs = list(dict.fromkeys(jobs))
    todo = [(a, s) for a, s in jobs if evaluator.lookup(a, s) is None]
    done = len(jobs) - len(todo)
    if on_result is not None:
        on_result(done, len(jobs), "", -1, float("nan"))
    if todo:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(config, str(store), threads, tag),
        ) as pool:
            if longest_first:
                todo.sort(key=lambda job: -job[0].count("-"))
            for arch, seed, accuracy, _status, _seconds in pool.map(_train_one, *zip(*todo, strict=True)):
                done += 1
                if on_result is not None:
                    on_result(done, len(jobs), arch, seed, accuracy)
    return len(todo)
