"""The surrogate benchmark: features, the fitted model, NASSurrogate-v0."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401
from nas_gym.samples import SampleSet, sample_architectures
from nas_gym.search_space import Architecture
from nas_gym.surrogate import SHIPPED_SURROGATE, Surrogate, features, fit_surrogate
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


def test_the_shipped_surrogate_loads_without_network() -> None:
    model = Surrogate.load(SHIPPED_SURROGATE)
    accuracy, seconds = model.predict("R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3")
    assert 0 < accuracy <= 1 and seconds > 0
    assert model.meta["fitted_on"] > 0 and model.meta["budget"]["epochs"] == 3.0


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
    from agents.common.budget import TrackedEnv
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


def test_a_search_on_the_shipped_surrogate_finds_no_accuracy_above_the_measured_best() -> None:
    from agents.common.budget import TrackedEnv
    from agents.registry import run_agent

    model = Surrogate.load(SHIPPED_SURROGATE)
    env = TrackedEnv(gym.make("NASSurrogate-v0"), 200)
    run_agent("evolution", env, 0)
    best = max(r.accuracy for r in env.history)
    assert best <= model.meta["accuracy_bounds"][1] < 0.95
