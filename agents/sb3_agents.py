"""Stable-Baselines3 baselines on the NAS env: PPO, A2C, DQN and (sb3-contrib) MaskablePPO.

SB3's defaults are sized for millions of cheap steps (PPO collects 2048 steps per update). Here a
step trains a child, and a search has a few hundred trainings, so every algorithm is re-sized: a
rollout is a few episodes (an episode is at most 15 steps), batches are small, and DQN's
exploration and target updates are counted in tens to hundreds of trainings.

How a run stops: the *budget of trainings* is the stop, not ``total_timesteps``. Steps answered by
the result store are free, so the number of steps a budget buys is unknown in advance.
``total_timesteps`` is only a cap (``max_steps_per_training`` x the trainings left) against a
policy that keeps replaying stored architectures (:mod:`agents.common.sb3` has the plumbing: the
budget as the stop, several env copies counted as one search).

PPO, A2C and DQN do not see the masks: a masked action ends the episode with reward 0 (the env's
contract), which they learn to avoid. MaskablePPO reads ``action_masks()`` through the wrappers.

Determinism: SB3 seeds the global torch RNG and samples actions from it. The env never draws from
that RNG (children are built and trained under ``torch.random.fork_rng``), so the same seed gives
the same search whether the store was empty or not, which is what resuming relies on.

Stable-Baselines3 is imported inside the run functions, so importing this module stays light.

Section order (as in every agent file): configs, the DQN schedule, one run function per algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, cast

from agents.common.sb3 import learn_to_budget, vec_env
from agents.common.tracked_env import TrackedEnv

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = [
    "A2CConfig",
    "DQNConfig",
    "MaskablePPOConfig",
    "PPOConfig",
    "SB3Config",
    "run_a2c",
    "run_dqn",
    "run_maskable_ppo",
    "run_ppo",
]


# -- configs ------------------------------------------------------------------------------------


@dataclass
class SB3Config:
    learning_rate: float = 1e-3
    """Optimizer step size; each algorithm's config sets its own."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layers of the policy / value / Q MLP over the one-hot observation (15 x 25 inputs)."""
    max_steps_per_training: int = 50
    """total_timesteps = this x trainings left: a cap on free (stored) steps, not the stop."""
    gamma: float = 0.99
    """Discount per step (per layer); episodes are at most 15 steps, so 0.99 barely discounts."""
    n_envs: int = 1
    """Copies of the env stepped at once. 1: the env itself, in this process. More: SB3's
    ``SubprocVecEnv``, one process per copy, so their children train at the same time (they share the
    env's result store file). As in any SB3 run, the search then depends on ``n_envs``."""
    policy_threads: int | None = 1
    """Torch threads for the policy's updates while the search runs (restored after). Torch's
    default, every core, makes these tiny MLPs 10-20x slower on a 2-core machine
    (``benchmarks/sb3_threads.py``); children train with their own thread count either way. None:
    leave torch's setting alone."""


@dataclass
class PPOConfig(SB3Config):
    learning_rate: float = 1e-3
    """Adam step size. A search makes only tens of updates; 1e-3 moves the policy where SB3's 3e-4
    would barely leave the uniform start."""
    n_steps: int = 32
    """Steps per rollout (one update each): 2-3 episodes, not SB3's 2048."""
    batch_size: int = 16
    """Minibatch, in steps; divides n_steps."""
    n_epochs: int = 4
    """Passes over each rollout. Fewer than SB3's 10: a 32-step rollout overfits quickly."""
    gae_lambda: float = 0.95
    """GAE bias/variance trade-off (SB3's default)."""
    clip_range: float = 0.2
    """PPO's ratio clip (SB3's default)."""
    ent_coef: float = 0.01
    """Entropy bonus: keeps the 24-way policy exploring through a short search."""


@dataclass
class MaskablePPOConfig(PPOConfig):
    """MaskablePPO: PPO's sizes; only the policy's masking differs."""


@dataclass
class A2CConfig(SB3Config):
    learning_rate: float = 7e-4
    """RMSprop step size (SB3's default; A2C already updates every n_steps)."""
    n_steps: int = 8
    """Steps per update: about half an episode, SB3's 5 rounded to a power of two."""
    gae_lambda: float = 1.0
    """1.0: plain n-step returns, SB3's A2C default."""
    ent_coef: float = 0.01
    """Entropy bonus, as for PPO."""


@dataclass
class DQNConfig(SB3Config):
    learning_rate: float = 1e-3
    """Adam step size: 10x SB3's 1e-4, for the few hundred updates a search allows."""
    buffer_size: int = 5_000
    """Transitions kept: the whole of a search of a few hundred trainings (SB3's 1e6 is for Atari)."""
    learning_starts: int = 45
    """Random steps before the first update: 3 full-length episodes."""
    batch_size: int = 32
    """Transitions per gradient step (SB3's default)."""
    train_freq: int = 1
    """A gradient step after every env step: the Q-MLP is cheap next to a child's training."""
    gradient_steps: int = 1
    """Gradient steps per train_freq."""
    target_update_interval: int = 100
    """Env steps between target-network copies: about 100 trainings early in a search, when most
    steps train (SB3's 10,000 would never copy within a budget)."""
    exploration_fraction: float = 0.5
    """Fraction of the *training budget* (not of total_timesteps) over which epsilon decays."""
    exploration_initial_eps: float = 1.0
    """Epsilon before the first training: uniform actions."""
    exploration_final_eps: float = 0.05
    """Epsilon for the rest of the search: about one random action in 20, under one per 15-layer episode."""


# -- the DQN schedule ---------------------------------------------------------------------------


class _EpsilonOverTrainings:
    """DQN's linear epsilon schedule driven by trainings spent instead of timesteps taken.

    DQN recomputes ``exploration_rate = exploration_schedule(progress_remaining)`` after every
    step; this callable ignores SB3's progress (a fraction of the step cap) and uses the budget.
    """

    def __init__(self, env: TrackedEnv, config: DQNConfig) -> None:
        self.env = env
        self.start = env.trainings
        self.config = config

    def __call__(self, _progress_remaining: float) -> float:
        c = self.config
        if self.env.budget is not None and self.env.budget_seconds is None:
            spent = (self.env.trainings - self.start) / max(self.env.budget - self.start, 1)
        else:  # a budget of seconds: the fraction of it (or of the trainings) spent
            spent = self.env.progress
        decay = min(spent / c.exploration_fraction, 1.0) if c.exploration_fraction > 0 else 1.0
        return c.exploration_initial_eps + decay * (c.exploration_final_eps - c.exploration_initial_eps)


# -- run functions ------------------------------------------------------------------------------


def _search(algo: type, env: TrackedEnv, seed: int, config: SB3Config) -> BaseAlgorithm | None:
    """Build ``algo`` on ``env`` and learn to the budget: the settings every agent here shares
    (:class:`SB3Config`'s fields), then each of the algorithm's config fields passed to ``algo``
    under its own name (the config's fields are SB3's keyword arguments)."""
    env.reset(seed=seed)  # the children's training seed derives from this seed
    if env.exhausted:
        return None
    import torch

    if env.evaluator.kind == "train":
        from nas_gym.evaluation import Evaluator

        # children keep the thread count they would have had (part of the store key): fix it now
        _ = cast(Evaluator, env.evaluator).setup.torch_threads
    previous = torch.get_num_threads()
    if config.policy_threads is not None:
        torch.set_num_threads(config.policy_threads)
    try:
        return _learn(algo, env, seed, config)
    finally:
        torch.set_num_threads(previous)


def _learn(algo: type, env: TrackedEnv, seed: int, config: SB3Config) -> BaseAlgorithm:
    shared = {f.name for f in fields(SB3Config)}
    algo_kwargs = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in shared}
    venv = vec_env(env, config.n_envs)
    model = algo(
        "MlpPolicy",
        venv,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        policy_kwargs=dict(net_arch=list(config.net_arch)),
        seed=seed,
        device="cpu",
        verbose=0,
        **algo_kwargs,
    )
    if isinstance(config, DQNConfig):
        model.exploration_schedule = _EpsilonOverTrainings(env, config)
    try:
        learn_to_budget(model, env, config.max_steps_per_training)
    finally:
        if config.n_envs > 1:
            venv.close()
    return model


def run_ppo(env: TrackedEnv, seed: int, config: PPOConfig | None = None) -> None:
    """Search with PPO (unmasked) until ``env.exhausted``."""
    from stable_baselines3 import PPO

    _search(PPO, env, seed, config or PPOConfig())


def run_maskable_ppo(env: TrackedEnv, seed: int, config: MaskablePPOConfig | None = None) -> None:
    """Search with sb3-contrib's MaskablePPO, which never samples a masked action."""
    try:
        from sb3_contrib import MaskablePPO
    except ImportError as e:
        raise ImportError("the maskable_ppo agent needs sb3-contrib: pip install sb3-contrib") from e

    _search(MaskablePPO, env, seed, config or MaskablePPOConfig())


def run_a2c(env: TrackedEnv, seed: int, config: A2CConfig | None = None) -> None:
    """Search with A2C (unmasked) until ``env.exhausted``."""
    from stable_baselines3 import A2C

    _search(A2C, env, seed, config or A2CConfig())


def run_dqn(env: TrackedEnv, seed: int, config: DQNConfig | None = None) -> None:
    """Search with DQN (unmasked, epsilon decayed over the training budget) until ``env.exhausted``."""
    from stable_baselines3 import DQN

    _search(DQN, env, seed, config or DQNConfig())
