"""The contract every agent runs under: a budget of child trainings and a history of steps.

An agent receives a :class:`TrackedEnv` (a Gymnasium wrapper over any NAS env) and searches until
``env.exhausted``. Every step (and every direct evaluation, for agents that score whole
architectures such as regularized evolution) is recorded as one :class:`HistoryRow`. The budget
counts *trainings*, i.e. store misses and retries: a step answered from the store is free, so
agents are compared at equal numbers of trained children. A budget in *seconds* may stand beside
it or alone (``budget_seconds``): each training costs the seconds its evaluator records for it (the
store's row for real training, the table's entry, the surrogate's prediction), as NAS-Bench-201
and NATS-Bench charge a query its recorded training time; no training starts once they are spent,
so only the last training crosses the line (with a pool, the batch in flight when it is crossed
finishes and counts). The history keeps both counts.

The count is exact whatever stops the process: every training is written to the result store's
ledger with the search's tag in the same transaction as its row, so children a pool trained but
no step reached yet, or a child trained just before a kill, are found there when the search
resumes, and count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.common.history import History, HistoryRow
from agents.common.ledger import SearchLedger
from nas_gym.envs import NASEnvBase
from nas_gym.evaluation import ArchEvaluator
from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["BudgetExhausted", "TrackedEnv"]


class BudgetExhausted(RuntimeError):
    """Raised by a step that would train a child after the budget is spent."""


class TrackedEnv(gym.Wrapper):
    """Counts trainings against ``budget`` and records every step in ``history``.

    Resuming: when ``history`` already holds rows (an interrupted run of the same search), the
    agent is simply run again from the start with the same seed. Agents are deterministic on the
    CPU and every child they trained is in the result store, so the first ``len(history)`` steps
    are answered from the store again without training, rebuilding the agent's state exactly (controller,
    replay tree, population); they are checked against the recorded rows, not recorded twice.

    ``tag`` names the search in the store's ledger of trainings (default: the history file's
    folder, or a fresh id). Children in the ledger under this tag that no recorded step reached
    (a pool's batch cut short, a kill between the store and the history) are *pending*: they count
    against the budget now, and a step that reaches one later records it as its training. The
    ``ledger`` (:class:`~agents.common.ledger.SearchLedger`) keeps which are pending.
    """

    def __init__(
        self,
        env: gym.Env,
        budget: int | None,
        history: History | None = None,
        pool: Any = None,
        tag: str | None = None,
        budget_seconds: float | None = None,
    ) -> None:
        super().__init__(env)
        if not isinstance(env.unwrapped, NASEnvBase):
            raise TypeError(
                f"TrackedEnv needs a NAS env (nas_gym.envs.NASEnvBase), got {type(env.unwrapped).__name__}"
            )
        self.base: NASEnvBase = env.unwrapped
        if budget is None and budget_seconds is None:
            raise ValueError("a search needs a budget: of trainings, of train seconds, or both")
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget <= 0
        ):
            raise ValueError(f"budget must be a positive number of trainings, got {budget!r}")
        if budget_seconds is not None and (
            isinstance(budget_seconds, bool)
            or not isinstance(budget_seconds, int | float | np.number)
            or not np.isfinite(budget_seconds)
            or budget_seconds <= 0
        ):
            raise ValueError(f"budget_seconds must be a positive number of seconds, got {budget_seconds!r}")
        self.budget = None if budget is None else int(budget)
        self.budget_seconds = None if budget_seconds is None else float(budget_seconds)
        self.history = history if history is not None else History()
        self._recorded = list(self.history.rows)  # rows a resumed search must reproduce
        self._cursor = 0  # of those, rows stepped through again so far
        self.episode = 0
        self.resume_mismatches = 0
        self.listeners: list[Callable[[HistoryRow], None]] = []  # called with each new row
        # a pool (nas_gym.parallel) trains prefetched architectures in parallel into the store; each
        # is pending until a step first reaches it, which records it as that step's training
        self.pool = pool
        if tag is None:
            path = self.history.path
            tag = str(Path(path).resolve().parent) if path is not None else uuid.uuid4().hex
        self.tag = tag
        self.base.set_ledger_tag(tag)  # the one place a search's id reaches its env
        self._reached = 0  # trainings recorded by steps so far (the history's training index)
        self._reached_seconds = 0.0  # their train seconds (the history's seconds)
        self._cut_short = False  # an evaluation did not fit in what was left (see _check_fits)
        # the trainings of this search by (architecture, store key of their fidelity): pending ones
        self.ledger = SearchLedger(self, self.history.rows)

    @property
    def evaluator(self) -> ArchEvaluator:
        return self.base.evaluator

    @property
    def epochs(self) -> float | None:
        """The fidelity of the env's current episode (None: its evaluator's own epochs), set by
        ``reset(options={"epochs": e})``: what the steps, prefetches and charges ask for."""
        return self.base.epochs

    @property
    def vocabulary(self) -> Vocabulary:
        return self.base.vocabulary

    @property
    def image_size(self) -> int:
        return self.base.image_size

    @property
    def reward_mode(self) -> str:
        """The env's reward mode: which architectures a step evaluates (planners ask it)."""
        return self.base.reward_mode

    @property
    def resuming(self) -> bool:
        return self._cursor < len(self._recorded)

    @property
    def trainings(self) -> int:
        """Trainings recorded by the steps so far (children trained but not reached yet excluded)."""
        return self._reached

    @property
    def spent(self) -> int:
        """Trainings this search has used: those recorded, plus those a step has yet to reach."""
        return self._reached + (0 if self.resuming else sum(self.ledger.pending.values()))

    @property
    def seconds(self) -> float:
        """Train seconds of the trainings recorded by the steps so far."""
        return self._reached_seconds

    @property
    def spent_seconds(self) -> float:
        """Train seconds this search has used: those recorded, plus those of pending children."""
        if self.resuming or not self.ledger.pending:
            return self._reached_seconds
        return self._reached_seconds + self.ledger.pending_seconds()

    @property
    def progress(self) -> float:
        """The fraction of the budget spent, in [0, 1]: of the trainings or of the seconds, whichever
        is further (what agents that schedule on their budget read)."""
        done = 0.0
        if self.budget is not None:
            done = self._reached / self.budget
        if self.budget_seconds is not None:
            done = max(done, self._reached_seconds / self.budget_seconds)
        return min(1.0, done)

    def would_overspend(self, extra: int) -> bool:
        """Whether one more training, after ``extra`` already asked for, is past the budget."""
        if self.budget is not None and self.spent + extra >= self.budget:
            return True
        return self.budget_seconds is not None and self.spent_seconds >= self.budget_seconds

    def trainings_left(self) -> int | None:
        """Trainings the budget still allows (None: no budget of trainings, only of seconds)."""
        return None if self.budget is None else max(0, self.budget - self.spent)

    def prefetch(self, archs: Iterable[Architecture | str], epochs: float | None = None) -> None:
        """Train, all at once on the pool, those of ``archs`` (in the order the agent will step them)
        that the coming steps would train, as far as the budget goes. No pool: nothing to do.
        ``epochs``: the fidelity the coming episodes will ask for (None: the current episode's).

        The steps that follow find them in the store; the history, training indices included, is
        the one the same steps would have written without a pool.
        """
        if self.pool is None or self.resuming:
            return
        epochs = self.epochs if epochs is None else float(epochs)
        seed, todo = self.train_seed, list[str]()
        if self.would_overspend(0):  # (spent in trainings only, the loop below would train none)
            return
        for arch in dict.fromkeys(str(a) for a in archs):
            if not arch or self.ledger.waiting(arch, epochs):
                continue
            # with inheritance, the prefixes it trains first count too (and train first)
            plan = [
                a
                for a in self.evaluator.training_plan(arch, seed, epochs)
                if a not in todo and not self.ledger.waiting(a, epochs)
            ]
            if self.budget is not None and self.spent + len(todo) + len(plan) > self.budget:
                break
            todo += plan
            if plan and plan[-1] == arch:  # the step that reaches arch records its prefixes' trainings too
                self.ledger.expect_prefixes(arch, plan[:-1], epochs)
        if todo:
            # claims left by workers stopped mid-training (a resumed search)
            self.evaluator.release(todo, seed, epochs)
            try:
                self.pool.train(todo, seed, self.tag, epochs=epochs)
            finally:
                self.ledger.sync()

    def record_remote(self, arch: str, accuracy: float, new: bool, episode_end: bool) -> HistoryRow | None:
        """Record a step taken by a copy of the env in another process (SB3's ``SubprocVecEnv``):
        ``new`` when that step trained a child, which counts against the budget here."""
        if new:
            self.ledger.sync()
        count = self.ledger.take(arch) if new else 0
        before = len(self.history)
        self._record(arch, accuracy, count)
        if episode_end:
            self.episode += 1
        return self.history.rows[-1] if len(self.history) > before else None

    @property
    def exhausted(self) -> bool:
        """No training may start, and no child trained for this search is waiting for a step."""
        reached = (
            self._cut_short
            or (self.budget is not None and self._reached >= self.budget)
            or (self.budget_seconds is not None and self._reached_seconds >= self.budget_seconds)
        )
        return reached or (self.would_overspend(0) and not self.ledger.pending)

    def action_masks(self) -> np.ndarray:
        return self.base.action_masks()

    def step(self, action: Any):
        before = self.evaluator.trainings
        # which architecture the step evaluates matters only near the budget's end (an inheriting
        # evaluator may train up to max_layers prefixes first: the last of them would overspend) or
        # with pending children
        near_end = self.would_overspend(self.vocabulary.max_layers - 1)
        evaluated = self._evaluated_arch(action) if self.ledger.pending or near_end else None
        self._check_fits(evaluated)
        obs, reward, terminated, truncated, info = self.env.step(action)
        count = self.evaluator.trainings - before
        prefixes = (0, 0.0)
        if evaluated is not None:
            prefixes = self.ledger.take_prefixes(str(evaluated))
            count += self.ledger.take(str(evaluated)) + prefixes[0]
        self._record(info["arch"], info["accuracy"], count, *prefixes)
        if terminated or truncated:
            self.episode += 1
        info = {**info, "new_training": count > 0, "trainings": self.trainings}
        return obs, reward, terminated, truncated, info

    def evaluate(self, arch: Architecture | str) -> float:
        """Score a whole architecture directly, recorded as one episode: one training at most, or,
        with an inheriting evaluator, its missing prefixes first (all counted)."""
        self._check_fits(arch)
        before = self.evaluator.trainings
        result = self.evaluator.evaluate(arch, self.train_seed, epochs=self.epochs)
        prefixes = self.ledger.take_prefixes(result.arch)
        count = self.evaluator.trainings - before + self.ledger.take(result.arch) + prefixes[0]
        self._record(result.arch, result.accuracy, count, *prefixes)
        self.episode += 1
        return result.accuracy

    @property
    def train_seed(self) -> int:
        seed = self.base.train_seed
        if seed is None:
            raise RuntimeError("call reset(seed=...) before evaluating")
        return int(seed)

    def _evaluated_arch(self, action: Any) -> Architecture | None:
        """The architecture a step with ``action`` evaluates (None: the step evaluates nothing)."""
        env = self.base
        try:
            index = int(np.asarray(action).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            return None  # not an action: the env's step says so
        if not 0 <= index < env.vocabulary.num_actions:
            return None
        return env.vocabulary.step(
            env.arch, index, env.image_size, env.reward_mode, env.action_masks()
        ).evaluated

    def _check_fits(self, arch: Architecture | str | None) -> None:
        """Raise :class:`BudgetExhausted` when evaluating ``arch`` now would start a training past
        the budget: none once it is spent; with inheritance, not its prefixes' and its own when
        they do not all fit (the search ends there, ``exhausted``, rather than overspend)."""
        if arch is None or self.ledger.waiting(arch):
            return
        plan = [
            a
            for a in self.evaluator.training_plan(arch, self.train_seed, self.epochs)
            if not self.ledger.waiting(a)
        ]
        if plan and self.would_overspend(len(plan) - 1):  # its last training is past the budget
            self._cut_short = True
            left = "" if self.budget is None else f" ({max(0, self.budget - self.spent)} left)"
            budget = " or ".join(
                ([] if self.budget is None else [f"{self.budget} trainings"])
                + ([] if self.budget_seconds is None else [f"{self.budget_seconds:g} train seconds"])
            )
            raise BudgetExhausted(f"the budget of {budget} is spent: {arch} would train {len(plan)}{left}")

    def _record(
        self, arch: str, accuracy: float, count: int, prefix_count: int = 0, prefix_seconds: float = 0.0
    ) -> None:
        """Record a step that took ``count`` trainings (0: answered from the store), of which
        ``prefix_count`` of its prefixes (``prefix_seconds``) trained first for their weights."""
        if self.resuming:
            expected = self._recorded[self._cursor]
            self._cursor += 1
            if expected.arch == arch and expected.episode == self.episode and count == 0:
                self._reached = expected.training
                self._reached_seconds = expected.seconds
                return
            # the resumed search left the recorded path (an agent that is not deterministic here):
            # keep what is recorded and go on from here as a new run
            self.resume_mismatches += 1
            self._reached = self.history.trainings
            self._reached_seconds = self.history.rows[-1].seconds if self.history.rows else 0.0
            self._cursor = len(self._recorded)
        self._reached += count
        if count:
            self.ledger.reach(arch, count)
            own = (count - prefix_count) * float(
                self.evaluator.recorded_seconds(arch, self.train_seed, self.epochs)
            )
            self._reached_seconds += own + prefix_seconds
        row = HistoryRow(
            len(self.history) + 1,
            arch,
            float(accuracy),
            self._reached,
            count > 0,
            self.episode,
            self._reached_seconds,
            self.epochs,
        )
        self.history.append(row)
        for listener in self.listeners:
            listener(row)
