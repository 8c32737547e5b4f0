"""Agents by name: ``run_agent("evolution", env, seed)``; one :class:`Agent` entry each.

Every agent runs as ``run(env: TrackedEnv, seed: int, config)`` until ``env.exhausted``, with its
config dataclass (defaults, changed by ``config`` overrides). REINFORCE also takes ``checkpoint``, a
folder where it writes its controller and replay tree. The SB3 agents step ``workers`` copies of the
env (their ``n_envs``); the others plan batches that ``env.pool`` trains at once. Modules are
imported when an agent runs, so ``import agents.registry`` imports neither torch nor SB3.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.common.tracked_env import BudgetExhausted, TrackedEnv

if TYPE_CHECKING:
    from agents.common.replay_tree import ReplayTree

__all__ = ["AGENTS", "SB3_AGENTS", "Agent", "check_config", "run_agent"]

Overrides = dict[str, Any]


@dataclass(frozen=True)
class Agent:
    module: str  # the algorithm's module
    config: str  # its config dataclass, in that module
    run: str  # its run function, in that module: run(env, seed, config)
    sb3: bool = False  # a Stable-Baselines3 agent: ``workers`` copies of the env (config.n_envs)
    checkpoint: bool = False  # run(..., checkpoint=folder) writes the agent's state there
    summary: str = ""  # one line for the CLI's help
    needs: tuple[str, str] | None = None  # (module, the extra that installs it), where not in every install
    fidelity: bool = False  # searches over the epochs: needs an env that answers at several (a real one)

    def missing(self) -> str | None:
        """The one-line refusal when what this agent needs is not installed, else None."""
        if self.needs is None or importlib.util.find_spec(self.needs[0]) is not None:
            return None
        module, extra = self.needs
        return f'this agent needs {module}, which is not installed: pip install "nas-gym[{extra}]"'

    def config_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.config)

    def make_config(self, overrides: Overrides) -> Any:
        """The agent's config with ``overrides`` (field name -> value); an unknown name is an error."""
        cls = self.config_class()
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"{cls.__name__} has no setting {', '.join(unknown)}; it has: {', '.join(sorted(fields))}"
            )
        return cls(**overrides)


AGENTS: dict[str, Agent] = {
    "reinforce": Agent("agents.reinforce", "ReinforceConfig", "run", checkpoint=True,
                       summary="the poster's REINFORCE controller with its experience replay tree"),
    "reinforce_uct": Agent("agents.reinforce_uct", "ReinforceUCTConfig", "run",
                           summary="REINFORCE proposing from its tree with PUCT"),
    "reinforce_tree": Agent("agents.reinforce_tree", "ReinforceTreeConfig", "run",
                            summary="REINFORCE whose replay tree picks what is trained: a value model "
                                    "over the tree, edits of its best leaves, the best retrained at 9 epochs"),
    "random": Agent("agents.random_search", "RandomSearchConfig", "run", summary="masked uniform random search"),
    "evolution": Agent("agents.evolution", "EvolutionConfig", "run",
                       summary="regularized evolution (Real et al. 2019)"),
    "local_search": Agent("agents.local_search", "LocalSearchConfig", "run",
                          summary="local search over one-edit neighbours (White et al. 2021)"),
    "bananas": Agent("agents.bananas", "BananasConfig", "run",
                     summary="BANANAS-style predictor-guided search (White et al. 2021)"),
    "tpe": Agent("agents.tpe", "TPEConfig", "run", summary="Optuna's TPE", needs=("optuna", "tpe")),
    "successive_halving": Agent("agents.hyperband", "SuccessiveHalvingConfig", "run", needs=("optuna", "tpe"), fidelity=True,
                                summary="successive halving over the epochs (random sampling; Optuna's pruner)"),
    "hyperband": Agent("agents.hyperband", "HyperbandConfig", "run", needs=("optuna", "tpe"), fidelity=True,
                       summary="Hyperband over the epochs (random sampling; Optuna's pruner)"),
    "bohb": Agent("agents.hyperband", "BOHBConfig", "run", needs=("optuna", "tpe"), fidelity=True,
                  summary="BOHB-style: TPE with Hyperband over the epochs"),
    "ppo": Agent("agents.sb3_agents", "PPOConfig", "run_ppo", sb3=True, summary="Stable-Baselines3 PPO"),
    "a2c": Agent("agents.sb3_agents", "A2CConfig", "run_a2c", sb3=True, summary="Stable-Baselines3 A2C"),
    "dqn": Agent("agents.sb3_agents", "DQNConfig", "run_dqn", sb3=True, summary="Stable-Baselines3 DQN"),
    "maskable_ppo": Agent("agents.sb3_agents", "MaskablePPOConfig", "run_maskable_ppo", sb3=True,
                          summary="sb3-contrib's MaskablePPO (reads the action masks)"),
}  # fmt: skip

SB3_AGENTS = tuple(name for name, agent in AGENTS.items() if agent.sb3)


def _agent(name: str) -> Agent:
    try:
        return AGENTS[name]
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(sorted(AGENTS))}") from None


def check_config(name: str, overrides: Overrides) -> None:
    """Raise ``ValueError`` naming the problem if ``name`` or one of ``overrides`` is unknown or bad."""
    agent = _agent(name)
    try:
        agent.make_config(overrides)
    except TypeError as e:
        raise ValueError(f"{name}: {e}") from None


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
    ``{"replay_p": 0.0}`` for REINFORCE without replay (an ablation). Returns REINFORCE's replay
    tree; None for the others.
    """
    agent = _agent(name)
    overrides = dict(config or {})
    if agent.sb3:
        overrides = {"n_envs": workers, **overrides}
    run = getattr(importlib.import_module(agent.module), agent.run)
    extra = {"checkpoint": checkpoint} if agent.checkpoint else {}
    try:
        result = run(env, seed, agent.make_config(overrides), **extra)
    except BudgetExhausted:  # an evaluation that did not fit in what was left ended the search
        if not env.exhausted:
            raise
        return None
    return result if agent.checkpoint else None
