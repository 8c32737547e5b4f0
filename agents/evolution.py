"""Regularized (aging) evolution: Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search" (AAAI), Algorithm 1.

A population of whole architectures, each scored once through ``env.evaluate`` (one training at
most; the store answers repeats for free). Each cycle samples ``sample_size`` members, takes the
best as parent, mutates one layer, scores the child, appends it and removes the *oldest* member
(not the worst: the aging that gives the method its name and its robustness to lucky scores).

Section order (as in every agent file): config, run. The mutation: :func:`agents.common.edits.mutate`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from agents.common.draws import EpisodeShape, random_architecture
from agents.common.edits import mutate
from agents.common.tracked_env import TrackedEnv
from nas_gym.search_space import Architecture

__all__ = ["EvolutionConfig", "mutate", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class EvolutionConfig:
    population_size: int = 20
    """P, architectures alive at once. The paper uses P=100 for 20,000 trainings; 20 suits budgets
    of a few hundred trainings (the poster trained 437), where P trainings only fill the population."""
    sample_size: int = 5
    """S, the tournament size. S/P = 0.25 as in the paper's P=100, S=25: larger S exploits more."""
    mutation_attempts: int = 100
    """Draws per child before giving up on a valid mutation (then a fresh random architecture).
    Some valid edit always exists; invalid draws come from pools that shrink the map below 1x1."""
    batch_size: int = 4
    """Children made from one state of the population before any of them is scored, then scored in
    order (trained at once where the env has a pool), as Real et al.'s workers do asynchronously.
    1 = one child at a time. The search does not depend on how many workers train the batch."""
    max_free_children: int = 20
    """Children in a row answered by the store (free, so they do not move the budget) after which the
    next child is a fresh random architecture instead of a mutation: keeps the search spending."""
    max_idle_children: int = 1000
    """Children in a row without a new training after which the search stops (the reachable space is
    used up). A guard against an endless loop, not a budget."""
    initial: EpisodeShape | None = None
    """How the initial population (and fallback children) are drawn; None: masked uniform actions,
    exactly like random search."""

    def __post_init__(self) -> None:
        if self.population_size < 1:
            raise ValueError(f"population_size must be >= 1, got {self.population_size}")
        if not 1 <= self.sample_size <= self.population_size:
            raise ValueError(f"sample_size must be in 1..population_size, got {self.sample_size}")
        for name in ("batch_size", "mutation_attempts", "max_free_children", "max_idle_children"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: EvolutionConfig | None = None) -> None:
    """Search until ``env.exhausted``: a random initial population, then aging evolution.

    Every architecture is scored through ``env.evaluate`` (never more than one training each), and
    the budget is checked before every evaluation, so the search never trains past it.
    """
    config = config or EvolutionConfig()
    rng = np.random.default_rng(seed)
    vocabulary, image_size = env.vocabulary, env.image_size
    initial = config.initial or EpisodeShape()
    env.reset(seed=seed)  # the children's training seed derives from this seed

    population: deque[tuple[Architecture, float]] = deque()  # oldest on the left
    free_in_a_row = 0  # consecutive children answered by the store

    def score(arch: Architecture) -> float:
        nonlocal free_in_a_row
        before = env.trainings
        accuracy = env.evaluate(arch)
        free_in_a_row = free_in_a_row + 1 if env.trainings == before else 0
        return accuracy

    # initial population: random architectures (an empty one is never drawn: HEAD is masked at t=0),
    # drawn first (no draw depends on a score) and trained at once where the env has a pool
    drawn = [random_architecture(vocabulary, image_size, rng, initial) for _ in range(config.population_size)]
    env.prefetch(drawn)
    for arch in drawn:
        if env.exhausted or free_in_a_row >= config.max_idle_children:
            return
        population.append((arch, score(arch)))

    # evolution: tournament of S, mutate the best, push the child, pop the oldest; a batch of
    # children comes from one state of the population
    while not env.exhausted and free_in_a_row < config.max_idle_children:
        children = []
        for _ in range(config.batch_size):
            child = None
            if free_in_a_row < config.max_free_children:
                sample = rng.choice(len(population), size=config.sample_size, replace=False)
                parent = max((population[int(i)] for i in sample), key=lambda member: member[1])[0]
                child = mutate(parent, vocabulary, image_size, rng, config.mutation_attempts)
            if child is None:
                child = random_architecture(vocabulary, image_size, rng, initial)
            children.append(child)
        env.prefetch(children)
        for child in children:
            if env.exhausted:
                break
            population.append((child, score(child)))
            population.popleft()
