"""Agents by name: ``run_agent("evolution", env, seed)``.

Every entry has the agent contract ``(env: TrackedEnv, seed: int, checkpoint, workers, overrides)
-> ReplayTree | None`` with the agent's config (its defaults, changed by ``overrides``): ``checkpoint`` is a folder where an agent that keeps state worth
looking at (REINFORCE: controller and replay tree) writes it; the others ignore it and return None. Agent modules are imported inside the entries, so ``import agents.registry`` imports
neither torch nor Stable-Baselines3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.budget import TrackedEnv

if TYPE_CHECKING:
    from agents.replay_tree import ReplayTree

__all__ = ["AGENTS", "SB3_AGENTS", "check_config", "run_agent"]

Overrides = dict[str, Any]


def _random(env: TrackedEnv, seed: int, checkpoint: Path | None, workers: int, overrides: Overrides) -> None:
    from agents.random_search import RandomSearchConfig, run

    run(env, seed, _config(RandomSearchConfig, overrides))


def _evolution(
    env: TrackedEnv, seed: int, checkpoint: Path | None, workers: int, overrides: Overrides
) -> None:
    from agents.evolution import EvolutionConfig, run

    run(env, seed, _config(EvolutionConfig, overrides))


def _sb3(name: str) -> Callable[..., None]:
    def entry(
        env: TrackedEnv, seed: int, checkpoint: Path | None, workers: int, overrides: Overrides
    ) -> None:
        from agents import sb3_agents

        config_class, run = {
            "ppo": (sb3_agents.PPOConfig, sb3_agents.run_ppo),
            "a2c": (sb3_agents.A2CConfig, sb3_agents.run_a2c),
            "dqn": (sb3_agents.DQNConfig, sb3_agents.run_dqn),
            "maskable_ppo": (sb3_agents.MaskablePPOConfig, sb3_agents.run_maskable_ppo),
        }[name]
        run(env, seed, _config(config_class, {"n_envs": workers, **overrides}))  # type: ignore[operator]

    return entry


def _reinforce(
    env: TrackedEnv, seed: int, checkpoint: Path | None, workers: int, overrides: Overrides
) -> ReplayTree:
    from agents.reinforce import ReinforceConfig, run

    return run(env, seed, _config(ReinforceConfig, overrides), checkpoint=checkpoint)


_CONFIG_CLASSES = {
    "reinforce": ("agents.reinforce", "ReinforceConfig"),
    "random": ("agents.random_search", "RandomSearchConfig"),
    "evolution": ("agents.evolution", "EvolutionConfig"),
    "ppo": ("agents.sb3_agents", "PPOConfig"),
    "a2c": ("agents.sb3_agents", "A2CConfig"),
    "dqn": ("agents.sb3_agents", "DQNConfig"),
    "maskable_ppo": ("agents.sb3_agents", "MaskablePPOConfig"),
}


def check_config(name: str, overrides: Overrides) -> None:
    """Raise ``ValueError`` naming the problem if ``name`` or one of ``overrides`` is unknown or bad."""
    import importlib

    if name not in _CONFIG_CLASSES:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}")
    module, cls = _CONFIG_CLASSES[name]
    try:
        _config(getattr(importlib.import_module(module), cls), overrides)
    except TypeError as e:
        raise ValueError(f"{name}: {e}") from None


def _config(config_class: type, overrides: Overrides) -> Any:
    """The agent's config with ``overrides`` (field name -> value); an unknown name is an error."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"{config_class.__name__} has no setting {', '.join(unknown)}; it has: {', '.join(sorted(fields))}"
        )
    return config_class(**overrides)


AGENTS: dict[str, Callable[..., ReplayTree | None]] = {
    "reinforce": _reinforce,
    "random": _random,
    "evolution": _evolution,
    "ppo": _sb3("ppo"),
    "a2c": _sb3("a2c"),
    "dqn": _sb3("dqn"),
    "maskable_ppo": _sb3("maskable_ppo"),
}


SB3_AGENTS = ("ppo", "a2c", "dqn", "maskable_ppo")


def run_agent(
    name: str,
    env: TrackedEnv,
    seed: int,
    checkpoint: Path | None = None,
    workers: int = 1,
    config: Overrides | None = None,
) -> ReplayTree | None:
    """Run the agent registered as ``name`` on ``env`` until its budget is spent.

    ``workers`` > 1: the SB3 agents step that many copies of the env in a ``SubprocVecEnv``; the
    others plan batches that ``env.pool`` (if any) trains at once, and ignore ``workers``.
    ``config``: settings of the agent's config class that differ from its defaults, e.g.
    ``{"replay_p": 0.0}`` for REINFORCE without replay (an ablation).
    """
    try:
        agent = AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}") from None
    return agent(env, seed, checkpoint, workers, dict(config or {}))
