"""Local search: White, Nolen, Savani, "Exploring the Loss Landscape in Neural Architecture
Search" (UAI 2021; arXiv 2005.02960, first titled "Local search is state of the art for NAS
benchmarks"), Algorithm 1.

Start from the best of ``initial_samples`` random architectures; evaluate its one-edit neighbours
(:func:`agents.common.edits.neighbours`: replace, insert or remove one layer) in random order and
move to a better one; an architecture none of whose neighbours is better is a local optimum, and
the search restarts from fresh random architectures. On NAS-Bench-101 and -201 this plain
hill-climber matched or beat every published searcher at small budgets (White et al., Table 1;
BANANAS, AAAI 2021, Fig. 5: local search 5.93 vs BANANAS 5.92 vs evolution 6.11 test error after
150 queries on NAS-Bench-101).

Every architecture is scored through ``env.evaluate`` (one training at most; the store answers
repeats for free). Section order (as in every agent file): config, run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.common.draws import EpisodeShape, random_architecture
from agents.common.edits import neighbours
from agents.common.tracked_env import TrackedEnv
from nas_gym.search_space import Architecture

__all__ = ["LocalSearchConfig", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class LocalSearchConfig:
    initial_samples: int = 10
    """Random architectures drawn at the start and at every restart; the walk starts from their
    best. NASLib's local search (White et al.'s implementation) draws 10."""
    first_improvement: bool = True
    """Move as soon as a neighbour beats the current architecture (White et al.'s "query until
    improvement" variant, their best at small budgets); False: evaluate the whole neighbourhood and
    move to its best (Algorithm 1 as written). Here a 9-layer architecture has about 450 neighbours,
    so the whole neighbourhood costs a poster-sized budget."""
    neighbourhood_sample: int | None = None
    """Neighbours of each architecture considered at most (a random subset, in random order);
    None: all of them. Fewer make a local optimum cheaper to declare, and less certain."""
    batch_size: int = 1
    """Neighbours scored together before the move decision (trained at once where the env has a
    pool); the move goes to the best of the batch if it improves. 1 is the method as published; the
    search does not depend on how many workers train a batch."""
    max_idle: int = 1000
    """Evaluations in a row answered by the store (no new training) after which the search stops:
    the reachable space is used up. A guard, not a budget."""
    initial: EpisodeShape | None = None
    """How the random architectures are drawn; None: masked uniform actions, like random search and
    evolution's initial population."""

    def __post_init__(self) -> None:
        for name in ("initial_samples", "batch_size", "max_idle"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.neighbourhood_sample is not None and self.neighbourhood_sample < 1:
            raise ValueError(f"neighbourhood_sample must be >= 1 or None, got {self.neighbourhood_sample}")


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: LocalSearchConfig | None = None) -> None:
    """Search until ``env.exhausted`` (or ``max_idle`` free evaluations in a row): hill-climb over
    one-edit neighbourhoods, restarting at every local optimum."""
    config = config or LocalSearchConfig()
    rng = np.random.default_rng(seed)
    vocabulary, image_size = env.vocabulary, env.image_size
    shape = config.initial or EpisodeShape()
    env.reset(seed=seed)  # the children's training seed derives from this seed
    idle = 0

    def score(archs: list[Architecture]) -> list[float] | None:
        """The accuracies of ``archs`` (None once the budget or the idle guard stops the search)."""
        nonlocal idle
        env.prefetch(archs)
        out = []
        for arch in archs:
            if env.exhausted or idle >= config.max_idle:
                return None
            before = env.trainings
            out.append(env.evaluate(arch))
            idle = idle + 1 if env.trainings == before else 0
        return out

    while True:
        # a (re)start: the best of fresh random architectures
        drawn = [
            random_architecture(vocabulary, image_size, rng, shape) for _ in range(config.initial_samples)
        ]
        scores = score(drawn)
        if scores is None:
            return
        best = int(np.argmax(scores))
        current, current_score = drawn[best], scores[best]
        while True:  # climb until a local optimum
            around = neighbours(current, vocabulary, image_size)
            order = rng.permutation(len(around))
            if config.neighbourhood_sample is not None:
                order = order[: config.neighbourhood_sample]
            moved = False
            best_seen: tuple[float, Architecture] | None = None
            for start in range(0, len(order), config.batch_size):
                batch = [around[int(i)] for i in order[start : start + config.batch_size]]
                scores = score(batch)
                if scores is None:
                    return
                i = int(np.argmax(scores))
                if best_seen is None or scores[i] > best_seen[0]:
                    best_seen = (scores[i], batch[i])
                if config.first_improvement and best_seen[0] > current_score:
                    break
            if best_seen is not None and best_seen[0] > current_score:
                current_score, current = best_seen
                moved = True
            if not moved:
                break  # a local optimum: restart
