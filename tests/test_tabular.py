"""Tabular benchmarks: spaces, building a table from real trainings, the table file, NASTabular-v0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_gym
from nas_gym.build.table import build_table
from nas_gym.config import ChildConfig
from nas_gym.registration import ENV_IDS
from nas_gym.search_space import ArchitectureSyntaxError, OutOfSpaceError
from nas_gym.tabular import (
    MINI_SPACE,
    SHIPPED_TABLE,
    Space,
    Table,
    TableError,
    TableEvaluator,
    load_table,
)

# a real training in a fraction of a second: the shipped mini set, cut down
QUICK = dict(
    dataset="fashion_mini", train_size=1024, val_size=256, image_size=14, epochs=1.0,
    batch_size=64, lr=0.1, width=0.25, device="cpu", threads=1,
)  # fmt: skip


# -- spaces --------------------------------------------------------------------------------------


def test_space_round_trips_and_enumerates_every_fitting_architecture():
    space = Space.parse(MINI_SPACE)
    assert str(space) == MINI_SPACE and space.max_layers == 3 and len(space.tokens) == 8
    archs = space.architectures(14)
    # 8 + 64 + 512 sequences; AP3-AP3-AP3 (14 -> 6 -> 2 -> 0) is the one that does not fit
    assert len(archs) == 8 + 64 + 512 - 1
    assert len({str(a) for a in archs}) == len(archs)
    assert "AP3-AP3-AP3" not in {str(a) for a in archs}
    assert [len(a) for a in archs] == sorted(len(a) for a in archs)  # shortest first


@pytest.mark.parametrize(
    "text, error, words",
    [
        ("C32k3,MP2", ValueError, "TOKENS:DEPTH"),
        ("C32k3,MP2:x", ValueError, "TOKENS:DEPTH"),
        ("C32k3,XX9:2", ArchitectureSyntaxError, "XX9"),
        ("C32k3,C32k3:2", ValueError, "twice"),
        ("C32k3:0", ValueError, "depth"),
        (":2", ValueError, "at least one"),
    ],
)
def test_bad_space_names_the_problem(text, error, words):
    with pytest.raises(error, match=words):
        Space.parse(text)


# -- building from real trainings -----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    """A table of 6 architectures x 2 seeds, trained for real by 2 worker processes."""
    folder = tmp_path_factory.mktemp("table")
    out, store = folder / "t.json", folder / "t.sqlite"
    table = build_table(
        ChildConfig(**QUICK), Space.parse("C32k3,MP2:2"), [0, 1], out, store, "NASFashionMini-v0", workers=2
    )
    return table, out, store


def test_build_trains_every_architecture_and_seed_into_the_store(small_table):
    from nas_gym.evaluation import Evaluator, ResultStore

    table, out, store = small_table
    assert sorted(table.entries) == sorted(
        ["C32k3", "MP2", "C32k3-C32k3", "C32k3-MP2", "MP2-C32k3", "MP2-MP2"]
    )
    assert table.build["trained_in_last_invocation"] == 12
    evaluator = Evaluator(**QUICK, store=ResultStore(store))
    for entry in table:
        for column, seed in enumerate(table.seeds):
            row = evaluator.lookup(entry.arch, seed)
            assert row is not None and row.accuracy == entry.accuracy[column]
            assert entry.train_seconds[column] == pytest.approx(row.train_seconds, abs=1e-3)
    assert json.loads(evaluator.config_key) == table.config
    # a real training: better than chance (10%) somewhere, and the seeds differ somewhere
    accs = np.array([e.accuracy for e in table])
    assert accs.max() > 0.2 and (accs[:, 0] != accs[:, 1]).any()
    assert Table.load(out).entries == table.entries


def test_build_again_resumes_from_the_store(small_table, tmp_path):
    table, out, store = small_table
    import sqlite3

    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(store) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
        dst.execute("DELETE FROM results WHERE arch='MP2-C32k3' AND seed=1")
    again = build_table(
        ChildConfig(**QUICK), table.space, [0, 1], tmp_path / "t.json", copy, "NASFashionMini-v0", workers=1
    )
    assert again.build["trained_in_last_invocation"] == 1  # only the row that was gone
    assert {a: e.accuracy for a, e in again.entries.items()} == {
        a: e.accuracy for a, e in table.entries.items()
    }
    third = build_table(
        ChildConfig(**QUICK), table.space, [0, 1], tmp_path / "t.json", copy, "NASFashionMini-v0"
    )
    assert third.build["trained_in_last_invocation"] == 0


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "does not exist"),
        ("not json", "not a readable JSON"),
        ('{"format": "other"}', "not a nas-gym table"),
        ('{"format": "nas-gym-table/1", "seeds": [0]}', "damaged"),
    ],
)
def test_bad_table_file_names_the_file(tmp_path, content, words):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TableError, match=words) as info:
        Table.load(path)
    assert str(path) in str(info.value)


def test_a_row_without_a_value_per_seed_is_damaged(small_table, tmp_path):
    _, out, _ = small_table
    doc = json.loads(out.read_text())
    doc["rows"][0][2] = doc["rows"][0][2][:1]
    (tmp_path / "t.json").write_text(json.dumps(doc))
    with pytest.raises(TableError, match="one value per seed"):
        Table.load(tmp_path / "t.json")


# -- the evaluator and the env over a table -------------------------------------------------------


def test_table_evaluator_counts_each_architecture_and_column_once(small_table):
    table, _, _ = small_table
    ev = TableEvaluator(table)
    first = ev.evaluate("C32k3-MP2", seed=0)
    assert not first.cached and first.accuracy == table.get("C32k3-MP2").accuracy[0]
    assert ev.trainings == 1 and ev.train_seconds == pytest.approx(table.get("C32k3-MP2").train_seconds[0])
    again = ev.evaluate("C32k3-MP2", seed=2)  # seed 2 reads column 0 again: a store hit
    assert again.cached and again.train_seconds == 0.0 and ev.trainings == 1
    other = ev.evaluate("C32k3-MP2", seed=1)
    assert not other.cached and other.accuracy == table.get("C32k3-MP2").accuracy[1] and ev.trainings == 2
    assert ev.lookup("C32k3-MP2", 3) is not None and ev.lookup("MP2", 0) is None
    mean = TableEvaluator(table, accuracy="mean").evaluate("MP2", seed=5)
    assert mean.accuracy == pytest.approx(np.mean(table.get("MP2").accuracy))


def test_table_evaluator_rejects_what_the_table_does_not_hold(small_table):
    table, _, _ = small_table
    ev = TableEvaluator(table)
    with pytest.raises(OutOfSpaceError, match="not in the vocabulary"):
        ev.evaluate("C64k3", 0)
    with pytest.raises(OutOfSpaceError, match="exceed"):
        ev.evaluate("C32k3-C32k3-C32k3", 0)
    with pytest.raises(ValueError, match="accuracy must be"):
        TableEvaluator(table, accuracy="best")
    assert ev.trainings == 0


def test_tabular_env_steps_like_the_real_env(small_table):
    table, out, _ = small_table
    env = gym.make("NASTabular-v0", table=str(out))
    assert env.action_space == gym.spaces.Discrete(3)
    assert env.observation_space == gym.spaces.MultiDiscrete([4, 4])
    obs, info = env.reset(seed=1)
    assert obs.tolist() == [0, 0] and info["action_mask"].tolist() == [1, 1, 0]
    obs, reward, terminated, _, info = env.step(1)  # MP2
    assert reward == table.get("MP2").accuracy[1] and info["arch"] == "MP2" and not terminated
    assert info["train_seconds"] == table.get("MP2").train_seconds[1]
    assert info["num_params"] == table.get("MP2").num_params
    obs, reward, terminated, _, info = env.step(0)  # MP2-C32k3: the depth of the table ends it
    assert terminated and obs.tolist() == [2, 1] and reward == table.get("MP2-C32k3").accuracy[1]
    env.reset()
    _, reward, terminated, _, info = env.step(2)  # HEAD on the empty architecture is masked
    assert terminated and reward == 0.0 and info["invalid_action"] and info["train_seconds"] == 0.0
    with pytest.raises(ValueError, match="outside the action space"):
        env.reset()
        env.step(3)


def test_tabular_env_final_reward_costs_only_the_closed_architecture(small_table):
    table, out, _ = small_table
    env = gym.make("NASTabular-v0", table=str(out), reward="final")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert reward == 0.0 and info["train_seconds"] == 0.0
    _, reward, terminated, _, info = env.step(2)  # HEAD closes C32k3
    assert terminated and reward == table.get("C32k3").accuracy[0]
    assert info["train_seconds"] == table.get("C32k3").train_seconds[0]
    assert env.unwrapped.evaluator.trainings == 1


def test_unknown_table_path_is_a_clear_error(tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        gym.make("NASTabular-v0", table=str(tmp_path / "missing.json"))


# -- the shipped table ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Table:
    return load_table()


def test_shipped_table_is_large_small_and_complete(shipped):
    assert SHIPPED_TABLE.stat().st_size < 2 * 1024 * 1024
    assert str(shipped.space) == MINI_SPACE and shipped.env_id == "NASFashionMini-v0"
    assert len(shipped) >= 500 and len(shipped.seeds) >= 2
    assert len(shipped) == len(shipped.space.architectures(shipped.image_size))
    assert all(s == "ok" for e in shipped for s in e.status)
    assert all(0.1 < a <= 1.0 for e in shipped for a in e.accuracy)
    for key in ("command", "date", "wall_seconds_last_invocation", "torch_threads_per_worker"):
        assert key in shipped.build


def test_shipped_table_is_at_the_configuration_of_the_mini_env(shipped):
    from nas_gym.evaluation import Evaluator

    config = ENV_IDS["NASFashionMini-v0"]
    evaluator = Evaluator(config, device="cpu", threads=int(shipped.build["torch_threads_per_worker"]))
    assert json.loads(evaluator.config_key) == shipped.config


@pytest.mark.slow
def test_every_shipped_architecture_reproduces_on_cpu(shipped):
    """Slow: the full check below, for many more architectures."""
    _check_reproduces(shipped, count=12, seed=1)


def test_three_shipped_architectures_reproduce_on_cpu(shipped):
    _check_reproduces(shipped, count=3, seed=0)


def _check_reproduces(shipped: Table, count: int, seed: int) -> None:
    """Re-train ``count`` architectures, picked at random by a generator seeded with ``seed`` (the
    same picks every run), with the table's budget, seed and thread count."""
    import torch

    from nas_gym.evaluation import Evaluator

    rng = np.random.default_rng(seed)
    names = list(shipped.entries)
    picks = [names[i] for i in rng.choice(len(names), size=count, replace=False)]
    budget = ENV_IDS["NASFashionMini-v0"]
    threads = torch.get_num_threads()
    torch.set_num_threads(int(shipped.build["torch_threads_per_worker"]))
    try:
        evaluator = Evaluator(budget, device="cpu", threads=int(shipped.build["torch_threads_per_worker"]))
        for arch in picks:
            column = int(rng.integers(len(shipped.seeds)))
            seed = shipped.seeds[column]
            got = evaluator.evaluate(arch, seed).accuracy
            want = shipped.get(arch).accuracy[column]
            assert abs(got - want) <= 0.005, f"{arch} seed {seed}: retrained {got:.4f}, table {want:.4f}"
    finally:
        torch.set_num_threads(threads)


def test_shipped_env_passes_both_env_checkers():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gym.make("NASTabular-v0")
    assert env.action_space == gym.spaces.Discrete(9)
    gym_check(env.unwrapped)
    sb3_check(env.unwrapped)
    for accuracy in ("mean",):
        gym_check(gym.make("NASTabular-v0", accuracy=accuracy).unwrapped)


# MaskablePPO learning on this env: tests/test_sb3_agents.py


# -- the command line -----------------------------------------------------------------------------


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(nas_gym.__file__).parents[1])},
    )


def test_table_build_and_show_from_the_command_line(tmp_path):
    sets = [f"--set={k}={v}" for k, v in QUICK.items() if k not in ("dataset", "image_size", "lr", "device")]
    out = tmp_path / "t.json"
    proc = _cli(
        ["table", "build", "--space", "C32k3,AP3:2", "--seeds", "2", "--out", str(out), *sets], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    table = Table.load(out)
    assert len(table) == 6 and table.seeds == (0, 1)  # 2 + 4 architectures, all fit 14x14
    assert (tmp_path / "t.json.sqlite").exists()
    assert "nas-gym table build" in table.build["command"]
    shown = _cli(["table", "show", str(out)], tmp_path)
    assert shown.returncode == 0, shown.stderr
    arch, best = table.optimum()
    assert (
        "6 architectures x 2 seeds" in shown.stdout and arch in shown.stdout and f"{best:.2%}" in shown.stdout
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["table", "build", "--space", "C32k3,QQ:2", "--out", "t.json"], "QQ"),
        (
            ["table", "build", "--space", "C32k3:2", "--out", "t.json", "--env", "NASTabular-v0"],
            "trains children",
        ),
        (["table", "build", "--space", "C32k3:2", "--out", "t.json", "--env", "Nope-v0"], "unknown env"),
        (["table", "show", "missing.json"], "does not exist"),
    ],
)
def test_bad_table_command_is_one_line(tmp_path, capsys, monkeypatch, args, words):
    from agents.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (tmp_path / "t.json").exists()


def test_every_status_a_row_can_hold_is_a_known_status():
    # the table writes "mixed" (its seeds disagree); STATUSES used to leave it out
    from nas_gym.store import FINAL_STATUSES, RETRYABLE_STATUSES, STATUSES
    from nas_gym.tabular import load_table

    assert set(FINAL_STATUSES) | set(RETRYABLE_STATUSES) <= set(STATUSES)
    from nas_gym.store import RETRIED_AT_ONCE
    from nas_gym.training import trainer

    assert set(RETRIED_AT_ONCE) <= set(RETRYABLE_STATUSES) and set(trainer.STATUSES) <= set(STATUSES)
    assert {s for e in load_table() for s in e.status} <= set(STATUSES)


def test_every_evaluator_answers_the_whole_contract_without_probing() -> None:
    """The table and the surrogate answer every method of ArchEvaluator: claims through their
    store, close as a no-op, and a curriculum of epochs refused with a clear error."""
    import gymnasium as gym

    from nas_gym.evaluation import ArchEvaluator

    for env_id in ("NASTabular-v0", "NASSurrogate-v0"):
        env = gym.make(env_id)
        evaluator = env.unwrapped.evaluator
        assert isinstance(evaluator, ArchEvaluator)
        arch = "C32k3" if env_id == "NASSurrogate-v0" else next(iter(evaluator.table.entries))
        assert evaluator.claim(arch, 0) and not evaluator.claim(arch, 0)  # the second asker waits
        evaluator.release([arch], 0)
        assert evaluator.claim(arch, 0)
        assert not evaluator.takes_epochs and evaluator.epochs == 3.0
        assert evaluator.kind == ("surrogate" if env_id == "NASSurrogate-v0" else "table")
        with pytest.raises(ValueError, match="answers children trained 3 epochs only"):
            evaluator.evaluate(arch, 0, epochs=1.0)
        with pytest.raises(ValueError, match="answers children trained 3 epochs only"):
            env.reset(options={"epochs": 9})
        assert env.reset(options={"epochs": 3.0})[1]["arch"] == ""
        assert evaluator.training_plan(arch, 0) == [arch]
        env.close()
        env.close()  # closing twice is harmless
