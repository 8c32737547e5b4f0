"""Random search: episodes of uniformly random actions among those the env allows.

The baseline every NAS method must beat ("Random Search and Reproducibility for Neural
Architecture Search", Li & Talwalkar 2019). Each episode steps the env layer by layer, so every new
prefix is trained and rewarded exactly as for the RL agents; only the policy differs.

Episode length: with the default config HEAD is one more uniform choice among the allowed
actions (about 1 in 24), so most episodes run to ``max_layers`` (15 by default: the chance to
reach it is (23/24)^14, about 55%). ``head_probability`` or ``max_length`` make episodes shorter.

Section order (as in every agent file): config, sampling, run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from agents.budget import TrackedEnv
from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["RandomSearchConfig", "random_action", "random_architecture", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class RandomSearchConfig:
    head_probability: float | None = None
    """Probability of HEAD at each step where HEAD is allowed (t >= 1); the rest is spread uniformly
    over the allowed layers. None: HEAD is one more uniform choice (masked uniform, the default)."""
    max_length: int | None = None
    """Layers per episode at most: HEAD is forced at this length. None: the env's ``max_layers``."""
    batch_episodes: int = 8
    """Episodes drawn at once; their prefixes are trained at once where the env has a pool. The
    draws are the same whatever this is, so the search is too."""
    max_idle_episodes: int = 1000
    """Episodes in a row without a new training (every prefix already in the store) after which the
    search stops: the space, or the reachable part of it, is used up. A guard, not a budget."""

    def __post_init__(self) -> None:
        if self.head_probability is not None and not 0.0 <= self.head_probability <= 1.0:
            raise ValueError(f"head_probability must be in [0, 1] or None, got {self.head_probability}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be >= 1 or None, got {self.max_length}")
        if self.batch_episodes < 1:
            raise ValueError(f"batch_episodes must be >= 1, got {self.batch_episodes}")
        if self.max_idle_episodes < 1:
            raise ValueError(f"max_idle_episodes must be >= 1, got {self.max_idle_episodes}")


# -- sampling -----------------------------------------------------------------------------------


def random_action(
    mask: np.ndarray,
    head_action: int,
    length: int,
    rng: np.random.Generator,
    config: RandomSearchConfig,
) -> int:
    """One action drawn among the allowed ones (``mask``) after ``length`` layers."""
    allowed = np.flatnonzero(mask)
    if config.max_length is not None and length >= config.max_length and mask[head_action]:
        return head_action
    layers = allowed[allowed != head_action]
    if config.head_probability is not None and mask[head_action] and len(layers) > 0:
        if rng.random() < config.head_probability:
            return head_action
        return int(rng.choice(layers))
    return int(rng.choice(allowed))


def random_architecture(
    vocabulary: Vocabulary,
    image_size: int,
    rng: np.random.Generator,
    config: RandomSearchConfig | None = None,
) -> Architecture:
    """A whole architecture drawn the way an episode of random search draws it (no training)."""
    config = config or RandomSearchConfig()
    arch = Architecture()
    while True:
        mask = vocabulary.action_mask(arch, image_size)
        action = random_action(mask, vocabulary.head_action, len(arch), rng, config)
        if action == vocabulary.head_action:
            return arch
        arch = arch.append(vocabulary.layer_of(action))


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: RandomSearchConfig | None = None) -> None:
    """Search until ``env.exhausted``: step random episodes, every prefix trained by the env.

    The budget is checked before every step, so the search stops in the middle of an episode when
    the last training is spent, and never trains past the budget.
    """
    config = config or RandomSearchConfig()
    rng = np.random.default_rng(seed)
    base = env.unwrapped
    vocabulary: Vocabulary = base.vocabulary  # type: ignore[attr-defined]
    image_size: int = base.image_size  # type: ignore[attr-defined]
    env.reset(seed=seed)  # the children's training seed derives from this seed
    idle_episodes = 0
    first = True
    planned: deque[list[int]] = deque()
    while not env.exhausted and idle_episodes < config.max_idle_episodes:
        if not planned:
            planned.extend(
                plan_episode(vocabulary, image_size, rng, config) for _ in range(config.batch_episodes)
            )
            env.prefetch(arch for actions in planned for arch in _prefixes(vocabulary, actions))
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


def plan_episode(
    vocabulary: Vocabulary, image_size: int, rng: np.random.Generator, config: RandomSearchConfig
) -> list[int]:
    """One episode's actions, drawn as stepping the env would draw them (HEAD or ``max_layers`` ends it)."""
    arch, actions = Architecture(), []
    while True:
        mask = vocabulary.action_mask(arch, image_size)
        action = random_action(mask, vocabulary.head_action, len(arch), rng, config)
        actions.append(action)
        if action == vocabulary.head_action:
            return actions
        arch = arch.append(vocabulary.layer_of(action))
        if len(arch) >= vocabulary.max_layers:
            return actions


def _prefixes(vocabulary: Vocabulary, actions: list[int]) -> list[str]:
    layers = [vocabulary.layer_of(a) for a in actions if a != vocabulary.head_action]
    return [str(Architecture(tuple(layers[: t + 1]))) for t in range(len(layers))]
