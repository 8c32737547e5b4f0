"""The Stable-Baselines3 agents (PPO, A2C, DQN, MaskablePPO) and their plumbing, on NASTabular-v0.

A step of the table env costs microseconds, so what is measured is the agents: the budget of
trainings as the stop, determinism (what resuming relies on), masks, DQN's schedule, several env
copies counted as one search, and that MaskablePPO really learns. Resuming an SB3 search over real
trainings is tested in tests/test_agents_baselines.py.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from agent_checks import InvalidActionLog, assert_budget_kept, trace

import nas_gym  # noqa: F401  (registers the env ids)
from agents import sb3_agents
from agents.common.tracked_env import TrackedEnv
from agents.registry import SB3_AGENTS, check_config, run_agent
from nas_gym.store import ResultStore
from nas_gym.tabular import TableEvaluator, load_table

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def make_env(budget: int, **kwargs) -> TrackedEnv:
    return TrackedEnv(InvalidActionLog(gym.make("NASTabular-v0", **kwargs)), budget=budget)


def episode_finals(env: TrackedEnv) -> list[float]:
    """Accuracy of the architecture each episode ended with, in order."""
    last: dict[int, float] = {}
    for row in env.history:
        last[row.episode] = row.accuracy
    return [last[e] for e in sorted(last)]


# -- the budget is the stop -----------------------------------------------------------------------


def test_the_registry_names_the_four_sb3_agents():
    assert sorted(SB3_AGENTS) == ["a2c", "dqn", "maskable_ppo", "ppo"]


@pytest.mark.parametrize("name", SB3_AGENTS)
def test_agent_spends_exactly_its_budget(name):
    env = make_env(budget=20)
    run_agent(name, env, seed=0)
    assert_budget_kept(env)
    assert env.evaluator.trainings == 20  # what the env really trained: never one past the budget
    assert env.exhausted


@pytest.mark.parametrize("name", SB3_AGENTS)
def test_same_seed_same_search(name):
    # resuming reruns the agent from the start and replays its steps: that needs determinism
    runs = [make_env(budget=12) for _ in range(3)]
    for env, seed in zip(runs, (7, 7, 8), strict=True):
        run_agent(name, env, seed=seed)
    assert trace(runs[0]) == trace(runs[1])
    assert trace(runs[0]) != trace(runs[2])  # and the seed is what decides


def test_maskable_ppo_never_takes_a_masked_action_where_ppo_does():
    masked, plain = make_env(budget=60), make_env(budget=60)
    run_agent("maskable_ppo", masked, seed=0)
    run_agent("ppo", plain, seed=0)
    assert_budget_kept(masked)
    log: InvalidActionLog = masked.env
    assert len(log.invalid) == len(masked.history) and not any(log.invalid)
    assert any(plain.env.invalid)  # the count sees them: PPO, unmasked, takes some (HEAD first...)


# -- DQN's exploration is scheduled on trainings --------------------------------------------------


def test_dqn_epsilon_decays_linearly_over_the_trainings_of_the_budget():
    env = make_env(budget=10)
    config = sb3_agents.DQNConfig(exploration_fraction=0.5)
    epsilon = sb3_agents._EpsilonOverTrainings(env, config)
    values = []
    for episode in ((0, 1, 2), (1, 0, 3)):  # six new children, one training each
        env.reset(seed=0)
        for action in episode:
            values.append(epsilon(1.0))
            assert epsilon(0.0) == values[-1]  # SB3's progress (a fraction of the step cap) is ignored
            env.step(action)
    assert env.trainings == 6
    values.append(epsilon(1.0))
    # from 1.0 down to 0.05 over half of the budget (5 trainings), then flat
    assert values == pytest.approx([1.0, 0.81, 0.62, 0.43, 0.24, 0.05, 0.05])
    env.reset()
    env.step(0)  # a stored child: no training, no decay
    assert env.trainings == 6 and epsilon(1.0) == pytest.approx(0.05)


def test_dqn_explores_by_the_trainings_spent(monkeypatch):
    seen: list[tuple[int, float]] = []

    class Recording(sb3_agents._EpsilonOverTrainings):
        def __call__(self, progress_remaining: float) -> float:
            value = super().__call__(progress_remaining)
            seen.append((self.env.trainings, value))
            return value

    monkeypatch.setattr(sb3_agents, "_EpsilonOverTrainings", Recording)
    env = make_env(budget=20)
    run_agent("dqn", env, seed=0, config={"exploration_fraction": 0.5})
    assert_budget_kept(env)
    assert seen, "DQN did not use the schedule"
    for trainings, value in seen:  # epsilon is set by the trainings spent, whatever the step count
        assert value == pytest.approx(1.0 - 0.95 * min(trainings / 10, 1.0))
    values = [value for _, value in seen]
    assert values == sorted(values, reverse=True) and values[-1] == pytest.approx(0.05)


# -- several copies of the env, one search --------------------------------------------------------


@pytest.mark.parametrize("name", ["ppo", "maskable_ppo"])
def test_two_env_copies_spend_exactly_the_budget_and_record_every_step(name, tmp_path: Path):
    store = tmp_path / "s.sqlite"
    env = TrackedEnv(gym.make("NASTabular-v0", store=str(store)), budget=12)  # copied: no extra wrapper
    run_agent(name, env, seed=0, workers=2)
    assert_budget_kept(env)
    rows = env.history.rows
    assert [row.step for row in rows] == list(range(1, len(rows) + 1))
    assert len(rows) % 2 == 0  # every vector step records one row per copy
    # the children the copies trained (the store's ledger, under this search's tag) are exactly
    # the ones the history records as trainings, and no training was left out of the ledger
    ledger = ResultStore(store).trained_keys(env.tag)
    assert sorted(arch for arch, _ in ledger.elements()) == sorted(
        row.arch for row in rows if row.new_training
    )
    assert ResultStore(store).trainings() == 12
    truth = TableEvaluator(load_table())
    for row in rows:
        if row.arch:
            assert row.accuracy == truth.evaluate(row.arch, env.train_seed).accuracy


@pytest.mark.parametrize(
    "kwargs, workers, words",
    [
        ({}, 2, "store to be a file"),
        ({"store": "FILE", "reward": "final"}, 2, "reward='prefix'"),
        ({}, 0, "n_envs must be >= 1"),
    ],
)
def test_env_copies_that_cannot_work_are_refused(kwargs, workers, words, tmp_path):
    if kwargs.get("store") == "FILE":
        kwargs = {**kwargs, "store": str(tmp_path / "s.sqlite")}
    env = make_env(budget=5, **kwargs)
    with pytest.raises(ValueError, match=words):
        run_agent("ppo", env, seed=0, workers=workers)
    assert env.trainings == 0 and len(env.history) == 0


# -- configs --------------------------------------------------------------------------------------


def test_config_check_names_a_bad_setting_and_lists_the_good_ones():
    with pytest.raises(ValueError, match="DQNConfig has no setting epsilon; it has: .*exploration_final_eps"):
        check_config("dqn", {"epsilon": 0.1})
    with pytest.raises(ValueError, match="MaskablePPOConfig has no setting nsteps, wrong"):
        check_config("maskable_ppo", {"nsteps": 8, "wrong": 1})
    with pytest.raises(ValueError, match="unknown agent 'sac'; known agents: .*maskable_ppo"):
        check_config("sac", {})
    for name in SB3_AGENTS:
        check_config(name, {"learning_rate": 1e-4, "n_envs": 2, "net_arch": [32]})


def test_config_overrides_reach_the_algorithm():
    # learning_rate=0: the policy never moves from its start, so the search is another one
    default, frozen = make_env(budget=60), make_env(budget=60)
    run_agent("maskable_ppo", default, seed=0)
    run_agent("maskable_ppo", frozen, seed=0, config={"learning_rate": 0.0})
    steps = min(len(default.history), len(frozen.history))
    assert trace(default)[:32] == trace(frozen)[:32]  # the same first rollout (32 steps) ...
    assert trace(default)[:steps] != trace(frozen)[:steps]  # ... then the updates differ


# -- learning -------------------------------------------------------------------------------------


def _early_and_late_finals(
    name: str, seed: int, config: dict | None = None
) -> tuple[float, float, TrackedEnv]:
    """Mean accuracy of the architectures the first and the last quarter of the episodes ended with."""
    env = make_env(budget=150)
    run_agent(name, env, seed=seed, config=config)
    finals = episode_finals(env)
    quarter = len(finals) // 4
    return float(np.mean(finals[:quarter])), float(np.mean(finals[-quarter:])), env


def test_maskable_ppo_learns_to_end_its_episodes_on_the_best_architectures():
    """Over 3 seeds, the architectures MaskablePPO's episodes end with in the last quarter of a
    search are better than those of the first quarter and than random search's; invalid actions
    stay at 0. (With learning_rate=0 both comparisons fail: the policy stays uniform.)"""
    optimum = load_table().optimum()[1]
    early, late, random_late = [], [], []
    for seed in range(3):
        # a cap of 6 steps per training: once the policy has converged it replays the stored optimum
        # for free, and the cap, not the budget, ends the search (a few seconds a run)
        first, last, env = _early_and_late_finals("maskable_ppo", seed, {"max_steps_per_training": 6})
        early.append(first)
        late.append(last)
        assert not any(env.env.invalid)
        random_late.append(_early_and_late_finals("random", seed)[1])
    assert np.mean(late) > np.mean(early) + 0.05, (early, late)
    assert np.mean(late) > np.mean(random_late) + 0.05, (late, random_late)
    assert np.mean(late) > optimum - 0.03  # in the end it ends on (about) the table's optimum
