"""The surrogate benchmark: features, the fitted model, NASSurrogate-v0."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401
from nas_gym.build.samples import SampleSet, sample_architectures
from nas_gym.build.surrogate import fit_surrogate, trees_from_lightgbm
from nas_gym.search_space import Architecture
from nas_gym.surrogate import (
    SHIPPED_SURROGATE,
    SHIPPED_SURROGATES,
    Surrogate,
    features,
    load_surrogate,
)
from nas_gym.tabular import load_table


@pytest.fixture(scope="module")
def surrogate_file(tmp_path_factory) -> Path:
    """A small surrogate fitted on the shipped table's real trainings."""
    samples = SampleSet.from_table(load_table())
    model, arrays = fit_surrogate(samples, members=2, hidden=16, epochs=20, seed=0)
    path = tmp_path_factory.mktemp("surrogate") / "s.npz"
    model.save(path, arrays)
    return path


def test_features_have_one_length_for_every_architecture() -> None:
    archs = sample_architectures(50, np.random.default_rng(0), 14)
    shapes = {features(a, 14).shape for a in archs}
    assert len(shapes) == 1
    assert not np.array_equal(features(archs[0], 14), features(archs[1], 14))


def test_predictions_are_deterministic_and_survive_a_reload(surrogate_file: Path) -> None:
    model = Surrogate.load(surrogate_file)
    archs = [str(a) for a in sample_architectures(20, np.random.default_rng(1), 14)]
    first = model.predict_many(archs)
    assert np.array_equal(first, Surrogate.load(surrogate_file).predict_many(archs))
    assert model.predict(archs[0]) == model.predict(archs[0])
    assert ((first[:, 0] >= 0) & (first[:, 0] <= 1)).all() and (first[:, 1] > 0).all()


def test_a_surrogate_file_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="cannot be read"):
        Surrogate.load(path)


def test_a_surrogate_of_another_format_is_a_clear_error(surrogate_file: Path, tmp_path: Path) -> None:
    """A file of the earlier format was fitted on other features: refused, with what to do."""
    import json

    with np.load(surrogate_file, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = {**json.loads(bytes(arrays.pop("meta")).decode()), "format": "nas-gym-surrogate/2"}
    old = tmp_path / "old.npz"
    np.savez(old, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    with pytest.raises(ValueError, match="format 'nas-gym-surrogate/2'.*fit it again"):
        Surrogate.load(old)


def test_the_accuracy_is_monotone_in_the_model_output_and_bounded(surrogate_file: Path) -> None:
    """The accuracy is a strictly monotone map of the model's output (the order of the outputs is
    the order of the predicted accuracies), through the measured quantiles, within their range."""
    model = Surrogate.load(surrogate_file)
    z = np.linspace(-4, 4, 200)
    accuracy = model._accuracy(z)
    assert (np.diff(accuracy) > 0).all()  # strictly: two different outputs never tie
    assert (np.diff(model.accuracy_p) > 0).all() and (np.diff(model.accuracy_q) > 0).all()
    lo, hi = model.accuracy_bounds
    ends = model._accuracy(np.array([-40.0, 40.0]))
    assert ends[0] == pytest.approx(lo) and ends[1] == pytest.approx(hi)
    middle = np.interp(0.5, model.accuracy_p, model.accuracy_q)
    assert model._accuracy(np.array([0.0]))[0] == pytest.approx(middle)


@pytest.mark.parametrize("version", sorted(SHIPPED_SURROGATES))
def test_the_shipped_surrogates_load_without_network(version: str) -> None:
    model = load_surrogate(version)
    accuracy, seconds = model.predict("R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3")
    assert 0 < accuracy <= 1 and seconds > 0
    assert model.meta["fitted_on"] > 0 and model.meta["budget"]["epochs"] == 3.0


def test_each_surrogate_id_reads_its_own_shipped_file() -> None:
    """v0 stays the file it was (results on it stay reproducible); v1 is another model."""
    v0, v1 = gym.make("NASSurrogate-v0").unwrapped, gym.make("NASSurrogate-v1").unwrapped
    assert v0.surrogate.digest == Surrogate.load(SHIPPED_SURROGATE).digest == load_surrogate("v0").digest
    assert v1.surrogate.digest == load_surrogate("v1").digest != v0.surrogate.digest
    assert v1.surrogate.meta["fitted_on"] > v0.surrogate.meta["fitted_on"]


def test_surrogate_env_passes_both_checkers_and_has_the_real_spaces(surrogate_file: Path) -> None:
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gym.make("NASSurrogate-v0", surrogate=str(surrogate_file))
    assert env.action_space == gym.spaces.Discrete(24)
    assert env.observation_space == gym.spaces.MultiDiscrete([25] * 15)
    gym_check(env.unwrapped)
    sb3_check(gym.make("NASSurrogate-v0", surrogate=str(surrogate_file)))
    env.reset(seed=0)
    _, reward, _, _, info = env.step(12)  # R32
    assert 0 < reward <= 1 and info["train_seconds"] > 0 and info["num_params"] > 0
    assert info["arch"] == "R32"


def test_surrogate_env_counts_first_visits_and_resumes_from_its_store(surrogate_file: Path, tmp_path) -> None:
    store = str(tmp_path / "s.sqlite")
    env = gym.make("NASSurrogate-v0", surrogate=str(surrogate_file), store=store)
    env.reset(seed=0)
    env.step(1)
    env.step(1)
    assert env.unwrapped.evaluator.trainings == 2
    again = gym.make("NASSurrogate-v0", surrogate=str(surrogate_file), store=store)
    again.reset(seed=0)
    r = again.step(1)[1]
    assert (
        again.unwrapped.evaluator.trainings == 0 and r == env.unwrapped.evaluator.lookup("C32k3", 0).accuracy
    )


def test_noise_is_per_seed_and_reproducible(surrogate_file: Path) -> None:
    def reward(seed: int) -> float:
        env = gym.make("NASSurrogate-v0", surrogate=str(surrogate_file), noise=True)
        env.reset(seed=seed)
        return env.step(5)[1]

    assert reward(0) == reward(0) and reward(0) != reward(1)


def test_agents_run_on_the_surrogate_env_unchanged(surrogate_file: Path) -> None:
    from agents.common.tracked_env import TrackedEnv
    from agents.registry import run_agent

    for agent in ("random", "evolution", "reinforce"):
        env = TrackedEnv(gym.make("NASSurrogate-v0", surrogate=str(surrogate_file)), 30)
        run_agent(agent, env, 0)
        assert env.spent == 30
        assert max(len(Architecture.parse(r.arch)) for r in env.history if r.arch) >= 1


def test_predictions_never_leave_the_measured_range(surrogate_file: Path) -> None:
    """The table has at most 3 layers: 15-layer architectures are far outside its data, and a search
    drives towards such places. No prediction may promise more (or less) than any training gave."""
    samples = SampleSet.from_table(load_table())
    by_arch = samples.by_arch().values()
    measured = [
        np.mean([r.accuracy for r in rows]) for rows in by_arch if all(r.status == "ok" for r in rows)
    ]
    model = Surrogate.load(surrogate_file)
    lo, hi = model.meta["accuracy_bounds"]
    assert lo <= min(measured) and max(measured) <= hi <= max(measured) + 0.01 + 1e-9
    far = [str(a) for a in sample_architectures(300, np.random.default_rng(2), 14) if len(a) > 3]
    predicted = model.predict_many(far)[:, 0]
    assert (predicted >= lo).all() and (predicted <= hi).all()


@pytest.mark.parametrize("version", sorted(SHIPPED_SURROGATES))
def test_a_search_on_the_shipped_surrogate_finds_no_accuracy_above_the_measured_best(version: str) -> None:
    from agents.common.tracked_env import TrackedEnv
    from agents.registry import run_agent

    model = load_surrogate(version)
    env = TrackedEnv(gym.make(f"NASSurrogate-{version}"), 200)
    run_agent("evolution", env, 0)
    best = max(r.accuracy for r in env.history)
    assert best <= model.meta["accuracy_bounds"][1] < 0.95


def test_trees_exported_to_arrays_predict_what_lightgbm_predicts() -> None:
    lightgbm = pytest.importorskip("lightgbm")

    archs = sample_architectures(400, np.random.default_rng(3), 14)
    x = np.stack([features(a, 14) for a in archs]).astype(np.float64)
    y = x[:, :24].sum(axis=1) * 0.1 + np.sin(x[:, -1] * 5)  # any target with splits to learn
    params = {"objective": "regression", "verbose": -1, "num_threads": 1, "max_depth": 6, "seed": 0}
    booster = lightgbm.train(params, lightgbm.Dataset(x[:300], y[:300]), num_boost_round=50)
    trees = trees_from_lightgbm(booster)
    assert trees.depth <= 6
    assert np.allclose(trees(x[300:]), booster.predict(x[300:]), rtol=0, atol=1e-12)


def test_a_tree_surrogate_loads_without_lightgbm_and_is_deterministic(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    samples = SampleSet.from_table(load_table())
    for model_kind in ("trees", "mlp+trees"):
        model, arrays = fit_surrogate(samples, members=2, hidden=16, epochs=20, seed=0, model=model_kind)
        path = tmp_path / f"{model_kind}.npz"
        model.save(path, arrays)
        loaded = Surrogate.load(path)
        assert loaded.meta["model"] == model_kind
        archs = ["C32k3", "C64k3-MP2-C128k5", "R64-C32k1"]
        assert np.array_equal(loaded.predict_many(archs), model.predict_many(archs))
        lo, hi = loaded.meta["accuracy_bounds"]
        assert ((loaded.predict_many(archs)[:, 0] >= lo) & (loaded.predict_many(archs)[:, 0] <= hi)).all()


def test_malformed_trees_are_refused() -> None:
    from nas_gym.surrogate import _Trees

    feature = np.zeros((1, 3), dtype=np.int64)
    threshold = np.array([[0.5, np.inf, np.inf]])
    value = np.array([[0.0, 1.0, 2.0]])
    good = _Trees(feature, threshold, np.array([[1, 1, 2]]), np.array([[2, 1, 2]]), value)
    assert good(np.array([[0.0], [1.0]])).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="malformed"):
        _Trees(feature, threshold, np.array([[0, 1, 2]]), np.array([[5, 1, 2]]), value)


def test_the_seed_spread_leaves_out_repeated_seeds_and_depends_on_accuracy() -> None:
    from nas_gym.build.samples import Sample
    from nas_gym.build.surrogate import _noise_curve, seed_pairs

    def row(arch: str, seed: int, accuracy: float) -> Sample:
        return Sample(arch, seed, accuracy, 1.0, 10, "ok", "random")

    by_arch = {
        "A": [row("A", 0, 0.80), row("A", 0, 0.60), row("A", 1, 0.70)],  # seed 0 twice: its first counts
        "B": [row("B", 0, 0.90)],  # one seed: no pair
        "C": [row("C", 3, 0.88), row("C", 5, 0.87)],
    }
    pairs = seed_pairs(by_arch)
    assert sorted(map(tuple, np.round(pairs, 6))) == [(0.75, 0.1), (0.875, 0.01)]
    rng = np.random.default_rng(0)
    mean = np.concatenate([rng.uniform(0.5, 0.7, 300), rng.uniform(0.85, 0.9, 300)])
    spread = np.where(mean < 0.8, 0.02, 0.005)
    diffs = rng.normal(0, spread) - rng.normal(0, spread)
    centres, std = _noise_curve(np.stack([mean, diffs], axis=1), per_bin=100)
    assert centres.tolist() == sorted(centres.tolist()) and len(centres) == 6
    assert np.allclose(std[:3], 0.02, rtol=0.25) and np.allclose(std[3:], 0.005, rtol=0.25)


def test_noise_follows_the_measured_spread_at_each_accuracy(surrogate_file: Path) -> None:
    from nas_gym.surrogate import SurrogateEvaluator

    model = Surrogate.load(surrogate_file)
    assert len(model.noise_std) > 1 and model.noise_std.min() < model.noise_std.max()
    evaluator = SurrogateEvaluator(model, noise=True)
    arch = "C32k3"
    mean = model.predict(arch)[0]
    draws = np.array([evaluator._values(arch, seed)[0] for seed in range(400)])
    assert abs(draws.std() - model.seed_spread(mean)) < 0.2 * model.seed_spread(mean)
