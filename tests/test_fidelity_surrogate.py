"""NASSurrogate-v2: a fidelity per request (epochs 1 to 9), the curve of a 9-epoch training, the
charges of each, and the file's fit from samples at several fidelities."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401  (registers the envs)
from nas_gym.build.samples import Sample, SampleSet
from nas_gym.store import ResultStore
from nas_gym.surrogate import FidelitySurrogate, load_surrogate

ARCH = "C64k3-MP2-C128k3-R64"
ACTIONS = [0, 3, 5]  # three layers, then the episode goes on


def _step_through(env: gym.Env, actions: list[int]) -> list[dict]:
    infos = []
    for a in actions:
        _, _, terminated, _, info = env.step(a)
        infos.append(info)
        if terminated:
            break
    return infos


def test_each_episode_answers_at_the_epochs_its_reset_asks_for_and_files_them_apart(tmp_path: Path) -> None:
    store = tmp_path / "v2.sqlite"
    env = gym.make("NASSurrogate-v2", epochs=9, store=str(store))
    env.reset(seed=0)
    nine = _step_through(env, ACTIONS)
    env.reset(options={"epochs": 1})
    one = _step_through(env, ACTIONS)
    evaluator = env.unwrapped.evaluator
    paid = evaluator.trainings, evaluator.train_seconds
    env.reset()  # no option: the env's own epochs again, answered from the store
    again = _step_through(env, ACTIONS)
    assert (evaluator.trainings, evaluator.train_seconds) == paid
    assert [i["arch"] for i in nine] == [i["arch"] for i in one]
    assert [i["accuracy"] for i in again] == [i["accuracy"] for i in nine]
    # a child trained 9 epochs costs more than one trained 1 epoch, each as the evaluator says
    for a, b in zip(nine, one, strict=True):
        assert a["train_seconds"] > b["train_seconds"] > 0
        assert a["train_seconds"] == evaluator.recorded_seconds(a["arch"], 0, epochs=9)
        assert b["train_seconds"] == evaluator.recorded_seconds(b["arch"], 0, epochs=1)
    assert evaluator.trainings == 2 * len(ACTIONS)
    assert evaluator.train_seconds == pytest.approx(sum(i["train_seconds"] for i in nine + one))
    # every row under the key of the epochs it answered
    keys = {json.loads(r.config)["epochs"] for r in ResultStore(store).rows()}
    assert keys == {1.0, 9.0}


def test_epochs_outside_the_measured_range_are_refused_by_name() -> None:
    env = gym.make("NASSurrogate-v2")
    with pytest.raises(ValueError, match="1 to 9 epochs, not 12"):
        env.reset(options={"epochs": 12})
    with pytest.raises(ValueError, match="1 to 9 epochs, not 0.5"):
        gym.make("NASSurrogate-v2", epochs=0.5)
    # the one-fidelity surrogates name theirs
    with pytest.raises(ValueError, match="3 epochs only, not 9"):
        gym.make("NASSurrogate-v1", epochs=9)
    with pytest.raises(ValueError, match="3 epochs only, not 9"):
        gym.make("NASSurrogate-v1").reset(options={"epochs": 9})


def test_between_fidelities_the_answer_lies_between_its_neighbours() -> None:
    model = load_surrogate("v2")
    assert isinstance(model, FidelitySurrogate)
    archs = ["C32k1", ARCH, "R64-R64s2-C128k5-AP2-C64k3-R128", "C64k3-C64k3-MP2-C64k3-C64k3-MP2-C128k3"]
    measured_at = {e: model.at(e).predict_many(archs) for e in (1, 2, 3, 5, 9)}
    for lo, mid, hi in ((1, 2, 3), (3, 5, 9)):
        for column in (0, 1):  # accuracy and seconds
            a, b, c = (measured_at[e][:, column] for e in (lo, mid, hi))
            assert (np.minimum(a, c) - 1e-9 <= b).all() and (b <= np.maximum(a, c) + 1e-9).all()
    assert (measured_at[9][:, 1] > measured_at[1][:, 1]).all()  # nine epochs cost more than one
    assert model.predict(ARCH) == model.at(3).predict(ARCH)  # the default is 3 epochs, as v0 and v1


@pytest.mark.parametrize("noise", [False, True])
def test_a_curve_stopped_at_epoch_k_is_charged_k_epochs_and_ends_where_a_full_training_does(
    noise: bool,
) -> None:
    env = gym.make("NASSurrogate-v2", epochs=9, noise=noise)
    evaluator = env.unwrapped.evaluator
    full = evaluator.evaluate(ARCH, 7)
    seconds_before, trainings_before = evaluator.train_seconds, evaluator.trainings
    three = evaluator.curve(ARCH, 7, upto=3)
    assert [k for k, _, _ in three] == [1, 2, 3]
    assert evaluator.trainings == trainings_before + 1
    assert evaluator.train_seconds == pytest.approx(seconds_before + three[-1][2])
    assert three[-1][2] < full.train_seconds  # three epochs cost less than nine
    curve = evaluator.curve(ARCH, 7)
    assert curve[:3] == three  # the same training, stopped later
    assert curve[-1][1] == pytest.approx(full.accuracy, abs=1e-6)
    assert curve[-1][2] == pytest.approx(full.train_seconds, abs=1e-3)
    # the 9-epoch row keeps its curve in the store, as a real training's does
    stored = evaluator.lookup(ARCH, 7, epochs=9).curve_points()
    assert [round(a, 6) for _, a, _ in stored] == [round(a, 6) for _, a, _ in curve]
    with pytest.raises(ValueError, match="upto must be an int in 1..9"):
        evaluator.curve(ARCH, 7, upto=10)


def test_a_one_fidelity_surrogate_has_no_curve() -> None:
    with pytest.raises(ValueError, match="no curves"):
        gym.make("NASSurrogate-v1").unwrapped.evaluator.curve(ARCH, 0)


def test_the_vector_env_answers_what_single_envs_answer_at_its_epochs() -> None:
    vec = gym.make_vec("NASSurrogate-v2", 3, epochs=9)
    vec.reset(seed=0)
    _, _, _, _, info = vec.step(np.array([0, 3, 5]))
    single = gym.make("NASSurrogate-v2", epochs=9).unwrapped
    for i, a in enumerate((0, 3, 5)):
        single.reset(seed=0)
        _, _, _, _, one = single.step(a)
        assert info["accuracy"][i] == one["accuracy"] and info["train_seconds"][i] == one["train_seconds"]
    vec.reset(options={"epochs": 1})
    _, _, _, _, info = vec.step(np.array([0, 3, 5]))
    single.reset(seed=0, options={"epochs": 1})
    _, _, _, _, one = single.step(0)
    assert info["accuracy"][0] == one["accuracy"]
    with pytest.raises(ValueError, match="1 to 9 epochs"):
        vec.reset(options={"epochs": 10})


def _set(epochs: float, rows: list[tuple[str, int, float]], curves: bool = False) -> SampleSet:
    config = {"epochs": epochs, "lr": 0.1, "width": 0.25}
    samples = [
        Sample(a, seed, acc, 2.0 * epochs, 1000, "ok", "random",
               tuple((float(k), acc * k / epochs, 2.0 * k) for k in range(1, int(epochs) + 1)) if curves else ())
        for a, seed, acc in rows
    ]  # fmt: skip
    return SampleSet("NASFashionMini-v0", "fashion_mini", config, 14, samples)


def test_a_fit_needs_every_fidelity_measured_and_one_configuration(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from nas_gym.build.fidelity_surrogate import fit_fidelity_surrogate
    from nas_gym.build.samples import sample_architectures

    archs = [str(a) for a in sample_architectures(60, np.random.default_rng(0), 14)]
    rng = np.random.default_rng(1)
    accuracy = {a: 0.5 + 0.4 * rng.random() for a in archs}
    sets = {
        1.0: _set(1.0, [(a, 0, accuracy[a] - 0.1) for a in archs[:30]]),
        3.0: _set(3.0, [(a, s, accuracy[a] + 0.01 * s) for a in archs for s in (0, 1)]),
        9.0: _set(
            9.0, [(a, s, accuracy[a] + 0.05 + 0.01 * s) for a in archs[:30] for s in (0, 1)], curves=True
        ),
    }
    model, arrays = fit_fidelity_surrogate(sets, members=2, hidden=8, epochs=5)
    path = tmp_path / "v2.npz"
    model.save(path, arrays)
    loaded = load_surrogate(path)  # plain arrays, read back with numpy only
    assert isinstance(loaded, FidelitySurrogate) and loaded.digest == model.digest
    assert loaded.meta["noise_from"] == {"acc_e1": "curve_1"}  # no two-seed trainings at 1 epoch
    assert loaded.at(9).predict(archs[0]) == model.at(9).predict(archs[0])
    with pytest.raises(ValueError, match="share the data and the configuration"):
        fit_fidelity_surrogate({**sets, 1.0: _set(1.0, [(archs[0], 0, 0.5)]).__class__(
            "NASFashionMini-v0", "fashion_mini", {"epochs": 1.0, "lr": 0.2, "width": 0.25}, 14, sets[1.0].samples
        )}, members=1, hidden=8, epochs=1)  # fmt: skip
    no_nine = {**sets, 9.0: _set(9.0, [(archs[0], 0, 0.5)], curves=False)}
    with pytest.raises(ValueError, match="no training measures curve_1"):
        fit_fidelity_surrogate(no_nine, members=1, hidden=8, epochs=1)
