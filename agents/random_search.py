"""Random search: episodes of uniformly random actions among those the env allows.

The baseline every NAS method must beat ("Random Search and Reproducibility for Neural
Architecture Search", Li & Talwalkar 2019). Each episode steps the env layer by layer, so every new
prefix is trained and rewarded exactly as for the RL agents; only the policy differs.

Episode length: with the default config HEAD is one more uniform choice among the allowed
actions (about 1 in 24), so most episodes run to ``max_layers`` (15 by default: the chance to
reach it is (23/24)^14, about 55%). ``head_probability`` or ``max_length`` make episodes shorter.

Section order (as in every agent file): config, run. The draws: :mod:`agents.common.draws`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from agents.common.draws import EpisodeShape, plan_episode, prefixes_of
from agents.common.tracked_env import TrackedEnv

__all__ = ["RandomSearchConfig", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class RandomSearchConfig(EpisodeShape):
    """Random search's settings; ``head_probability`` and ``max_length`` (from
    :class:`~agents.common.draws.EpisodeShape`) shape its episodes."""

    batch_episodes: int = 8
    """Episodes drawn at once; their prefixes are trained at once where the env has a pool. The
    draws are the same whatever this is, so the search is too."""
    max_idle_episodes: int = 1000
    """Episodes in a row without a new training (every prefix already in the store) after which the
    search stops: the space, or the reachable part of it, is used up. A guard, not a budget."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_episodes < 1:
            raise ValueError(f"batch_episodes must be >= 1, got {self.batch_episodes}")
        if self.max_idle_episodes < 1:
            raise ValueError(f"max_idle_episodes must be >= 1, got {self.max_idle_episodes}")


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: RandomSearchConfig | None = None) -> None:
    """Search until ``env.exhausted``: step random episodes, every prefix trained by the env.

    The budget is checked before every step, so the search stops in the middle of an episode when
    the last training is spent, and never trains past the budget.
    """
    config = config or RandomSearchConfig()
    rng = np.random.default_rng(seed)
    vocabulary, image_size = env.vocabulary, env.image_size
    env.reset(seed=seed)  # the children's training seed derives from this seed
    idle_episodes = 0
    first = True
    planned: deque[list[int]] = deque()
    while not env.exhausted and idle_episodes < config.max_idle_episodes:
        if not planned:
            planned.extend(
                plan_episode(vocabulary, image_size, rng, config) for _ in range(config.batch_episodes)
            )
            env.prefetch(
                a
                for actions in planned
                for a in prefixes_of(vocabulary, image_size, actions, env.reward_mode)
            )
        actions = planned.popleft()
        if not first:
            env.reset()
        first = False
        trainings_before = env.trainings
        for action in actions:
            if env.exhausted:
                break
            env.step(action)
        idle_episodes = idle_episodes + 1 if env.trainings == trainings_before else 0
