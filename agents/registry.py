"""Agents by name: ``run_agent("evolution", env, seed)``.

Every entry has the agent contract ``(env: TrackedEnv, seed: int, checkpoint, workers) -> ReplayTree | None``
with the agent's default config: ``checkpoint`` is a folder where an agent that keeps state worth
looking at (REINFORCE: controller and replay tree) writes it; the others ignore it and return None. Agent modules are imported inside the entries, so ``import agents.registry`` imports
neither torch nor Stable-Baselines3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agents.budget import TrackedEnv

if TYPE_CHECKING:
    from agents.replay_tree import ReplayTree

__all__ = ["AGENTS", "SB3_AGENTS", "run_agent"]


def _random(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> None:
    from agents.random_search import run

    run(env, seed)


def _evolution(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> None:
    from agents.evolution import run

    run(env, seed)


def _ppo(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> None:
    from agents.sb3_agents import PPOConfig, run_ppo

    run_ppo(env, seed, PPOConfig(n_envs=workers))


def _a2c(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> None:
    from agents.sb3_agents import A2CConfig, run_a2c

    run_a2c(env, seed, A2CConfig(n_envs=workers))


def _dqn(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> None:
    from agents.sb3_agents import DQNConfig, run_dqn

    run_dqn(env, seed, DQNConfig(n_envs=workers))


def _maskable_ppo(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> None:
    from agents.sb3_agents import MaskablePPOConfig, run_maskable_ppo

    run_maskable_ppo(env, seed, MaskablePPOConfig(n_envs=workers))


def _reinforce(env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1) -> ReplayTree:
    from agents.reinforce import run

    return run(env, seed, checkpoint=checkpoint)


AGENTS: dict[str, Callable[..., ReplayTree | None]] = {
    "reinforce": _reinforce,
    "random": _random,
    "evolution": _evolution,
    "ppo": _ppo,
    "a2c": _a2c,
    "dqn": _dqn,
    "maskable_ppo": _maskable_ppo,
}


SB3_AGENTS = ("ppo", "a2c", "dqn", "maskable_ppo")


def run_agent(
    name: str, env: TrackedEnv, seed: int, checkpoint: Path | None = None, workers: int = 1
) -> ReplayTree | None:
    """Run the agent registered as ``name`` on ``env`` until its budget is spent.

    ``workers`` > 1: the SB3 agents step that many copies of the env in a ``SubprocVecEnv``; the
    others plan batches that ``env.pool`` (if any) trains at once, and ignore ``workers``.
    """
    try:
        agent = AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}") from None
    return agent(env, seed, checkpoint, workers)
