"""A child's training configuration as a value (nas_gym.config): one place for the settings, and
store keys that never change, so every stored training, the shipped table and the surrogate's
samples stay valid."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import gymnasium as gym
import pytest

import nas_gym  # noqa: F401  registers the ids
from nas_gym.config import ChildConfig
from nas_gym.evaluation import Evaluator
from nas_gym.registration import ENV_IDS

KEYS = json.loads((Path(__file__).parent / "data" / "store_keys.json").read_text())["cases"]


def _evaluator_key(env_id: str, overrides: dict) -> str:
    import torch

    device = str(overrides.get("device", "cpu"))
    if device.startswith("cuda"):  # no GPU needed to compute a GPU key (gym.make refuses a missing
        # device): the env's configuration, made as NASEnv makes it, with the device resolved here
        evaluator = Evaluator(ChildConfig.from_kwargs({**gym.spec(env_id).kwargs, **overrides}))
    else:
        evaluator = gym.make(env_id, **overrides).unwrapped.evaluator
    if device.startswith("cuda"):
        evaluator.setup._device = torch.device(device)
    return evaluator.config_key


@pytest.mark.parametrize(
    "case", KEYS, ids=lambda c: f"{c['env_id']}-{'-'.join(map(str, c['overrides'].values()))}"
)
def test_every_registered_id_keeps_its_store_key(case: dict) -> None:
    # the keys were written by the code before the configuration became a value
    assert _evaluator_key(case["env_id"], case["overrides"]) == case["key"]


LOOKUP_KEYS = json.loads((Path(__file__).parent / "data" / "lookup_store_keys.json").read_text())["cases"]


@pytest.mark.parametrize(
    "case", LOOKUP_KEYS, ids=lambda c: f"{c['env_id']}-{'-'.join(map(str, c['kwargs'].values()))}-{c['seed']}"
)
def test_the_table_and_surrogate_envs_file_their_answers_under_the_same_keys(case: dict) -> None:
    # a search's store of table or surrogate answers keeps serving it (resume, shared stores)
    evaluator = gym.make(case["env_id"], **case["kwargs"]).unwrapped.evaluator
    evaluator.evaluate("C32k3", case["seed"])
    row = evaluator.lookup("C32k3", case["seed"])
    assert (row.dataset, row.config, row.seed) == (case["dataset"], case["key"], case["stored_seed"])


def test_the_keys_on_record_cover_every_registered_id() -> None:
    assert {c["env_id"] for c in KEYS} == set(ENV_IDS)


def test_the_shipped_table_and_samples_are_filed_under_the_mini_env_key() -> None:
    from nas_gym.build.samples import SampleSet
    from nas_gym.tabular import load_table

    key = json.loads(ChildConfig.from_kwargs(gym.spec("NASFashionMini-v0").kwargs).key("cpu", 1))
    assert load_table().config == key
    data = Path(nas_gym.__file__).parent / "data" / "surrogate" / "fashion_mini_samples.json"
    top = Path(__file__).parents[1] / "benchmarks" / "data" / "surrogate_top" / "samples.json"
    for path in (data, top):
        assert SampleSet.load(path).config == key, path


def test_registered_ids_are_configurations_and_make_the_env() -> None:
    for env_id, config in ENV_IDS.items():
        assert isinstance(config, ChildConfig)
        assert ChildConfig.from_kwargs(gym.spec(env_id).kwargs) == config
    env = gym.make("NASFashionMini-v0", epochs=0.5)
    assert env.unwrapped.evaluator.child == ENV_IDS["NASFashionMini-v0"].replace(epochs=0.5)


def test_settings_that_are_not_a_childs_are_left_to_their_owners() -> None:
    config = ChildConfig.from_kwargs(
        {"dataset": "fashion_mini", "train_size": 64, "val_size": 32, "reward": "final"}
    )
    assert config.train_size == 64 and not hasattr(config, "reward")
    with pytest.raises(TypeError, match="reward"):
        Evaluator(dataset="fashion_mini", train_size=64, val_size=32, reward="final")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"val_size": 0}, "val_size must be a positive int"),
        ({"train_size": 1.5}, "train_size must be a positive int or None"),
        ({"image_size": 99}, "image_size 99 exceeds fashion_mini's 28"),
        ({"width": -1}, "width must be a positive number"),
        ({"threads": True}, "threads must be a positive int or None"),
        ({"epochs": 0}, "epochs must be a positive number"),
        ({"batch_size": 2.5}, "batch_size must be an int"),
        ({"time_limit": -3}, "time_limit must be > 0"),
        ({"inherit": "yes"}, "inherit must be true or false"),
        ({"inherit_epochs": float("nan")}, "inherit_epochs must be a positive number"),
        ({"hang_limit": 0}, "hang_limit must be a positive number"),
        ({"data_dir": "/no/such/folder"}, "data_dir '/no/such/folder' does not exist"),
    ],
)
def test_a_bad_setting_is_refused_by_name(change: dict, message: str) -> None:
    base = {"dataset": "fashion_mini", "train_size": 64, "val_size": 32}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ChildConfig(**{**base, **change})
    with pytest.raises(ValueError, match="epochs must be a positive number"):
        ChildConfig(**base).replace(epochs=-1)  # a changed copy is checked again


def test_a_configuration_is_a_value() -> None:
    config = ENV_IDS["NASFashionMini-v0"]
    assert pickle.loads(pickle.dumps(config)) == config and hash(config) == hash(config.replace())
    with pytest.raises(AttributeError):
        config.epochs = 2.0  # type: ignore[misc]
    assert ChildConfig(**config.kwargs()) == config
    # a request for other epochs (a curriculum) is filed under its own key; the evaluator's
    # configuration never changes
    evaluator = Evaluator(config, threads=1)
    before = evaluator.config_key
    assert evaluator.setup.request_config(1.5) == config.replace(epochs=1.5, threads=1)
    assert evaluator.key_of(1.5) != before and evaluator.key_of(3.0) == evaluator.key_of(None) == before
    assert evaluator.child == config.replace(threads=1) and not hasattr(evaluator, "set_epochs")


def test_an_ids_spec_keeps_its_settings_as_written_so_older_runs_resume() -> None:
    # a search's run.json records the env kwargs, and resuming compares them: the spec holds the
    # settings the budget sets, not every default of the configuration
    assert gym.spec("NASFashionMini-v0").kwargs == {
        "dataset": "fashion_mini", "train_size": 8000, "val_size": 2000, "image_size": 14,
        "epochs": 3.0, "batch_size": 64, "lr": 0.1, "width": 0.25,
    }  # fmt: skip
    assert gym.spec("NASCifar10-v0").kwargs == {
        "dataset": "cifar10", "train_size": 45000, "val_size": 5000, "epochs": 5.0,
        "batch_size": 256, "lr": 0.1, "width": 1.0,
    }  # fmt: skip
