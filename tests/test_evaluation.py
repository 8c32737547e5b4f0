"""The evaluator and its result store: real tiny trainings, a real SQLite file, real processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_CHILD

from nas_gym.evaluation import EvalResult, Evaluator, ResultStore, StoredResult, StoreError
from nas_gym.search_space import Architecture, ArchitectureSyntaxError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# the shipped mini set at 14x14: every child here trains in a few hundredths of a second. On the
# CPU even where there is a GPU: the contract promises identical accuracies for a seed on the CPU.
EVAL_KWARGS = dict(dataset="fashion_mini", image_size=14, device="cpu", **TINY_CHILD)


def make_evaluator(**overrides) -> Evaluator:
    return Evaluator(**{**EVAL_KWARGS, **overrides})


def _row(
    arch: str, seed: int = 0, accuracy: float = 0.5, dataset: str = "d", budget: str = "b"
) -> StoredResult:
    now = time.time()
    return StoredResult(dataset, budget, arch, seed, accuracy, None, 123, 0.25, "ok", "", "cpu", now, now)


def _keys(store: ResultStore) -> list[tuple]:
    return [(r.dataset, r.config, r.arch, r.seed) for r in store.rows()]


# -- ResultStore ----------------------------------------------------------------------------------


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "file"])
def test_store_round_trip(tmp_path: Path, in_memory: bool) -> None:
    store = ResultStore(None if in_memory else tmp_path / "results.sqlite")
    assert len(store) == 0
    assert store.get("d", "b", "C32k3", 0) is None
    row = _row("C32k3", accuracy=0.75)
    assert store.put(row) == row
    assert store.get("d", "b", "C32k3", 0) == row
    assert list(store.rows()) == [row]
    assert list(store.rows(dataset="other")) == []
    assert list(store.rows(dataset="d", config="b")) == [row]
    assert store.trainings() == 0  # a row put as it is (copied from a table) is no training
    retried = store.record_training(_row("C32k3", accuracy=0.625), tag="search")
    assert retried == row  # an ok row stands against a second writer
    final = store.record_training(_row("C32k3", accuracy=0.625), tag="search", replace_ok=True)
    assert final.accuracy == 0.625 and final.attempts == 2 and final.created_at == row.created_at
    assert store.trainings() == 2 and store.trainings("search") == 2 and store.trainings("other") == 0
    assert store.trained_keys("search") == {("C32k3", row.config): 2}
    assert len(store) == 1


def test_store_first_writer_wins(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "s.sqlite")
    first = store.put(_row("R64", accuracy=0.5))
    second = store.put(_row("R64", accuracy=0.9))
    assert second == first and second.accuracy == 0.5
    assert len(store) == 1


def test_file_store_is_reopened_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "results.sqlite"  # parents are created
    store = ResultStore(path)
    rows = [_row(f"C32k{k}", seed=s) for k in (1, 3) for s in (0, 1)]
    for r in rows:
        store.put(r)
    store.close()
    again = ResultStore(str(path))
    assert sorted(_keys(again)) == sorted((r.dataset, r.config, r.arch, r.seed) for r in rows)
    # the file is plain SQLite in WAL mode, readable by any client
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 4


def test_store_pickles_by_path_and_in_memory_as_a_snapshot(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "s.sqlite")
    store.put(_row("DR"))
    copy = pickle.loads(pickle.dumps(store))
    assert copy.get("d", "b", "DR", 0) == store.get("d", "b", "DR", 0)
    memory = ResultStore(None)
    memory.record_training(_row("MP2"), tag="t")
    snapshot = pickle.loads(pickle.dumps(memory))
    assert snapshot.get("d", "b", "MP2", 0) == memory.get("d", "b", "MP2", 0)
    assert snapshot.trainings("t") == 1
    snapshot.put(_row("AP2"))  # the copy owns its rows
    assert memory.get("d", "b", "AP2", 0) is None


def test_store_under_a_regular_file_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    path = blocker / "results.sqlite"
    with pytest.raises(StoreError, match=re.escape(str(path))) as info:
        ResultStore(path)
    assert isinstance(info.value, ValueError)


def test_store_that_is_a_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=re.escape(str(tmp_path))):
        ResultStore(tmp_path)


def test_store_that_is_not_sqlite_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"this is not a database, just some text that is long enough " * 100)
    with pytest.raises(StoreError, match=re.escape(str(path))):
        ResultStore(path)
    assert path.read_bytes().startswith(b"this is not a database")  # nothing overwritten


def test_evaluator_with_a_bad_store_path_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=re.escape(str(tmp_path))):
        make_evaluator(store=tmp_path)


# -- several processes on one file ----------------------------------------------------------------


def _put_worker(base: str, worker: int, rounds: int, n: int, barrier, errors) -> None:
    try:
        for r in range(rounds):
            barrier.wait(timeout=60)  # every worker opens the same *new* file at the same moment
            store = ResultStore(f"{base}-{r}.sqlite")
            for i in range(n):
                store.put(_row(f"C{worker + 1}k{i + 1}", accuracy=worker / 10))  # only this worker
                store.put(_row(f"R{i + 1}", accuracy=worker / 10))  # every worker
            store.close()
    except BaseException as e:  # reported to the parent, which fails the test with the message
        errors.put(f"worker {worker}: {type(e).__name__}: {e}")
        barrier.abort()  # the others stop waiting for this one
        raise


def test_processes_writing_one_store(tmp_path: Path) -> None:
    # several rounds, each on a fresh file: opening a new store at once in several processes
    # used to fail with "database is locked" (switching to WAL ignores the busy timeout)
    base = str(tmp_path / "shared")
    ctx = mp.get_context("spawn")
    workers, rounds, n = 3, 20, 10
    barrier, errors = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_put_worker, args=(base, w, rounds, n, barrier, errors)) for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert [p.exitcode for p in procs] == [0] * workers, messages
    for r in range(rounds):
        store = ResultStore(f"{base}-{r}.sqlite")
        keys = _keys(store)
        assert len(keys) == len(set(keys)) == workers * n + n
        for i in range(n):  # a shared key holds one writer's row
            row = store.get("d", "b", f"R{i + 1}", 0)
            assert row is not None and row.accuracy in {w / 10 for w in range(workers)}


def _evaluate_worker(path: str, archs: list[str], barrier, results, errors) -> None:
    try:
        import torch

        torch.set_num_threads(1)
        evaluator = make_evaluator(store=path)
        barrier.wait(timeout=60)
        out = [evaluator.evaluate(a, seed=0) for a in archs]
        results.put([(r.arch, r.accuracy, r.status) for r in out])
    except BaseException as e:
        errors.put(f"{type(e).__name__}: {e}")
        barrier.abort()
        raise


def test_processes_training_into_one_store(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")
    plans = [["C32k3", "R32", "C32k1"], ["C32k3", "R32", "C64k1"]]  # two shared, one distinct each
    barrier, results, errors = ctx.Barrier(len(plans)), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_evaluate_worker, args=(path, p, barrier, results, errors)) for p in plans]
    for p in procs:
        p.start()
    outputs = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert errors.empty()
    assert [p.exitcode for p in procs] == [0] * len(plans)
    store = ResultStore(path)
    archs = [r.arch for r in store.rows()]
    assert sorted(archs) == sorted({"C32k3", "R32", "C32k1", "C64k1"})
    assert all(r.status == "ok" for r in store.rows())
    # both workers report the stored row for a shared key (the same seed gives the same accuracy)
    by_arch: dict[str, set[float]] = {}
    for out in outputs:
        for arch, accuracy, _ in out:
            by_arch.setdefault(arch, set()).add(accuracy)
    assert all(len(v) == 1 for v in by_arch.values())


# -- the evaluator --------------------------------------------------------------------------------


def test_evaluate_trains_once_then_answers_from_the_store() -> None:
    evaluator = make_evaluator()
    first = evaluator.evaluate("C32k3-MP2", seed=0)
    assert isinstance(first, EvalResult)
    assert first.status == "ok" and not first.cached
    assert 0.0 <= first.accuracy <= 1.0
    assert first.num_params == evaluator.num_params(Architecture.parse("C32k3-MP2")) > 0
    assert evaluator.trainings == 1
    seconds = evaluator.train_seconds
    assert seconds > 0

    second = evaluator.evaluate(Architecture.parse("C32k3-MP2"), seed=0)
    assert second.cached
    assert second.accuracy == first.accuracy and second.num_params == first.num_params
    assert second.train_seconds == 0.0
    assert evaluator.trainings == 1 and evaluator.train_seconds == seconds

    evaluator.evaluate("C32k3-MP2", seed=1)  # another seed is another key
    assert evaluator.trainings == 2


def test_same_seed_same_accuracy_in_fresh_evaluators() -> None:
    a = make_evaluator().evaluate("R32-C32k3", seed=3)
    b = make_evaluator().evaluate("R32-C32k3", seed=3)
    assert not a.cached and not b.cached
    assert a.accuracy == b.accuracy


def test_store_persists_across_evaluators(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    first = make_evaluator(store=str(path))
    trained = first.evaluate("C32k3", seed=0)
    first.result_store.close()

    second = make_evaluator(store=path)
    again = second.evaluate("C32k3", seed=0)
    assert again.cached and again.accuracy == trained.accuracy
    assert second.trainings == 0


def test_store_persists_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    trained = make_evaluator(store=path).evaluate("C32k5-AP2", seed=4)
    script = (
        "import json, sys\n"
        "from nas_gym.evaluation import Evaluator\n"
        "e = Evaluator(**json.loads(sys.argv[1]))\n"
        "r = e.evaluate('C32k5-AP2', seed=4)\n"
        "print(json.dumps(dict(trainings=e.trainings, cached=r.cached, accuracy=r.accuracy)))\n"
    )
    kwargs = json.dumps({**EVAL_KWARGS, "store": str(path)})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script, kwargs], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer == dict(trainings=0, cached=True, accuracy=trained.accuracy)


@pytest.mark.parametrize(
    "override",
    [
        dict(epochs=1.0),
        dict(batch_size=32),
        dict(lr=0.1),
        dict(width=0.25),
        dict(train_size=128),
        dict(image_size=12),
    ],
    ids=lambda d: next(iter(d)),
)
def test_a_different_budget_is_a_different_key(tmp_path: Path, override: dict) -> None:
    path = tmp_path / "results.sqlite"
    base = make_evaluator(store=path)
    base.evaluate("C32k3", seed=0)
    other = make_evaluator(store=path, **override)
    assert other.config_key != base.config_key
    result = other.evaluate("C32k3", seed=0)
    assert not result.cached and other.trainings == 1
    assert len(ResultStore(path)) == 2


def test_time_limit_is_not_part_of_the_key() -> None:
    assert make_evaluator(time_limit=100.0).config_key == make_evaluator().config_key


def test_config_key_is_canonical_json() -> None:
    key = json.loads(make_evaluator().config_key)
    assert key["epochs"] == TINY_CHILD["epochs"]
    assert key["train_size"] == TINY_CHILD["train_size"]
    assert key["image_size"] == 14 and key["device"] == "cpu"


@pytest.mark.parametrize(
    "failure, status",
    [(dict(lr=1e30), "diverged"), (dict(time_limit=1e-9), "timeout")],
    ids=["diverged", "timeout"],
)
def test_failed_child_is_stored_and_the_search_goes_on(tmp_path: Path, failure: dict, status: str) -> None:
    path = tmp_path / "results.sqlite"
    evaluator = make_evaluator(store=path, **failure)
    failed = evaluator.evaluate("C32k3-C64k3", seed=0)
    assert failed.status == status and failed.accuracy == 0.0 and not failed.cached
    row = ResultStore(path).get("fashion_mini", evaluator.config_key, "C32k3-C64k3", 0)
    assert row is not None and row.status == status and row.accuracy == 0.0 and row.message
    assert row.num_params > 0
    # a failed child is answered from the store too: it is not trained again
    again = evaluator.evaluate("C32k3-C64k3", seed=0)
    assert again.cached and again.status == status and evaluator.trainings == 1
    # and the search goes on
    evaluator.evaluate("R32", seed=0)
    assert evaluator.trainings == 2
    assert len(ResultStore(path)) == 2


def test_rows_survive_errors(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    evaluator = make_evaluator(store=path)
    for arch in ("C32k3", "C32k3-R64", "MP2"):
        evaluator.evaluate(arch, seed=0)

    with pytest.raises(ArchitectureSyntaxError, match="C32x3"):
        evaluator.evaluate("C32k3-C32x3", seed=0)
    with pytest.raises(ValueError, match="below 1x1"):
        evaluator.evaluate("MP3-MP3-MP3-MP3", seed=0)  # 14 -> 6 -> 2 -> 0
    failing = make_evaluator(store=path, lr=1e30)
    assert failing.evaluate("C32k3", seed=0).status == "diverged"

    fresh = ResultStore(path)  # what another process (or a resumed search) sees
    archs = sorted(r.arch for r in fresh.rows())
    assert archs == sorted(["C32k3", "C32k3-R64", "MP2", "C32k3"])
    assert {r.status for r in fresh.rows()} == {"ok", "diverged"}
    assert evaluator.trainings == 3


@pytest.mark.parametrize(
    "field", ["train_size", "val_size", "image_size", "width", "epochs", "batch_size", "lr"]
)
@pytest.mark.parametrize("value", [0, -1])
def test_evaluator_rejects_non_positive_budget(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        make_evaluator(**{field: value})


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(dataset="imagenet"), "imagenet"),
        (dict(image_size=29), "image_size"),
        (dict(val_size=2.5), "val_size"),
        (dict(data_dir="/no/such/folder"), "/no/such/folder"),
    ],
)
def test_evaluator_rejects_other_bad_arguments(overrides: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        make_evaluator(**overrides)


def test_too_large_split_names_the_sizes() -> None:
    evaluator = make_evaluator(train_size=10_000, val_size=2_000)  # the mini set holds 10,000
    with pytest.raises(ValueError, match="train_size"):
        evaluator.evaluate("C32k3", seed=0)
    assert evaluator.trainings == 0


def test_final_evaluate_measures_the_test_set_and_stores_it(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    evaluator = make_evaluator(store=path)
    final = evaluator.final_evaluate("C32k3-MP2-C64k3", seed=0)
    assert final.status == "ok" and not final.cached
    assert final.test_accuracy is not None and 0.0 <= final.test_accuracy <= 1.0
    row = ResultStore(path).get("fashion_mini", evaluator.config_key, "C32k3-MP2-C64k3", 0)
    assert row is not None and row.test_accuracy == final.test_accuracy
    assert row.accuracy == final.accuracy

    trainings = evaluator.trainings
    again = evaluator.final_evaluate("C32k3-MP2-C64k3", seed=0)
    assert again.cached and again.test_accuracy == final.test_accuracy
    assert evaluator.trainings == trainings
    cached = evaluator.evaluate("C32k3-MP2-C64k3", seed=0)
    assert cached.cached and cached.test_accuracy == final.test_accuracy


def test_final_evaluate_after_a_search_keeps_the_validation_row() -> None:
    evaluator = make_evaluator()
    searched = evaluator.evaluate("R32-AP2", seed=2)
    final = evaluator.final_evaluate("R32-AP2", seed=2)
    assert final.accuracy == searched.accuracy  # the same key: the search's row stands
    assert final.test_accuracy is not None
    row = evaluator.lookup("R32-AP2", 2)
    assert row is not None and row.test_accuracy == final.test_accuracy


def test_a_row_records_the_host_and_an_older_store_gains_the_columns(tmp_path: Path) -> None:
    """Where a child trained is kept with it; a store written before the columns existed opens,
    keeps its rows (empty host and node), and answers them under the same keys."""
    import platform

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the results table as first released (no attempts, no host)
        conn.execute(
            "CREATE TABLE results (dataset TEXT NOT NULL, budget TEXT NOT NULL, arch TEXT NOT NULL, "
            "seed INTEGER NOT NULL, accuracy REAL NOT NULL, test_accuracy REAL, num_params INTEGER NOT NULL, "
            "train_seconds REAL NOT NULL, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', "
            "device TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL, "
            "PRIMARY KEY (dataset, budget, arch, seed))"
        )
        evaluator = make_evaluator()
        conn.execute(
            "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ("fashion_mini", evaluator.config_key, "C32k3", 0, 0.5, None, 1, 0.1, "ok", "", "cpu", 0.0, 0.0),
        )
    evaluator = make_evaluator(store=path)
    old = evaluator.lookup("C32k3", 0)
    assert old is not None and old.accuracy == 0.5 and old.host == old.node == ""
    evaluator.evaluate("C32k3-MP2", 0)
    new = evaluator.stored("C32k3-MP2", 0)
    assert new is not None and new.host == platform.node() and new.node == ""
    assert old.curve == "" and old.curve_points() == []  # written before curves were kept


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "worker-process"])
def test_every_training_files_its_curve_under_the_unchanged_key(tmp_path: Path, isolate: bool) -> None:
    """The row of a training holds its validation curve after every epoch; the key and the final
    accuracy are those of a training that records none (the trainer's test checks the weights)."""
    import json as _json

    evaluator = make_evaluator(store=tmp_path / "s.sqlite", epochs=3.0, isolate=isolate)
    result = evaluator.evaluate("C32k3-MP2", 0)
    row = evaluator.stored("C32k3-MP2", 0)
    assert row is not None and row.status == "ok"
    points = row.curve_points()
    assert [e for e, _, _ in points] == [1.0, 2.0, 3.0]
    assert points[-1][1] == row.accuracy == result.accuracy
    assert points[-1][2] == pytest.approx(row.train_seconds, abs=1e-3)
    assert _json.loads(evaluator.config_key)["epochs"] == 3.0 and "curve" not in evaluator.config_key
    # the same child trained without a curve, through the trainer itself
    from nas_gym.training.trainer import train

    trainer = evaluator._runner_for_children()
    if isolate:
        from nas_gym.child import LocalTrainer

        trainer = LocalTrainer(evaluator.setup.data_spec())
    data = trainer.load()
    arch = Architecture.parse("C32k3-MP2")
    info = evaluator.child.dataset_info

    def build():
        from nas_gym.models import build_model

        return build_model(arch, info.channels, 14, info.num_classes, evaluator.child.width)

    plain = train(build, data, evaluator.child.train_config(), 0, curve=False)
    assert plain.accuracy == row.accuracy
