"""The Gymnasium envs: registration, API checkers, spaces, masks, rewards, the store, SB3."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import TINY_CHILD

import nas_gym
from nas_gym.envs import NASEnv
from nas_gym.evaluation import ResultStore
from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture

pytestmark = pytest.mark.usefixtures("torch_single_thread")

IDS = ["NASCifar10-v0", "NASMnist-v0", "NASFashionMNIST-v0", "NASFashionMini-v0"]
HEAD = DEFAULT_VOCABULARY.head_action  # 23
POSTER_BEST = "R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3"
INFO_KEYS = {"arch", "accuracy", "num_params", "action_mask", "invalid_action"}


def A(token: str) -> int:
    """The action that appends ``token``."""
    return DEFAULT_VOCABULARY.tokens.index(token)


def make(env_id: str = "NASFashionMini-v0", data_root: Path | None = None, **overrides) -> gym.Env:
    # on the CPU even where there is a GPU: same seed, same rewards is promised on the CPU
    kwargs = dict(TINY_CHILD, device="cpu")
    if env_id != "NASFashionMini-v0":
        assert data_root is not None
        kwargs["data_dir"] = str(data_root)
    return gym.make(env_id, **{**kwargs, **overrides})


def mini(**overrides) -> NASEnv:
    """The unwrapped offline env at its registered 14x14, with a tiny budget."""
    env = make(**overrides).unwrapped
    assert isinstance(env, NASEnv)
    return env


def run(
    env: gym.Env, actions: list[int], seed: int | None = 0
) -> tuple[list[float], list[dict], list[np.ndarray]]:
    obs, info = env.reset(seed=seed)
    rewards, infos, observations = [], [info], [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        observations.append(obs)
        assert not truncated
    return rewards, infos, observations


# -- registration and import --------------------------------------------------------------------


def test_import_registers_ids_without_torch() -> None:
    script = (
        "import json, sys\n"
        "import gymnasium as gym\n"
        "import nas_gym\n"
        "from nas_gym import Architecture\n"
        "print(json.dumps(dict(ids=sorted(i for i in gym.registry if i.startswith('NAS')),\n"
        "    torch='torch' in sys.modules, arch=str(Architecture.parse('C32k3-MP2')))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(IDS) <= set(answer["ids"])
    assert answer["torch"] is False
    assert answer["arch"] == "C32k3-MP2"


def test_public_names() -> None:
    assert nas_gym.Architecture is Architecture
    assert set(IDS) <= set(nas_gym.ENV_IDS)
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert spec.entry_point == "nas_gym.envs:NASEnv"  # a string: nothing heavy is imported
        json.dumps(spec.kwargs)  # flat and JSON-serialisable


@pytest.mark.parametrize("env_id", IDS)
def test_spaces(env_id: str, data_root: Path) -> None:
    env = make(env_id, data_root)
    assert env.action_space == gym.spaces.Discrete(24)
    assert env.observation_space == gym.spaces.MultiDiscrete([25] * 15)
    env.close()


def test_registered_configuration_is_used_and_overridable() -> None:
    env = gym.make("NASFashionMini-v0").unwrapped
    assert env.evaluator.dataset == "fashion_mini"
    assert env.evaluator.epochs == gym.spec("NASFashionMini-v0").kwargs["epochs"]
    assert env.image_size == 14
    assert mini(epochs=0.25, image_size=10).evaluator.epochs == 0.25
    assert mini(image_size=10).image_size == 10


# -- API checkers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_env_checker(env_id: str, data_root: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    env = make(env_id, data_root)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_sb3_env_checker(env_id: str, data_root: Path) -> None:
    from stable_baselines3.common.env_checker import check_env

    env = make(env_id, data_root)
    check_env(env.unwrapped, warn=True)
    env.close()


# -- determinism and info -------------------------------------------------------------------------


def _assert_infos_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert np.array_equal(a[key], b[key])
        else:
            assert a[key] == b[key], key


def test_same_seed_same_actions_same_rewards_and_infos() -> None:
    actions = [A("C32k3"), A("R64s2"), A("MP2"), A("C64k1"), HEAD]
    r1, i1, o1 = run(mini(), actions, seed=7)
    r2, i2, o2 = run(mini(), actions, seed=7)  # a fresh env, a fresh (in-memory) store
    assert r1 == r2
    for a, b in zip(i1, i2, strict=True):
        _assert_infos_equal(a, b)
    for a, b in zip(o1, o2, strict=True):
        assert np.array_equal(a, b)


def test_another_seed_trains_other_children() -> None:
    env = mini()
    run(env, [A("C32k3"), A("C64k3")], seed=1)
    assert env.evaluator.trainings == 2
    run(env, [A("C32k3"), A("C64k3")], seed=2)
    assert env.evaluator.trainings == 4


def test_info_holds_the_contract_and_nothing_that_varies() -> None:
    env = mini()
    _, infos, observations = run(env, [A("C32k3"), A("MP2")])
    for info in infos:
        assert set(info) == INFO_KEYS  # no seconds, no cache hits
        assert isinstance(info["arch"], str)
        assert 0.0 <= info["accuracy"] <= 1.0
        assert isinstance(info["num_params"], int)
        assert info["action_mask"].dtype == np.int8 and info["action_mask"].shape == (24,)
    assert infos[0]["arch"] == "" and infos[0]["num_params"] == 0
    assert infos[-1]["arch"] == "C32k3-MP2"
    assert infos[-1]["num_params"] == env.evaluator.num_params(Architecture.parse("C32k3-MP2")) > 0
    for obs in observations:
        assert env.observation_space.contains(obs)
    assert list(observations[-1][:3]) == [A("C32k3") + 1, A("MP2") + 1, 0]


# -- masks and invalid actions --------------------------------------------------------------------


def test_head_is_masked_at_the_start() -> None:
    env = mini()
    _, info = env.reset(seed=0)
    mask = env.action_masks()
    assert not mask[HEAD] and mask[:HEAD].all()
    assert np.array_equal(mask, info["action_mask"])
    env.step(A("C32k3"))
    assert env.action_masks()[HEAD]


def test_masked_head_ends_the_episode_with_zero() -> None:
    env = mini()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(HEAD)
    assert reward == 0.0 and terminated and not truncated
    assert info["invalid_action"] is True
    assert not obs.any()
    assert env.evaluator.trainings == 0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(A("C32k3"))


def test_layer_that_shrinks_below_1x1_is_masked() -> None:
    env = mini()  # 14x14: MP3 -> 6, MP3 -> 2, a third MP3 would leave 0
    env.reset(seed=0)
    env.step(A("MP3"))
    _, _, terminated, _, info = env.step(A("MP3"))
    assert not terminated
    assert not info["action_mask"][A("MP3")] and not info["action_mask"][A("AP3")]
    assert info["action_mask"][A("MP2")] and info["action_mask"][A("C32k3")]
    before = env.evaluator.trainings
    _, reward, terminated, _, info = env.step(A("MP3"))
    assert reward == 0.0 and terminated and info["invalid_action"]
    assert env.evaluator.trainings == before
    assert info["arch"] == "MP3-MP3"


@pytest.mark.parametrize("action", [24, -1, 2.5, "a", 3.0, None, [1, 2]])
def test_out_of_space_action_raises_and_keeps_the_store(tmp_path: Path, action) -> None:
    path = tmp_path / "results.sqlite"
    env = mini(store=str(path))
    env.reset(seed=0)
    env.step(A("C32k3"))
    env.step(A("MP2"))
    with pytest.raises(ValueError, match="outside the action space") as error:
        env.step(action)
    assert "0..23" in str(error.value)
    assert len(ResultStore(path)) == 2
    # the episode goes on as if the bad call had not happened
    _, reward, terminated, _, info = env.step(A("C64k3"))
    assert info["arch"] == "C32k3-MP2-C64k3" and not terminated and not info["invalid_action"]
    assert len(ResultStore(path)) == 3


def test_out_of_space_through_gym_make_wrappers() -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(24)
    env.close()


def test_numpy_actions_are_accepted() -> None:
    env = mini()
    env.reset(seed=0)
    assert env.step(np.int64(A("C32k3")))[4]["arch"] == "C32k3"
    assert env.step(np.array([A("MP2")]))[4]["arch"] == "C32k3-MP2"  # what a vectorised agent sends


# -- episode end and rewards ----------------------------------------------------------------------


def test_max_layers_terminates() -> None:
    env = mini(max_layers=3)
    assert env.observation_space == gym.spaces.MultiDiscrete([25] * 3)
    rewards, infos, _ = run(env, [A("C32k3"), A("C32k1"), A("DR")])
    assert infos[-1]["arch"] == "C32k3-C32k1-DR"
    assert all(0.0 <= r <= 1.0 for r in rewards)
    # after 3 layers only HEAD is left in the mask, and the episode has ended
    assert infos[-1]["action_mask"].tolist() == [0] * 23 + [1]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(HEAD)


def test_terminated_flags() -> None:
    env = mini(max_layers=3)
    env.reset(seed=0)
    flags = [env.step(a)[2] for a in (A("C32k3"), A("C32k1"), A("DR"))]
    assert flags == [False, False, True]
    env.reset(seed=0)
    flags = [env.step(a)[2] for a in (A("C32k3"), HEAD)]
    assert flags == [False, True]


def test_prefix_rewards_are_the_prefix_accuracies() -> None:
    env = mini()
    actions = [A("C32k3"), A("R64"), A("AP2")]
    rewards, infos, _ = run(env, [*actions, HEAD])
    for t in range(1, len(actions) + 1):
        arch = infos[t]["arch"]
        stored = env.evaluator.lookup(arch, env.train_seed)
        assert stored is not None and stored.accuracy == rewards[t - 1] == infos[t]["accuracy"]


def test_head_returns_the_closed_accuracy_without_training() -> None:
    env = mini()
    env.reset(seed=0)
    env.step(A("C32k3"))
    _, reward, _, _, _ = env.step(A("C64k5"))
    trainings = env.evaluator.trainings
    obs, head_reward, terminated, _, info = env.step(HEAD)
    assert terminated and head_reward == reward == info["accuracy"]
    assert info["arch"] == "C32k3-C64k5" and not info["invalid_action"]
    assert env.evaluator.trainings == trainings
    assert DEFAULT_VOCABULARY.decode(obs) == Architecture.parse("C32k3-C64k5")


def test_cached_step_trains_nothing() -> None:
    env = mini()
    actions = [A("C32k3"), A("R32"), HEAD]
    first, _, _ = run(env, actions, seed=3)
    trainings = env.evaluator.trainings
    assert trainings == 2
    second, _, _ = run(env, actions, seed=3)
    assert second == first
    assert env.evaluator.trainings == trainings
    run(env, [A("C32k3"), A("R64")], seed=None)  # reset() without a seed keeps the train seed
    assert env.evaluator.trainings == trainings + 1


def test_store_kwarg_is_shared_between_envs(tmp_path: Path) -> None:
    path = str(tmp_path / "results.sqlite")
    actions = [A("C32k5"), A("MP2"), HEAD]
    first = mini(store=path)
    r1, _, _ = run(first, actions, seed=0)
    second = mini(store=path)
    r2, _, _ = run(second, actions, seed=0)
    assert r1 == r2
    assert first.evaluator.trainings == 2 and second.evaluator.trainings == 0


def test_final_reward_mode() -> None:
    env = mini(reward="final")
    actions = [A("C32k3"), A("MP2"), A("C64k3")]
    rewards, infos, _ = run(env, [*actions, HEAD])
    assert rewards[:3] == [0.0, 0.0, 0.0]
    assert env.evaluator.trainings == 1  # only the closed architecture was trained
    stored = env.evaluator.lookup("C32k3-MP2-C64k3", env.train_seed)
    assert stored is not None and rewards[-1] == stored.accuracy == infos[-1]["accuracy"]
    assert all(info["num_params"] > 0 for info in infos[1:])


def test_final_reward_mode_at_max_layers() -> None:
    env = mini(reward="final", max_layers=2)
    rewards, infos, _ = run(env, [A("C32k3"), A("C32k1")])
    assert rewards[0] == 0.0 and rewards[1] == infos[-1]["accuracy"]
    assert env.evaluator.trainings == 1


def test_improvement_rewards_sum_to_the_final_accuracy(tmp_path: Path) -> None:
    path = str(tmp_path / "results.sqlite")
    actions = [A("C32k3"), A("R64s2"), A("C128k1"), A("AP2")]
    prefix_rewards, _, _ = run(mini(store=path), [*actions, HEAD], seed=5)
    env = mini(store=path, reward="improvement")
    rewards, infos, _ = run(env, [*actions, HEAD], seed=5)
    assert env.evaluator.trainings == 0  # the prefix env's rows answer every step
    assert rewards[-1] == 0.0
    assert sum(rewards) == pytest.approx(infos[-1]["accuracy"], abs=1e-9)
    assert infos[-1]["accuracy"] == prefix_rewards[-1]
    expected = np.diff([0.0, *prefix_rewards[:-1]])
    assert np.allclose(rewards[:-1], expected, atol=1e-12)


def test_render_ansi() -> None:
    env = mini(render_mode="ansi")
    env.reset(seed=0)
    assert "empty" in env.render()
    env.step(A("C32k3"))
    assert env.render().startswith("C32k3 -> ")


# -- the poster's best architecture ---------------------------------------------------------------


def test_poster_architecture_round_trips_and_trains() -> None:
    arch = Architecture.parse(POSTER_BEST)
    assert str(arch) == POSTER_BEST and len(arch) == 9
    actions = DEFAULT_VOCABULARY.actions_of(arch)
    assert DEFAULT_VOCABULARY.architecture(actions) == arch
    assert DEFAULT_VOCABULARY.is_valid(arch, 28)

    env = mini(image_size=28)  # the poster's 28x28 input
    _, info = env.reset(seed=0)
    for t, action in enumerate(actions, start=1):
        assert info["action_mask"][action]
        obs, reward, terminated, _, info = env.step(action)
        assert not terminated and not info["invalid_action"]
        assert 0.0 <= reward <= 1.0
        assert info["arch"] == str(arch[:t])
    assert DEFAULT_VOCABULARY.decode(obs) == arch
    assert info["num_params"] > 0
    assert env.evaluator.trainings == 9  # every prefix trained once
    _, reward, terminated, _, info = env.step(HEAD)
    assert terminated and info["arch"] == POSTER_BEST
    row = env.evaluator.lookup(POSTER_BEST, env.train_seed)
    assert row is not None and row.status == "ok" and row.accuracy == reward


# -- SB3 ------------------------------------------------------------------------------------------


class _Recorder(gym.Wrapper):
    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.invalid = 0
        self.steps = 0
        self.mask_calls = 0

    def step(self, action):
        out = super().step(action)
        self.steps += 1
        self.invalid += bool(out[4]["invalid_action"])
        return out

    def action_masks(self) -> np.ndarray:
        self.mask_calls += 1
        return self.env.unwrapped.action_masks()


def test_maskable_ppo_learns_on_the_mini_env() -> None:
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.utils import is_masking_supported

    env = _Recorder(make(image_size=14))
    assert is_masking_supported(env)
    model = MaskablePPO(
        "MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu", verbose=0
    )
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert env.steps == model.num_timesteps
    assert env.mask_calls >= env.steps  # a mask for every action it chose
    assert env.invalid == 0  # so it never chose a masked action
    evaluator = env.unwrapped.evaluator
    assert 0 < evaluator.trainings < env.steps  # repeated prefixes came from the store
    action, _ = model.predict(env.reset(seed=0)[0], action_masks=env.action_masks(), deterministic=True)
    assert int(action) != HEAD  # HEAD is masked on the empty architecture


# -- bad kwargs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(epochs=0), "epochs"),
        (dict(epochs=-1.0), "epochs"),
        (dict(train_size=-1), "train_size"),
        (dict(train_size=0), "train_size"),
        (dict(width=0), "width"),
        (dict(val_size=0), "val_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0), "lr"),
        (dict(image_size=0), "image_size"),
        (dict(max_layers=0), "max_layers"),
        (dict(reward="best"), "reward"),
        (dict(time_limit=0), "time_limit"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_child_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make(**kwargs)


@pytest.mark.parametrize("env_id", ["NASMnist-v0", "NASCifar10-v0"])
def test_bad_data_dir_names_it(tmp_path: Path, env_id: str) -> None:
    missing = tmp_path / "no_such_folder"
    with pytest.raises(ValueError, match="no_such_folder"):
        gym.make(env_id, data_dir=str(missing), **TINY_CHILD)


def test_data_dir_without_the_data_names_what_was_searched(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NAS_GYM_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    env = gym.make("NASCifar10-v0", data_dir=str(tmp_path), **TINY_CHILD)  # data load on first step
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        env.step(A("C32k3"))
    assert env.unwrapped.evaluator.trainings == 0


def test_bad_store_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(str(tmp_path))):
        make(store=str(tmp_path))


def test_subprocess_env_is_reproducible(tmp_path: Path) -> None:
    # the same seed in another process (the way a vectorised env runs) gives the same rewards
    actions = [A("C32k3"), A("AP2")]
    rewards, _, _ = run(mini(), actions, seed=11)
    script = (
        "import json, sys\n"
        "import gymnasium as gym\n"
        "import nas_gym\n"
        "env = gym.make('NASFashionMini-v0', **json.loads(sys.argv[1]))\n"
        "env.reset(seed=11)\n"
        "print(json.dumps([env.step(a)[1] for a in json.loads(sys.argv[2])]))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(dict(TINY_CHILD, device="cpu")), json.dumps(actions)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == rewards


def test_every_training_kwarg_of_nas_env_reaches_its_evaluator(tmp_path) -> None:
    """Every setting of a child's configuration is a gym.make kwarg of NASEnv and reaches its
    evaluator's configuration unchanged; a kwarg that is neither is refused by name."""
    from nas_gym.config import ChildConfig
    from nas_gym.envs import NASEnv

    values = dict(dataset="mnist", data_dir=str(tmp_path), download=False, device="cpu", epochs=0.25,
                  train_size=64, val_size=32, batch_size=16, lr=0.01, image_size=7, width=0.5,
                  time_limit=30.0, threads=1, isolate=False, hang_limit=5.0, retry_failed=True,
                  inherit=True, inherit_epochs=0.5, split_seed=3, model_builder="synthetic:build",
                  weights_cache_mb=64.0)  # fmt: skip
    assert set(values) == set(ChildConfig.names())
    evaluator = NASEnv(**values).evaluator
    assert evaluator.child == ChildConfig(**values)
    config = ChildConfig(**values)
    assert NASEnv(config, epochs=0.5).evaluator.child == config.replace(epochs=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        NASEnv(epoch=2)


def test_every_evaluator_satisfies_the_protocol_and_a_stranger_is_refused() -> None:
    from synthetic import FunctionEvaluator, target_match

    from nas_gym.envs import NASEnvBase
    from nas_gym.evaluation import ArchEvaluator, Evaluator
    from nas_gym.surrogate import SurrogateEvaluator, load_surrogate
    from nas_gym.tabular import TableEvaluator, load_table

    evaluators = [
        Evaluator(dataset="fashion_mini", train_size=64, val_size=32),
        TableEvaluator(load_table()),
        SurrogateEvaluator(load_surrogate()),
        FunctionEvaluator(target_match),
    ]
    assert all(isinstance(e, ArchEvaluator) for e in evaluators)

    class NoLookup:
        image_size, trainings, ledger_tag, result_store = 14, 0, "", None

        def evaluate(self, arch, seed): ...

        def num_params(self, arch): ...

    with pytest.raises(TypeError, match="not an evaluator: it lacks .*lookup.*key_of") as error:
        NASEnvBase(NoLookup())  # type: ignore[arg-type]
    assert "evaluate" not in str(error.value).split("lacks")[1].split("(")[0]  # it has that one


def test_reset_options_choose_the_epochs_of_an_episode(tmp_path: Path, torch_single_thread) -> None:
    """``reset(options={"epochs": e})`` trains that episode's children for e epochs, filed under
    that configuration's key (its curve ends there); a reset without it goes back to the env's own;
    the charge of a step is the training it started."""
    store = tmp_path / "s.sqlite"
    env = make(store=str(store), threads=1)
    evaluator = env.unwrapped.evaluator
    env.reset(seed=0, options={"epochs": 1.0})
    _, long_reward, *_ = env.step(0)
    env.reset()
    _, own_reward, *_ = env.step(0)
    arch = env.unwrapped.arch
    rows = {json.loads(r.config)["epochs"]: r for r in ResultStore(store).rows()}
    assert sorted(rows) == [0.5, 1.0] and evaluator.trainings == 2
    assert rows[1.0].accuracy == long_reward and rows[0.5].accuracy == own_reward
    assert [e for e, _, _ in rows[1.0].curve_points()] == [1.0]
    assert evaluator.recorded_seconds(arch, 0, epochs=1.0) == rows[1.0].train_seconds
    env.reset(options={"epochs": 1})  # stored: answered without training
    assert env.step(0)[1] == long_reward and evaluator.trainings == 2
    for bad in (0, -1.0, float("nan"), "3", True):
        with pytest.raises(ValueError, match="'epochs' must be a positive number"):
            env.reset(options={"epochs": bad})
    with pytest.raises(ValueError, match="unknown reset option 'layers'"):
        env.reset(options={"layers": 3})
    assert len(list(ResultStore(store).rows())) == 2  # nothing lost to bad options
    env.close()


def test_what_kind_of_env_an_id_is_is_asked_one_way() -> None:
    """Before an env is made, ``env_kind(id)``; after, its evaluator's ``kind``: the same answer,
    and ``takes_epochs`` where children train and where a surrogate answers over fidelities (v2)."""
    from nas_gym.registration import env_kind

    ids = [i for i in gym.registry if i.startswith("NAS")]
    assert {env_kind(i) for i in ids} == {"train", "table", "surrogate"}
    from nas_gym.training.datasets import mini_dir, read_idx

    x = read_idx(mini_dir() / "train-images-idx3-ubyte.gz")[:100]  # NASImages-v0 needs data
    y = read_idx(mini_dir() / "train-labels-idx1-ubyte.gz")[:100].astype(np.int64)
    for env_id in ids:
        env = gym.make(env_id, **({"data": (x, y)} if env_id == "NASImages-v0" else {}))
        evaluator = env.unwrapped.evaluator
        over_fidelities = evaluator.kind == "train" or env_id == "NASSurrogate-v2"
        assert evaluator.kind == env_kind(env_id) and evaluator.takes_epochs == over_fidelities
        env.close()
    with pytest.raises(ValueError, match="unknown env id 'CartPole-v1'; known: NAS"):
        env_kind("CartPole-v1")


@pytest.mark.parametrize("env_id", ["NASTabular-v0", "NASSurrogate-v1", "NASFashionMini-v0"])
def test_the_mask_in_info_is_what_gymnasium_sample_takes(env_id: str, torch_single_thread) -> None:
    """``action_space.sample(mask=info["action_mask"])`` on every env (Gymnasium wants int8), and
    only allowed actions come out; action_masks() is the same array."""
    env = gym.make(env_id, **(dict(TINY_CHILD, max_layers=3) if env_id == "NASFashionMini-v0" else {}))
    env.action_space.seed(0)
    _, info = env.reset(seed=0)
    for _ in range(12):
        mask = info["action_mask"]
        assert mask.dtype == np.int8 and np.array_equal(mask, env.unwrapped.action_masks())
        action = env.action_space.sample(mask=mask)
        assert mask[action] == 1
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            _, info = env.reset()
    env.close()


def test_the_vector_env_masks_are_what_gymnasium_sample_takes() -> None:
    envs = gym.make_vec("NASSurrogate-v1", 4)
    _, info = envs.reset(seed=0)
    for _ in range(20):
        masks = info["action_mask"]
        assert masks.dtype == np.int8 and masks.shape == (4, 24)
        actions = np.array([envs.single_action_space.sample(mask=m) for m in masks])
        assert all(m[a] == 1 for m, a in zip(masks, actions, strict=True))
        _, _, _, _, info = envs.step(actions)
    envs.close()
