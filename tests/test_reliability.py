"""A search survives anything one child does, and never gets a training for free.

Children in a watched worker process (hangs and crashes in native code become statuses), the
oneDNN kernel that hung strided 1x1 projections on AVX2 CPUs, which failures are retried, and an
exact count of trainings whatever interrupts a search.
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import TINY_CHILD

import nas_gym  # noqa: F401  (registers the envs)
from agents.common.history import History, HistoryRow
from agents.common.tracked_env import TrackedEnv
from nas_gym.envs import NASEnvBase
from nas_gym.evaluation import Evaluator, ResultStore, StoredResult
from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture

TESTS = Path(__file__).parent
MINI = dict(dataset="fashion_mini", train_size=8_000, val_size=2_000, image_size=14, epochs=3.0,
            batch_size=64, lr=0.1, width=0.25, device="cpu", threads=1)  # fmt: skip
SMALL = dict(dataset="fashion_mini", image_size=14, device="cpu", threads=1, **TINY_CHILD)


@pytest.fixture
def avx2_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN's AVX2 kernels, also on an AVX-512 machine (the worker processes inherit it)."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")


def _fitting(archs: list[Architecture], size: int = 14) -> list[Architecture]:
    return [a for a in archs if a.fits(size)]


def _layers() -> list:
    return list(DEFAULT_VOCABULARY.layers)


def _train_all_under_watchdog(archs: list[Architecture], **overrides) -> list[str]:
    """Train every architecture in a watched worker; the ones that hung, crashed or erred."""
    evaluator = Evaluator(**{**MINI, "isolate": True, "hang_limit": 30.0, **overrides})
    failures = []
    try:
        for arch in archs:
            result = evaluator.evaluate(arch, seed=0)
            if result.status not in ("ok", "diverged"):
                row = evaluator.stored(arch, 0)
                failures.append(f"{arch}: {result.status} ({row.message if row else ''})")
    finally:
        evaluator.close()
    return failures


# -- the cause: every shape the default vocabulary makes, trained under a watchdog ----------------


@pytest.mark.usefixtures("avx2_kernels")
def test_every_one_layer_architecture_trains_on_avx2_kernels() -> None:
    # the full mini budget (375 steps): R32s2 hung here from about step 36 before the fix
    archs = _fitting([Architecture((layer,)) for layer in _layers()])
    assert len(archs) == 23
    assert _train_all_under_watchdog(archs) == []


@pytest.mark.usefixtures("avx2_kernels")
def test_every_projection_after_every_first_layer_trains_on_avx2_kernels() -> None:
    # every residual block that needs a 1x1 projection (channels or size change), after every
    # first layer: the input channels (1, 8, 16, 32) and sizes (14, 7, 6, 5) a projection can see
    # at width 0.25. Half an epoch (62 steps) covers the step at which the hang came.
    residuals = [layer for layer in _layers() if layer.token.startswith("R")]
    archs = _fitting([Architecture((a, b)) for a in _layers() for b in residuals])
    assert len(archs) > 100
    assert _train_all_under_watchdog(archs, epochs=0.5) == []


@pytest.mark.slow
@pytest.mark.usefixtures("avx2_kernels")
def test_every_two_layer_architecture_trains_on_avx2_kernels() -> None:
    archs = _fitting([Architecture((a, b)) for a in _layers() for b in _layers()])
    assert _train_all_under_watchdog(archs) == []


# -- isolation: native hangs and crashes are statuses, the search goes on -------------------------


def test_native_hang_abort_and_exit_are_recorded_and_the_search_spends_its_budget(tmp_path: Path) -> None:
    evaluator = Evaluator(
        **{**SMALL, "isolate": True},
        hang_limit=3.0,
        model_builder="faulty:build_model",
        store=tmp_path / "s.sqlite",
    )
    env = TrackedEnv(NASEnvBase(evaluator), budget=8)
    env.reset(seed=0)
    plan = ["C32k3", "C128k5", "C128k4", "C128k3", "R32"]  # ok, abort, hang, exit, ok
    started = time.monotonic()
    accuracies = [env.evaluate(arch) for arch in plan]
    took = time.monotonic() - started
    statuses = [evaluator.stored(a, 0).status for a in plan]
    assert statuses == ["ok", "crashed", "hung", "crashed", "ok"]
    assert accuracies[0] > 0 and accuracies[4] > 0 and accuracies[1:4] == [0.0, 0.0, 0.0]
    assert "SIGABRT" in evaluator.stored("C128k5", 0).message
    assert "exit status 3" in evaluator.stored("C128k3", 0).message
    # each failure was retried once at once, and each attempt counted: 1 + 2 + 2 + 2 + 1
    assert env.exhausted and env.spent == 8 == evaluator.result_store.trainings()
    assert [r.attempts for r in map(lambda a: evaluator.stored(a, 0), plan)] == [1, 2, 2, 2, 1]
    assert took < 60  # two hangs of 3 s each, not forever
    evaluator.close()


def test_isolated_and_in_process_training_agree() -> None:
    a = Evaluator(**{**SMALL, "isolate": True}).evaluate("R32s2-C32k3", seed=1)
    b = Evaluator(**SMALL).evaluate("R32s2-C32k3", seed=1)
    assert a.status == b.status == "ok" and a.accuracy == b.accuracy


def test_a_worker_that_cannot_load_its_data_raises_a_clear_error(tmp_path: Path) -> None:
    evaluator = Evaluator(**{**SMALL, "dataset": "mnist", "data_dir": str(tmp_path), "isolate": True})
    with pytest.raises((ValueError, FileNotFoundError, RuntimeError), match="MNIST|mnist"):
        evaluator.evaluate("C32k3", seed=0)
    assert evaluator.result_store.trainings() == 0


# -- ways to lose or fake work (children trained but not reached: tests/test_budget.py) -------------


def _tabular(store: Path | None = None, **kwargs) -> gym.Env:
    return gym.make("NASTabular-v0", store=None if store is None else str(store), **kwargs)


def test_history_load_replaces_a_torn_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    rows = [HistoryRow(i + 1, "C32k3", 0.5, i + 1, True, i) for i in range(3)]
    path.write_text("".join(json.dumps(r.__dict__) + "\n" for r in rows) + '{"step": 4, "ar')
    inode = path.stat().st_ino
    history = History.load(path)
    assert history.rows == rows
    assert path.stat().st_ino != inode  # a new file put in place, not the old one rewritten
    assert path.read_text().count("\n") == 3 and not list(tmp_path.glob("*.tmp"))


def test_a_timeout_is_trained_again_under_a_larger_limit_and_counted(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    short = Evaluator(**SMALL, time_limit=1e-9, store=store)
    assert short.evaluate("C32k3", 0).status == "timeout"
    assert short.evaluate("C32k3", 0).cached  # the same limit: the same answer
    free = Evaluator(**SMALL, store=store)  # no limit
    again = free.evaluate("C32k3", 0)
    assert again.status == "ok" and not again.cached and again.accuracy > 0
    row = free.stored("C32k3", 0)
    assert row.status == "ok" and row.attempts == 2 and ResultStore(store).trainings() == 2
    assert free.evaluate("C32k3", 0).cached


def test_failures_of_the_circumstances_are_retried_when_asked_and_diverged_never(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "s.sqlite")
    evaluator = Evaluator(**SMALL, store=store)
    now = time.time()
    for arch, status in (("C32k3", "out_of_memory"), ("R32", "crashed"), ("MP2", "diverged")):
        store.put(StoredResult("fashion_mini", evaluator.config_key, arch, 0, 0.0, None, 1, 0.1, status,
                               "", "cpu", now, now))  # fmt: skip
    assert evaluator.evaluate("C32k3", 0).cached  # a search does not retry it on its own
    retrying = Evaluator(**SMALL, store=store, retry_failed=True)
    assert retrying.evaluate("C32k3", 0).status == "ok" and retrying.evaluate("R32", 0).status == "ok"
    assert retrying.evaluate("MP2", 0).status == "diverged" and retrying.trainings == 2


def test_another_budget_is_refused_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = [sys.executable, "-m", "agents.cli", "search", "--env", "NASTabular-v0", "--agent", "random",
            "--out", str(out)]  # fmt: skip
    assert subprocess.run([*base, "--budget", "5"], capture_output=True).returncode == 0
    refused = subprocess.run([*base, "--budget", "9"], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "--budget 5" in refused.stderr and "another --out" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert len(History.load(out / "history.jsonl")) > 0  # nothing lost


def test_the_thread_count_is_part_of_the_key() -> None:
    one = Evaluator(**{**SMALL, "threads": 1})
    two = Evaluator(**{**SMALL, "threads": 2})
    assert json.loads(one.config_key)["threads"] == 1 and one.config_key != two.config_key


def test_final_evaluate_reports_both_accuracies_of_one_training(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "s.sqlite")
    evaluator = Evaluator(**SMALL, store=store)
    now = time.time()
    # a row from a search (another training of the same key): no test accuracy
    store.put(StoredResult("fashion_mini", evaluator.config_key, "C32k3-MP2", 0, 0.123, None, 1, 0.1, "ok",
                           "", "cpu", now, now))  # fmt: skip
    final = evaluator.final_evaluate("C32k3-MP2", 0)
    row = evaluator.stored("C32k3-MP2", 0)
    assert final.accuracy != 0.123 and final.accuracy == row.accuracy
    assert final.test_accuracy == row.test_accuracy is not None
    assert row.attempts == 2 and store.trainings() == 1


def test_two_tables_of_one_space_and_budget_share_no_rows(tmp_path: Path) -> None:
    import dataclasses

    from nas_gym.tabular import SHIPPED_TABLE, Table

    table = Table.load(SHIPPED_TABLE)
    entry = table.entries["C32k3"]
    table.entries["C32k3"] = dataclasses.replace(entry, accuracy=(0.25, 0.25))  # same space and budget
    other = tmp_path / "other.json"
    table.save(other)
    store = tmp_path / "s.sqlite"
    a, b = _tabular(store), _tabular(store, table=str(other))
    a.reset(seed=0)
    b.reset(seed=0)
    assert a.step(0)[1] == entry.accuracy[0]
    assert b.step(0)[1] == 0.25  # not the first table's row
    assert b.unwrapped.evaluator.trainings == 1


def test_envs_with_the_default_store_can_be_copied() -> None:
    env = _tabular()
    env.reset(seed=0)
    env.step(0)
    clone = copy.deepcopy(env)
    assert clone.unwrapped.evaluator.lookup("C32k3", 0) is not None  # a snapshot of the rows
    real = gym.make("NASFashionMini-v0", **TINY_CHILD)
    assert (
        pickle.loads(pickle.dumps(real.unwrapped)).evaluator.config_key == real.unwrapped.evaluator.config_key
    )
