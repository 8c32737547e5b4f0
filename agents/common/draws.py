"""Episodes and whole architectures drawn uniformly among the actions the env allows.

Random search steps such episodes; evolution draws its initial population (and fallback
children) the same way. Every draw follows :meth:`nas_gym.search_space.Vocabulary.step`, the
episode rules the env itself applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["EpisodeShape", "plan_episode", "prefixes_of", "random_action", "random_architecture"]


@dataclass
class EpisodeShape:
    head_probability: float | None = None
    """Probability of HEAD at each step where HEAD is allowed (t >= 1); the rest is spread uniformly
    over the allowed layers. None: HEAD is one more uniform choice (masked uniform, the default)."""
    max_length: int | None = None
    """Layers per episode at most: HEAD is forced at this length. None: the env's ``max_layers``."""

    def __post_init__(self) -> None:
        if self.head_probability is not None and not 0.0 <= self.head_probability <= 1.0:
            raise ValueError(f"head_probability must be in [0, 1] or None, got {self.head_probability}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be >= 1 or None, got {self.max_length}")


def random_action(
    mask: np.ndarray,
    head_action: int,
    length: int,
    rng: np.random.Generator,
    shape: EpisodeShape,
) -> int:
    """One action drawn among the allowed ones (``mask``) after ``length`` layers."""
    allowed = np.flatnonzero(mask)
    if shape.max_length is not None and length >= shape.max_length and mask[head_action]:
        return head_action
    layers = allowed[allowed != head_action]
    if shape.head_probability is not None and mask[head_action] and len(layers) > 0:
        if rng.random() < shape.head_probability:
            return head_action
        return int(rng.choice(layers))
    return int(rng.choice(allowed))


def plan_episode(
    vocabulary: Vocabulary, image_size: int, rng: np.random.Generator, shape: EpisodeShape
) -> list[int]:
    """One episode's actions, drawn as stepping the env would draw them (until the episode ends)."""
    arch, actions = Architecture(), []
    while True:
        mask = vocabulary.action_mask(arch, image_size)
        action = random_action(mask, vocabulary.head_action, len(arch), rng, shape)
        actions.append(action)
        step = vocabulary.step(arch, action, image_size, mask=mask)
        if step.terminated:
            return actions
        arch = step.arch


def random_architecture(
    vocabulary: Vocabulary,
    image_size: int,
    rng: np.random.Generator,
    shape: EpisodeShape | None = None,
) -> Architecture:
    """A whole architecture, drawn action by action until HEAD (at ``max_layers`` HEAD is the
    only allowed action, and is drawn too), without stepping an env."""
    shape = shape or EpisodeShape()
    arch = Architecture()
    while True:
        mask = vocabulary.action_mask(arch, image_size)
        action = random_action(mask, vocabulary.head_action, len(arch), rng, shape)
        if action == vocabulary.head_action:
            return arch
        arch = vocabulary.step(arch, action, image_size, mask=mask).arch


def prefixes_of(
    vocabulary: Vocabulary, image_size: int, actions: list[int], reward: str = "prefix"
) -> list[Architecture]:
    """The architectures an episode of ``actions`` evaluates under the env's ``reward`` mode, in
    order: every prefix (``"prefix"``, ``"improvement"``), or only the closed one (``"final"``)."""
    arch, out = Architecture(), []
    for action in actions:
        step = vocabulary.step(arch, action, image_size, reward)
        if step.evaluated is not None:
            out.append(step.evaluated)
        if step.terminated:
            break
        arch = step.arch
    return out
