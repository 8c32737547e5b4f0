"""Local search, the BANANAS-style predictor-guided search and TPE: the budget contract, the
edits they rest on, and a known optimum each must find faster than random search."""

from __future__ import annotations

import statistics

import gymnasium as gym
import numpy as np
import pytest
from agent_checks import assert_budget_kept, trace
from conftest import TINY_CHILD
from synthetic import function_env, layer_quality, optimum_of_layer_quality

import nas_gym  # noqa: F401  (registers the env ids)
from agents import bananas, local_search, random_search
from agents.common.edits import mutate, neighbours
from agents.common.tracked_env import BudgetExhausted, TrackedEnv
from agents.registry import run_agent
from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture

pytestmark = pytest.mark.usefixtures("torch_single_thread")

NEW = ("local_search", "bananas", "tpe", "reinforce_uct", "reinforce_tree")
FAST = {  # same methods, a quicker fit for the tests
    "bananas": {"epochs": 60, "ensemble_size": 3},
    "reinforce_tree": {"predictor_epochs": 60, "ensemble_size": 3},
}
UCT_ABLATIONS = ({"guidance": False}, {"counts": False}, {"evaluate": "prefix"}, {"completion": "best"})


def _one_edit(a: Architecture, b: Architecture) -> bool:
    x, y = list(a), list(b)
    if len(x) == len(y):
        return sum(p != q for p, q in zip(x, y, strict=True)) == 1
    long, short = (x, y) if len(x) > len(y) else (y, x)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_neighbours_are_every_valid_one_edit_architecture_once():
    arch = Architecture.parse("C32k3-MP2-R64")
    around = neighbours(arch, DEFAULT_VOCABULARY, 14)
    texts = [str(a) for a in around]
    assert len(texts) == len(set(texts)) and str(arch) not in texts
    assert all(_one_edit(arch, a) and DEFAULT_VOCABULARY.is_valid(a, 14) for a in around)
    # 3 x 22 replaces + 4 x 23 inserts + 3 removes, less the duplicates (an insert next to the
    # same layer) and the pools that no longer fit at 14x14
    assert 140 < len(around) < 3 * 22 + 4 * 23 + 3
    # at 14x14 a fourth stride-2 layer does not fit: none of them is proposed after three
    deep = Architecture.parse("MP2-MP2-MP2")
    assert all(DEFAULT_VOCABULARY.is_valid(a, 14) for a in neighbours(deep, DEFAULT_VOCABULARY, 14))
    assert "MP2-MP2-MP2-MP2" not in {str(a) for a in neighbours(deep, DEFAULT_VOCABULARY, 14)}
    full = Architecture.parse("-".join(["C32k3"] * 15))
    assert all(len(a) <= 15 for a in neighbours(full, DEFAULT_VOCABULARY, 14))


def test_mutation_is_one_of_the_neighbours():
    rng = np.random.default_rng(0)
    arch = Architecture.parse("C64k3-R32s2-AP3-DR")
    around = {str(a) for a in neighbours(arch, DEFAULT_VOCABULARY, 14)}
    for _ in range(200):
        assert str(mutate(arch, DEFAULT_VOCABULARY, 14, rng)) in around


@pytest.mark.parametrize("name", NEW)
def test_new_searchers_spend_exactly_their_budget_and_repeat_with_the_seed(name):
    runs = []
    for _ in range(2):
        env = TrackedEnv(function_env(layer_quality), budget=37)
        run_agent(name, env, seed=3, config=FAST.get(name))
        assert_budget_kept(env)
        runs.append(trace(env))
    assert runs[0] == runs[1]
    other = TrackedEnv(function_env(layer_quality), budget=37)
    run_agent(name, other, seed=4, config=FAST.get(name))
    assert trace(other) != runs[0]


@pytest.mark.parametrize("name", NEW)
def test_new_searchers_keep_the_budget_on_real_training(name):
    env = TrackedEnv(gym.make("NASFashionMini-v0", **TINY_CHILD), budget=4)
    config = {
        "tpe": {"n_startup_trials": 2},
        "reinforce_uct": {"batch_size": 2},
        # the last training at a second fidelity: 1 epoch, to stay quick
        "reinforce_tree": {"batch_size": 2, "initial_samples": 2, "final_epochs": 1.0},
    }.get(name, {"initial_samples": 2})
    run_agent(name, env, seed=0, config={**FAST.get(name, {}), **config})
    assert_budget_kept(env)


def test_local_search_moves_only_to_better_neighbours():
    env = TrackedEnv(function_env(layer_quality), budget=80)
    config = local_search.LocalSearchConfig(initial_samples=5)
    local_search.run(env, seed=1, config=config)
    rows = env.history.rows
    archs = [Architecture.parse(r.arch) for r in rows]
    scores = [r.accuracy for r in rows]
    # after the initial sample every evaluation is a neighbour of an architecture evaluated before
    # it, or a restart's fresh sample; and the walk's current best never gets worse between restarts
    best = max(scores[: config.initial_samples])
    walked = 0
    for t in range(config.initial_samples, len(rows)):
        if any(_one_edit(archs[t], archs[j]) for j in range(t)):
            walked += 1
    assert walked >= 0.8 * (len(rows) - config.initial_samples)
    assert max(scores) >= best


def test_local_search_full_neighbourhood_picks_its_best():
    # with first_improvement=False and a sampled neighbourhood, a move goes to the best of it
    env = TrackedEnv(function_env(layer_quality, max_layers=3), budget=60)
    local_search.run(env, 0, local_search.LocalSearchConfig(first_improvement=False, neighbourhood_sample=12))
    assert_budget_kept(env)


def test_bananas_predictor_learns_a_ranking():
    rng = np.random.default_rng(0)
    from agents.common.draws import random_architecture

    archs = [random_architecture(DEFAULT_VOCABULARY, 14, rng) for _ in range(120)]
    y = np.array([layer_quality(a) for a in archs])
    x = bananas.encode(archs, DEFAULT_VOCABULARY)
    predictor = bananas.Predictor(bananas.BananasConfig(), seed=0)
    predictor.fit(x[:80], y[:80])
    mean, std = predictor.predict(x[80:])
    assert std.shape == (40,) and (std >= 0).all()
    from scipy.stats import kendalltau

    assert kendalltau(mean, y[80:]).statistic > 0.3  # held-out ranking well above chance
    with pytest.raises(ValueError, match="acquisition must be"):
        bananas.BananasConfig(acquisition="ei")


def _trainings_to_optimum(name: str, seed: int, budget: int, config=None) -> int:
    env = TrackedEnv(function_env(layer_quality, max_layers=3), budget)
    optimum = optimum_of_layer_quality()

    def stop(row) -> None:
        if row.arch == optimum:
            raise BudgetExhausted("found")

    env.listeners.append(stop)
    try:
        if name == "random":
            random_search.run(env, seed)
        else:
            run_agent(name, env, seed, config=config)
    except BudgetExhausted:
        pass
    return next((r.training for r in env.history if r.arch == optimum), budget + 1)


@pytest.mark.parametrize("name", NEW)
def test_new_searchers_find_the_known_optimum_faster_than_random_search(name):
    seeds = range(6)
    ours = [_trainings_to_optimum(name, s, 150, FAST.get(name)) for s in seeds]
    rand = [_trainings_to_optimum("random", s, 150) for s in seeds]
    assert statistics.median(ours) < statistics.median(rand), (ours, rand)
    assert sum(t <= 150 for t in ours) >= 4, ours


def test_tpe_without_optuna_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna":
            raise ImportError("no optuna")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(ImportError, match=r"nas-gym\[tpe\]"):
        run_agent("tpe", TrackedEnv(function_env(layer_quality), budget=2), seed=0)


@pytest.mark.parametrize("overrides", UCT_ABLATIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_reinforce_uct_ablations_keep_the_budget_and_the_seed(overrides):
    runs = []
    for _ in range(2):
        env = TrackedEnv(function_env(layer_quality), budget=30)
        run_agent("reinforce_uct", env, seed=2, config=overrides)
        assert_budget_kept(env)
        runs.append(trace(env))
    assert runs[0] == runs[1]


def test_reinforce_uct_prefix_mode_trains_prefixes_and_direct_mode_does_not():
    from agents.common.history import prefix_use

    direct = TrackedEnv(function_env(layer_quality), budget=40)
    run_agent("reinforce_uct", direct, seed=0)
    prefix = TrackedEnv(function_env(layer_quality), budget=40)
    run_agent("reinforce_uct", prefix, seed=0, config={"evaluate": "prefix"})
    assert prefix_use(prefix.history.rows)["prefix_share"] > prefix_use(direct.history.rows)["prefix_share"]
    assert all(r.episode == i for i, r in enumerate(direct.history.rows))  # one evaluation per episode


@pytest.mark.slow  # about 2 minutes: the controller alone rarely finds the optimum
def test_reinforce_uct_tree_guidance_beats_its_controller_alone():
    """The tree's search finds the known optimum in fewer trainings than the same agent without it."""
    seeds = range(6)
    guided = [_trainings_to_optimum("reinforce_uct", s, 150) for s in seeds]
    alone = [_trainings_to_optimum("reinforce_uct", s, 150, {"guidance": False}) for s in seeds]
    assert statistics.median(guided) < statistics.median(alone), (guided, alone)


@pytest.mark.parametrize("overrides", [{"guidance": False}, {"acquisition": "mean", "edit_share": 1.0}])
def test_reinforce_tree_ablations_keep_the_budget_and_the_seed(overrides):
    runs = []
    for _ in range(2):
        env = TrackedEnv(function_env(layer_quality), budget=30)
        run_agent("reinforce_tree", env, seed=2, config={**FAST["reinforce_tree"], **overrides})
        assert_budget_kept(env)
        runs.append(trace(env))
    assert runs[0] == runs[1]


def test_reinforce_tree_guided_proposals_stay_next_to_what_the_tree_holds():
    """With guidance, what is trained after the first samples is mostly one edit from an
    architecture trained before it; the controller alone (the ablation) rarely is."""

    def near_share(overrides: dict) -> float:
        env = TrackedEnv(function_env(layer_quality), budget=60)
        run_agent("reinforce_tree", env, seed=0, config={**FAST["reinforce_tree"], **overrides})
        archs = [Architecture.parse(r.arch) for r in env.history.rows if r.new_training]
        later = range(10, len(archs))
        return sum(any(_one_edit(archs[t], archs[j]) for j in range(t)) for t in later) / len(later)

    guided, alone = near_share({}), near_share({"guidance": False})
    assert guided >= 0.6 and guided > alone + 0.3, (guided, alone)


def test_reinforce_tree_retrains_the_best_leaves_at_the_final_fidelity():
    """On an env of several fidelities the last share of the budget retrains, at ``final_epochs``,
    architectures the search trained at its own fidelity; the budget is spent exactly."""
    from synthetic import fidelity_env

    env = TrackedEnv(fidelity_env(layer_quality, max_layers=4), budget=60)
    config = {**FAST["reinforce_tree"], "epochs": 3.0, "final_epochs": 9.0, "final_share": 0.2}
    run_agent("reinforce_tree", env, seed=1, config=config)
    evaluator = env.unwrapped.evaluator
    assert env.trainings == evaluator.trainings == 60 and env.exhausted
    at = {e: [a for a, epochs in evaluator._seen if epochs == e] for e in (3.0, 9.0)}
    assert set(at) == {3.0, 9.0} and len(at[9.0]) == 12 and len(at[3.0]) == 48
    assert set(at[9.0]) <= set(at[3.0])  # retrained, not new
    # the retrained are among the best of the search fidelity
    ranked = sorted(at[3.0], key=lambda a: -evaluator._seen[(a, 3.0)])
    assert len(set(at[9.0]) & set(ranked[:24])) >= 9


# -- multi-fidelity searchers ----------------------------------------------------------------------

MULTI_FIDELITY = ["successive_halving", "hyperband", "bohb"]


@pytest.mark.parametrize("name", MULTI_FIDELITY)
def test_multi_fidelity_searchers_spend_exactly_their_budget_and_train_at_every_rung(name):
    pytest.importorskip("optuna")
    from synthetic import fidelity_env

    env = TrackedEnv(fidelity_env(layer_quality, max_layers=3), budget=60)
    run_agent(name, env, seed=1)
    evaluator = env.unwrapped.evaluator
    assert env.trainings == evaluator.trainings == 60 and env.exhausted
    rungs = {epochs for _, epochs in evaluator._seen}
    assert rungs == {1.0, 3.0, 9.0}  # promoted trials trained again at more epochs
    per_rung = [sum(1 for _, e in evaluator._seen if e == r) for r in (1.0, 3.0, 9.0)]
    assert per_rung[0] > per_rung[1] > per_rung[2] > 0  # the pruner keeps fewer at each rung


@pytest.mark.parametrize("name", MULTI_FIDELITY)
def test_multi_fidelity_searchers_find_the_known_optimum_at_the_highest_fidelity(name):
    pytest.importorskip("optuna")
    # TPE (BOHB-style) on the 14,000 architectures of up to 3 layers, the optimum two layers deep;
    # random sampling (successive halving, Hyperband) on the 552 of up to 2 layers, the optimum one
    # layer deep: each must train the optimum at the highest fidelity
    import functools

    from synthetic import fidelity_env

    depth = 2 if name == "bohb" else 1
    optimum = optimum_of_layer_quality(best_length=depth)
    fn = functools.partial(layer_quality, best_length=depth)
    layers, budget = (3, 400) if name == "bohb" else (2, 300)
    found = 0
    for seed in range(3):
        env = TrackedEnv(fidelity_env(fn, max_layers=layers), budget=budget)
        run_agent(name, env, seed=seed)
        found += (optimum, 9.0) in env.unwrapped.evaluator._seen
    assert found >= 2


@pytest.mark.parametrize("name", ["hyperband", "bohb"])
def test_hyperband_brackets_are_a_function_of_the_seed(name):
    """Hyperband assigns trials to brackets by the study's name: two searches of one seed (as two
    processes of a comparison run them) train the same children in the same order."""
    pytest.importorskip("optuna")
    from synthetic import fidelity_env

    histories = []
    for _ in range(2):
        env = TrackedEnv(fidelity_env(layer_quality, max_layers=3), budget=80)
        run_agent(name, env, seed=4)
        histories.append([(r.arch, r.accuracy) for r in env.history.rows])
    assert histories[0] == histories[1]


def test_a_multi_fidelity_searcher_refuses_an_env_of_one_fidelity():
    pytest.importorskip("optuna")
    env = TrackedEnv(function_env(layer_quality), budget=10)
    with pytest.raises(ValueError, match="answers at several epochs; this env's function answers at 1 only"):
        run_agent("hyperband", env, seed=0)


def test_a_multi_fidelity_searcher_on_real_training_files_each_rung_under_its_key(
    tmp_path, torch_single_thread
):
    pytest.importorskip("optuna")
    import json
    import sqlite3

    store = tmp_path / "s.sqlite"
    env = TrackedEnv(
        gym.make("NASFashionMini-v0", **{**TINY_CHILD, "threads": 1}, store=str(store)), budget=8
    )
    run_agent("successive_halving", env, seed=0, config={"fidelities": (0.5, 1.5)})
    assert_budget_kept(env)
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT budget, curve FROM results").fetchall()
        ledger = conn.execute("SELECT COUNT(*) FROM trainings").fetchone()[0]
    epochs = [json.loads(key)["epochs"] for key, _ in rows]
    assert ledger == len(rows) == 8 and set(epochs) == {0.5, 1.5} and epochs.count(0.5) > epochs.count(1.5)
    assert all(json.loads(curve)[-1][0] == e for (_, curve), e in zip(rows, epochs, strict=True))
