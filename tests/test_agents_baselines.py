"""The baseline agents (random search, regularized evolution; SB3 where real training matters)
under the agent contract.

Every run trains real children of the shipped mini set at the tiny budget (a child takes well under
a second on a CPU), with an in-memory store, so each run starts from an empty cache. The SB3 agents'
own tests run on the table env: tests/test_sb3_agents.py.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from agent_checks import assert_budget_kept, trace
from conftest import TINY_CHILD

import nas_gym  # noqa: F401  (registers the env ids)
from agents import evolution, random_search
from agents.common.draws import EpisodeShape, random_architecture
from agents.common.history import History
from agents.common.tracked_env import TrackedEnv
from agents.registry import AGENTS, run_agent
from nas_gym.search_space import Architecture, Vocabulary

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ALL_AGENTS = ("random", "evolution", "local_search", "bananas", "tpe", "ppo", "a2c", "dqn", "maskable_ppo")


def make_env(budget: int, history: History | None = None, **kwargs: Any) -> TrackedEnv:
    env = gym.make("NASFashionMini-v0", **{**TINY_CHILD, **kwargs})
    return TrackedEnv(env, budget=budget, history=history)


def edit_distance(a: Architecture, b: Architecture) -> int:
    """Levenshtein distance over layers (replace, insert, remove each cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# -- the contract, agent by agent -----------------------------------------------------------------

SMALL_EVOLUTION = evolution.EvolutionConfig(
    population_size=3, sample_size=2, initial=EpisodeShape(max_length=4)
)


def test_random_search_keeps_budget_and_is_deterministic():
    runs = []
    for _ in range(2):
        env = make_env(budget=6)
        random_search.run(env, seed=5, config=random_search.RandomSearchConfig(head_probability=0.3))
        assert_budget_kept(env)
        runs.append(trace(env))
    assert runs[0] == runs[1]
    assert any(arch.count("-") < 14 for arch, _, _ in runs[0])


def test_evolution_keeps_budget_is_deterministic_and_mutates_one_layer():
    runs = []
    for _ in range(2):
        env = make_env(budget=8)
        evolution.run(env, seed=2, config=SMALL_EVOLUTION)
        assert_budget_kept(env)
        assert env.episode == len(env.history)  # one direct evaluation per row
        runs.append(trace(env))
    assert runs[0] == runs[1]
    archs = [Architecture.parse(arch) for arch, _, _ in runs[0]]
    for t in range(SMALL_EVOLUTION.population_size, len(archs)):
        # every child is one edit from an earlier member (its parent)
        assert any(edit_distance(archs[t], archs[j]) == 1 for j in range(t)), archs[t]


def test_mutate_makes_exactly_one_valid_layer_edit():
    vocabulary, image_size = Vocabulary(), 14
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        parent = random_architecture(vocabulary, image_size, rng)
        child = evolution.mutate(parent, vocabulary, image_size, rng)
        assert child is not None
        vocabulary.validate(child, image_size)
        assert edit_distance(parent, child) == 1
        seen.add(len(child) - len(parent))
    assert seen == {-1, 0, 1}  # remove, replace and insert all occur


def test_mutate_respects_length_limits():
    vocabulary, rng = Vocabulary(max_layers=2), np.random.default_rng(1)
    one, full = Architecture.parse("C32k3"), Architecture.parse("C32k3-C64k3")
    for _ in range(50):
        assert len(evolution.mutate(one, vocabulary, 14, rng)) >= 1  # never empty
        assert len(evolution.mutate(full, vocabulary, 14, rng)) <= 2  # never past max_layers


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("name", ["evolution", "ppo"])
def test_interrupted_search_resumes_on_the_recorded_path(name, tmp_path):
    # resuming reruns the agent from the start; its first steps are answered from the store and must
    # retrace the recorded rows (for SB3: the policy's torch RNG must not see store misses)
    store, path = str(tmp_path / "results.sqlite"), tmp_path / "history.jsonl"
    env = make_env(budget=6, history=History.load(path), store=store)

    def interrupt(row) -> None:
        if row.new_training and row.training == 3:
            raise Interrupt

    env.listeners.append(interrupt)
    with pytest.raises(Interrupt):
        run_agent(name, env, seed=4)
    resumed = make_env(budget=6, history=History.load(path), store=store)
    run_agent(name, resumed, seed=4)
    assert resumed.resume_mismatches == 0
    assert_budget_kept(resumed)


# -- stopping and the registry --------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_AGENTS)
def test_agent_on_a_spent_budget_trains_nothing(name):
    env = make_env(budget=1)
    env.reset(seed=0)
    env.step(1)  # C32k3: the one training
    assert env.exhausted
    run_agent(name, env, seed=0)
    assert env.trainings == 1
    assert sum(row.new_training for row in env.history) == 1


def test_registry_names_and_unknown_agent():
    assert set(ALL_AGENTS) <= set(AGENTS)
    with pytest.raises(ValueError, match="known agents: .*evolution.*random"):
        run_agent("simulated_annealing", make_env(budget=1), seed=0)


def test_registry_config_overrides_change_the_agent_and_name_bad_settings():
    from agents.registry import check_config

    small = make_env(budget=6)
    run_agent("random", small, seed=3, config={"max_length": 1})
    assert {len(Architecture.parse(r.arch)) for r in small.history} == {1}  # one layer, then HEAD
    default = make_env(budget=6)
    run_agent("random", default, seed=3)
    assert trace(default) != trace(small)
    with pytest.raises(ValueError, match="EvolutionConfig has no setting nope"):
        run_agent("evolution", make_env(budget=1), seed=0, config={"nope": 1})
    with pytest.raises(ValueError, match="max_length must be"):
        check_config("random", {"max_length": 0})
    with pytest.raises(ValueError, match="unknown agent"):
        check_config("annealing", {})
    check_config("ppo", {"n_steps": 8})
