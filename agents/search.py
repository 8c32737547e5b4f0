"""One search, from its settings to its outputs: what ``nas-gym search``, ``compare_agents.py`` and
the GPU check run.

    search = Search("NASFashionMini-v0", "evolution", seed=0, budget=80, out=Path("runs/evo"))
    running = search.start()  # checks everything, opens (or resumes) the run folder
    running.tracked.listeners.append(print)  # each step's row, as it happens
    outcome = running.run()  # the agent until the budget is spent; outputs written to out

A search has a budget (trainings, train seconds or both), an env id with settings over the id's
(``overrides``), an agent with settings over its defaults, and optionally a run folder (``out``):
there the store, the history, ``run.json`` and the summary are kept, and the same search started
again resumes. ``workers`` > 1 trains each batch an agent plans in parallel (a pool of env
processes on this machine, or Ray tasks with ``backend="ray"``); on the CPU they all train with
one thread count, as it is part of the store key.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Outcome", "Running", "Search", "SearchError"]

BACKENDS = ("local", "ray")


class SearchError(ValueError):
    """Settings that cannot make a search (named in the message); nothing is written."""


def env_kwargs(env_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The kwargs of the registered NAS env ``env_id`` with ``overrides`` on top (an override of
    None leaves the id's value: an option not given)."""
    import gymnasium as gym

    from nas_gym.registration import env_kind

    try:
        env_kind(env_id)
    except ValueError as e:
        raise SearchError(str(e)) from None
    return {**gym.spec(env_id).kwargs, **{k: v for k, v in overrides.items() if v is not None}}


def make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    """``gym.make(env_id, **kwargs)``, a kwarg the env does not take refused by name."""
    import gymnasium as gym

    try:
        return gym.make(env_id, **kwargs)
    except TypeError as e:  # a kwarg this env does not take (epochs on NASTabular-v0)
        if "unexpected keyword argument" not in str(e):
            raise
        raise SearchError(f"{env_id} does not take that option: {e}") from e


@dataclass
class Search:
    env_id: str
    agent: str
    seed: int = 0
    budget: int | None = None  # trainings
    budget_seconds: float | None = None  # train seconds
    overrides: dict[str, Any] = field(default_factory=dict)  # env kwargs over the id's (None: the id's)
    agent_config: dict[str, Any] | None = None  # the agent's settings over its defaults
    out: Path | None = None  # the run folder (store, history, outputs); None: nothing kept
    store: str | None = None  # without ``out``: a store file (a pool of processes needs one)
    workers: int | None = None  # None: 1 locally, as many as the cluster's CPUs allow on Ray
    backend: str = "local"
    ray_address: str | None = None
    cpus_per_child: float = 1
    gpus_per_child: float | None = None  # None: 1 when the children train on CUDA

    def check(self) -> None:
        """Every setting that can be checked before anything is made."""
        from agents.registry import AGENTS, SB3_AGENTS

        if self.agent not in AGENTS:
            raise SearchError(f"unknown agent {self.agent!r}; known: {', '.join(AGENTS)}")
        missing = AGENTS[self.agent].missing()
        if missing is not None:
            raise SearchError(f"{self.agent}: {missing}")
        if self.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise SearchError('--backend ray needs Ray, which is not installed: pip install "nas-gym[ray]"')
        if self.budget is None and self.budget_seconds is None:
            raise SearchError("a search needs a budget: trainings, train seconds or both")
        if self.budget is not None and self.budget <= 0:
            raise SearchError(f"--budget must be a positive number of trainings, got {self.budget}")
        if self.budget_seconds is not None and not (0 < self.budget_seconds < float("inf")):
            raise SearchError(
                f"--budget-seconds must be a positive number of seconds, got {self.budget_seconds}"
            )
        if self.workers is not None and self.workers < 1:
            raise SearchError(f"--workers must be >= 1, got {self.workers}")
        if self.backend not in BACKENDS:
            raise SearchError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.agent in SB3_AGENTS and self.backend == "ray":
            raise SearchError(f"{self.agent} steps copies of the env in local processes: use --backend local")
        if self.backend == "local" and self.ray_address is not None:
            raise SearchError("--ray-address needs --backend ray")
        if self.out is not None:
            existing = next((p for p in [self.out, *self.out.parents] if p.exists()), None)
            if self.out.exists() and not self.out.is_dir():
                raise SearchError(f"--out {self.out} is a file, not a folder")
            if existing is None or not os.access(existing, os.W_OK | os.X_OK):
                raise SearchError(f"--out {self.out} is not writable")

    @property
    def parallel(self) -> bool:
        return (self.workers or 1) > 1 or self.backend == "ray"

    def env_kwargs(self) -> dict[str, Any]:
        """The id's kwargs with the overrides; in parallel, the thread count every process uses."""
        from nas_gym.registration import env_kind

        kwargs = env_kwargs(self.env_id, self.overrides)
        data = kwargs.get("data")
        if data is not None and not isinstance(data, str | os.PathLike):
            # arrays of the user's images: prepared once, the run (run.json) names them by digest
            from nas_gym.training.images import prepare_images

            kwargs["data"] = prepare_images(
                data, kwargs.get("image_size"), bool(kwargs.get("augment", False)), bool(kwargs.get("flip", True)),
                float(kwargs.get("test_fraction", 0.1)), kwargs.get("classes"),
            )  # fmt: skip
            kwargs.pop("image_size", None)
        if self.parallel and env_kind(self.env_id) == "train" and kwargs.get("threads") is None:
            # the thread count is part of the store key on the CPU: the driver and every worker
            # train (and look children up) with the same one
            from nas_gym.workers import cpu_share

            ray = self.backend == "ray"
            kwargs["threads"] = max(1, int(self.cpus_per_child)) if ray else cpu_share(self.workers)
        return kwargs

    def make_env(self, store: str | None) -> Any:
        """The env of this search (its settings refused by name)."""
        kwargs = self.env_kwargs()
        if store is not None:
            kwargs["store"] = store
        return make_env(self.env_id, kwargs)

    def start(self) -> Running:
        """Check the settings, make the env (and the pool), open or resume the run folder."""
        from agents.common.tracked_env import TrackedEnv

        self.check()
        kwargs = self.env_kwargs()
        lock = None
        try:
            spec, history, store, lock = self._open_folder(kwargs)
            env = self.make_env(store)
            try:
                pool = self._pool(env, kwargs, store)
            except BaseException:
                env.close()
                raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        tag = None if spec is None else spec.run_id
        tracked = TrackedEnv(
            env, self.budget, history, pool=pool, budget_seconds=self.budget_seconds, tag=tag
        )
        return Running(self, tracked, pool, spec, lock)

    def _open_folder(self, kwargs: dict[str, Any]) -> tuple[Any, Any, str | None, Any]:
        """The run folder: every setting and the store checked before anything is written, then
        the folder locked for this search, its description written (its id kept), its history
        read. Returns (spec, history, store path, lock); all None but the store without a folder."""
        import uuid

        from agents.common.history import History
        from agents.common.runs import RunLock, RunSpec
        from nas_gym.store import ResultStore

        if self.out is None:
            return None, None, self.store, None
        spec = RunSpec(
            self.env_id,
            self.agent,
            self.seed,
            {k: v for k, v in kwargs.items() if k != "data_dir"},
            self.budget,
            self.budget_seconds,
        )
        previous = RunSpec.load(self.out)
        if previous is not None:
            spec.check_same_search(previous, self.out)
        elif self.out.exists() and (self.out / "history.jsonl").exists():
            raise SearchError(
                f"{self.out} holds a history but no run.json: not a search folder of this version"
            )
        self.make_env(None).close()  # the env's own checks (sizes, data folder) before writing
        store = self.out / "results.sqlite"
        if store.exists():
            ResultStore(store).close()  # a store that cannot be read is refused before anything is written
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SearchError(f"cannot make the folder {self.out}: {e.strerror or e}") from None
        lock = RunLock(self.out).acquire()
        try:
            # the search's id in the ledger: kept in run.json, so a moved folder is the same search;
            # a folder of an earlier version keeps the tag it had (its absolute path then)
            run_id = previous.run_id if previous is not None else None
            if run_id is None:
                run_id = str(self.out.resolve()) if previous is not None else uuid.uuid4().hex
            spec = dataclasses.replace(spec, run_id=run_id)
            spec.save(self.out)
            history = History.load(self.out / "history.jsonl")
        except BaseException:
            lock.release()
            raise
        return spec, history, str(store), lock

    def _pool(self, env: Any, kwargs: dict[str, Any], store: str | None) -> Any:
        """What trains an agent's batches in parallel: None for one local worker."""
        from agents.registry import SB3_AGENTS
        from nas_gym.parallel import LocalPool, RayPool

        if self.agent in SB3_AGENTS:  # they step copies of the env in a SubprocVecEnv instead
            return None
        if self.backend == "local":
            if (self.workers or 1) == 1:
                return None
            if store is None:
                raise SearchError("a pool of worker processes shares a result store file: give a store")
            return LocalPool(env.unwrapped.evaluator, int(self.workers or 1))
        evaluator = env.unwrapped.evaluator
        if evaluator.kind != "train":
            raise SearchError(f"{self.env_id} trains nothing: it has no use for Ray")
        gpus = self.gpus_per_child
        if gpus is None:
            gpus = 1 if evaluator.setup.device_type == "cuda" else 0
        try:
            return RayPool(
                evaluator,
                address=self.ray_address,
                workers=self.workers,
                cpus_per_child=self.cpus_per_child,
                gpus_per_child=gpus,
            )
        except ImportError as e:
            raise SearchError(str(e)) from e


@dataclass
class Running:
    """A started search: its env (``tracked``, with the history, the budget and the listeners),
    its pool, and the run folder's description (``spec``; None without a folder)."""

    search: Search
    tracked: Any  # TrackedEnv
    pool: Any
    spec: Any  # RunSpec | None
    lock: Any = None  # the run folder's lock (RunLock), held until run() ends or close()

    @property
    def history(self) -> Any:
        return self.tracked.history

    def close(self) -> None:
        """End a started search without running it (or after): pool, env and the folder's lock."""
        if self.pool is not None:
            self.pool.close()
        self.tracked.close()
        if self.lock is not None:
            self.lock.release()

    def run(self) -> Outcome:
        """The agent until the budget is spent; then the outputs, where there is a run folder. The
        pool and the env are closed after (the history and the evaluator stay readable)."""
        from agents.common.replay_tree import ReplayTree
        from agents.common.runs import tree_from_history, write_outputs
        from agents.registry import run_agent

        s = self.search
        start = time.perf_counter()
        try:
            try:
                result = run_agent(
                    s.agent,
                    self.tracked,
                    s.seed,
                    checkpoint=s.out,
                    workers=s.workers or 1,
                    config=s.agent_config,
                )
            finally:
                if self.pool is not None:
                    self.pool.close()
            wall = time.perf_counter() - start
            tree = result if isinstance(result, ReplayTree) else tree_from_history(self.history)
            summary = None
            if s.out is not None:
                summary = write_outputs(
                    s.out, self.spec, self.history, tree, s.budget, spent=self.tracked.spent,
                    budget_seconds=s.budget_seconds, wall_seconds=wall,
                )  # fmt: skip
            evaluator = self.tracked.unwrapped.evaluator
            self.tracked.close()
        finally:
            if self.lock is not None:
                self.lock.release()
        return Outcome(self.tracked, tree, summary, wall, evaluator)


@dataclass
class Outcome:
    """What a search leaves: its env (its ``history``, ``spent``, ``exhausted``...), the replay tree
    (REINFORCE's own, else one made from the history), the summary written to the run folder (None
    without one), the agent's wall seconds and the evaluator (its trainings and train seconds)."""

    tracked: Any
    tree: Any
    summary: dict[str, Any] | None
    wall: float
    evaluator: Any

    @property
    def history(self) -> Any:
        return self.tracked.history
