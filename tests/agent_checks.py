"""Checks shared by the agent tests: the budget contract and a log of invalid actions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from agents.common.tracked_env import TrackedEnv
from nas_gym.search_space import Architecture, Vocabulary


class InvalidActionLog(gym.Wrapper):
    """Remembers ``info["invalid_action"]`` of every step (sits below the TrackedEnv)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.invalid: list[bool] = []

    def step(self, action: Any):
        out = super().step(action)
        self.invalid.append(bool(out[4]["invalid_action"]))
        return out


def assert_budget_kept(env: TrackedEnv) -> None:
    """The search spent exactly its budget, never more, and every recorded architecture is valid."""
    rows = env.history.rows
    assert rows, "the agent recorded nothing"
    assert rows[-1].training == env.budget == env.trainings
    assert all(row.training <= env.budget for row in rows)
    assert sum(row.new_training for row in rows) == env.budget
    vocabulary: Vocabulary = env.unwrapped.vocabulary
    for row in rows:
        vocabulary.validate(Architecture.parse(row.arch), env.unwrapped.image_size)


def trace(env: TrackedEnv) -> list[tuple[str, float, bool]]:
    return [(row.arch, row.accuracy, row.new_training) for row in env.history]
