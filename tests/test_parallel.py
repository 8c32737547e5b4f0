"""Many children at once: Gymnasium async vector envs, pools of workers for the agents, Ray."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import TINY_CHILD

from agents.common.tracked_env import TrackedEnv
from agents.registry import run_agent
from nas_gym.evaluation import ResultStore
from nas_gym.parallel import LocalPool
from nas_gym.workers import cpu_share

ENV_ID = "NASFashionMini-v0"
# one thread per child everywhere: on the CPU the thread count changes the order of float sums
KWARGS = dict(TINY_CHILD, threads=1)
PLAN = [[0, 1], [18, 5], [23, 18], [0, 2]]  # per step, the actions of env 0 and env 1


def _rows(store: Path) -> list[tuple[str, int, float]]:
    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT arch, seed, accuracy FROM results ORDER BY arch, seed").fetchall()


def _step_plan(env, plan, seeds):
    env.reset(seed=seeds)
    out = []
    for actions in plan:
        _, rewards, terminated, _, info = env.step(np.array(actions))
        out.append((list(info["arch"]), rewards.tolist(), terminated.tolist()))
    return out


def test_async_vector_env_of_two_workers_shares_one_store(tmp_path, torch_single_thread):
    """The "nas_gym:ID" form under spawn: every result stored once, as one worker would get them."""
    store = tmp_path / "vec.sqlite"
    env = gym.make_vec(
        f"nas_gym:{ENV_ID}",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},
        store=str(store),
        **KWARGS,
    )
    try:
        got = _step_plan(env, PLAN, [7, 7])
        assert env.get_attr("torch_threads") == (1, 1)
    finally:
        env.close()
    archs = {a for step, _, _ in got for a in step if a}  # "" after the autoreset of env 0
    rows = _rows(store)
    assert sorted(r[0] for r in rows) == sorted(archs)  # each architecture exactly once
    # one worker, one process: the same accuracies for the same seed
    single = gym.make(ENV_ID, store=None, **KWARGS)
    single.reset(seed=7)
    stored = {arch: acc for arch, _, acc in rows}
    for arch in archs:
        assert single.unwrapped.evaluator.evaluate(arch, 7).accuracy == stored[arch], arch


def test_workers_share_the_cores_by_default(tmp_path):
    env = gym.make_vec(
        ENV_ID, num_envs=2, vectorization_mode="async", store=str(tmp_path / "s.sqlite"), **TINY_CHILD
    )
    try:
        env.reset(seed=0)
        env.step(np.array([0, 0]))
        threads = env.get_attr("torch_threads")
    finally:
        env.close()
    assert threads == (cpu_share(2), cpu_share(2))


def test_a_pool_needs_a_store_file():
    with pytest.raises(ValueError, match="store"):
        LocalPool(gym.make(ENV_ID, **KWARGS).unwrapped.evaluator, workers=2)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    store = tmp_path_factory.mktemp("pool") / "results.sqlite"
    env = gym.make(ENV_ID, store=str(store), **KWARGS)
    pool = LocalPool(env.unwrapped.evaluator, workers=2)
    yield pool, store
    pool.close()
    env.close()


def _history(agent: str, seed: int, budget: int, store, pool=None):
    env = gym.make(ENV_ID, store=None if store is None else str(store), **KWARGS)
    tracked = TrackedEnv(env, budget, pool=pool)
    run_agent(agent, tracked, seed)
    return [(r.arch, r.accuracy, r.training, r.new_training, r.episode) for r in tracked.history], env


def test_a_claim_left_by_a_stopped_worker_does_not_block_the_pool(pool, torch_single_thread):
    workers, store = pool
    env = gym.make(ENV_ID, store=str(store), **KWARGS)
    tracked = TrackedEnv(env, 5, pool=workers)
    tracked.reset(seed=31)
    evaluator = env.unwrapped.evaluator
    assert evaluator.claim("C32k3-MP2", 31)  # as a worker killed mid-training leaves it
    tracked.prefetch(["C32k3", "C32k3-MP2"])
    assert evaluator.lookup("C32k3-MP2", 31) is not None and evaluator.trainings == 0


@pytest.mark.parametrize("agent, seed", [("reinforce", 11), ("random", 12), ("evolution", 13)])
def test_agent_with_a_pool_of_two_writes_the_history_of_one_process(agent, seed, pool, torch_single_thread):
    workers, store = pool
    budget = 14
    alone, _ = _history(agent, seed, budget, None)
    pooled, env = _history(agent, seed, budget, store, workers)
    assert pooled == alone
    assert env.unwrapped.evaluator.trainings == 0  # every child was trained by the pool's workers
    assert sum(new for *_, new, _ in pooled) == budget


@pytest.mark.parametrize("agent", ["maskable_ppo", "dqn"])
def test_sb3_agent_on_a_subproc_vec_env_keeps_the_budget(agent, tmp_path):
    """Two copies of the env in SB3's SubprocVecEnv: the budget holds exactly and every step lands
    in the history, its trainings in the shared store."""
    store = tmp_path / "results.sqlite"
    env = gym.make(ENV_ID, store=str(store), **KWARGS)
    tracked = TrackedEnv(env, 12)
    run_agent(agent, tracked, 5, workers=2)
    rows = tracked.history.rows
    assert tracked.trainings == 12 and sum(r.new_training for r in rows) == 12
    assert [r.training for r in rows if r.new_training] == list(range(1, 13))
    stored = {arch for arch, _, _ in _rows(store)}
    assert {r.arch for r in rows if r.new_training} == stored  # nothing trained past the budget
    assert env.unwrapped.evaluator.trainings == 0  # the copies trained every child


# -- Ray -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs (the tests that use it skip where the ray extra is not installed)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _ray_search(tmp_path, seed, budget, train_fn=None):
    from nas_gym.parallel import RayPool

    env = gym.make(ENV_ID, store=str(tmp_path / "results.sqlite"), **KWARGS)
    evaluator = env.unwrapped.evaluator
    ray_pool = RayPool(evaluator, train_fn=train_fn)
    tracked = TrackedEnv(env, budget, pool=ray_pool)
    run_agent("random", tracked, seed)
    return tracked, ray_pool, evaluator


def test_search_on_a_local_ray(tmp_path, local_ray, torch_single_thread):
    alone, _ = _history("random", 21, 10, None)
    tracked, ray_pool, evaluator = _ray_search(tmp_path, 21, 10)
    got = [(r.arch, r.accuracy, r.training, r.new_training, r.episode) for r in tracked.history]
    assert got == alone and ray_pool.failures == 0 and evaluator.trainings == 0
    assert len(_rows(tmp_path / "results.sqlite")) == 10


def test_a_ray_worker_killed_mid_training_is_retried_then_recorded(tmp_path, local_ray, torch_single_thread):
    """One child kills its worker every time (recorded as an error after one retry), another only
    the first time (the retry trains it); the search spends its budget; nothing stored is lost."""
    alone, _ = _history("random", 22, 10, None)
    trained = [arch for arch, _, _, new, _ in alone if new]
    always, once = trained[2], trained[5]
    marker = tmp_path / "killed-once"
    (tmp_path / "results.sqlite").unlink(missing_ok=True)
    keep = ResultStore(tmp_path / "results.sqlite")
    keep.put(_row("C32k3-C32k3-C32k3", 22, 0.5))  # a row from before the search
    keep.close()

    def killer(kwargs, arch, seed, threads, parent=None, _always=always, _once=once, _marker=str(marker)):
        import os as _os

        from nas_gym.parallel import train_child

        if arch == _always:
            _os._exit(1)  # the worker process dies mid-training, every time
        if arch == _once and not _os.path.exists(_marker):
            open(_marker, "w").close()
            _os._exit(1)  # the first time only
        return train_child(kwargs, arch, seed, threads, parent)

    tracked, ray_pool, _ = _ray_search(tmp_path, 22, 10, train_fn=killer)
    assert tracked.trainings == 10 and ray_pool.failures == 1
    rows = {arch: (acc, status, message) for arch, _, acc, status, message in _status_rows(tmp_path)}
    assert rows[always][:2] == (0.0, "error") and "Error" in rows[always][2]
    expected = {arch: acc for arch, acc, _, new, _ in alone if new}
    assert rows[once][:2] == (expected[once], "ok")
    assert rows["C32k3-C32k3-C32k3"][:2] == (0.5, "ok")
    assert all(rows[a][0] == acc for a, acc in expected.items() if a != always)


def _status_rows(tmp_path: Path):
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        return conn.execute("SELECT arch, seed, accuracy, status, message FROM results").fetchall()


def _row(arch: str, seed: int, accuracy: float):
    from nas_gym.evaluation import StoredResult

    env = gym.make(ENV_ID, store=None, **KWARGS)
    ev = env.unwrapped.evaluator
    return StoredResult(
        ev.dataset, ev.config_key, arch, seed, accuracy, None, 1, 0.1, "ok", "", "cpu", 0.0, 0.0
    )


def test_search_command_with_workers_and_ray(tmp_path, local_ray):
    from agents.cli import main

    assert os.environ.get("RAY_ADDRESS") is None
    out = tmp_path / "run"
    sets = [f"--set={k}={v}" for k, v in KWARGS.items()]
    code = main(
        ["search", "--agent", "random", "--budget", "4", "--backend", "ray", "--out", str(out), *sets]
    )
    assert code == 0 and len(_rows(out / "results.sqlite")) == 4


def test_search_command_runs_sb3_on_worker_processes(tmp_path, capsys):
    from agents.cli import main

    out = tmp_path / "run"
    sets = [f"--set={k}={v}" for k, v in KWARGS.items()]
    assert (
        main(["search", "--agent", "ppo", "--budget", "5", "--workers", "2", "--out", str(out), *sets]) == 0
    )
    assert len(_rows(out / "results.sqlite")) == 5
    bad = ["search", "--agent", "ppo", "--backend", "ray", "--out", str(tmp_path / "r2"), *sets]
    assert main(bad) == 2
    assert "--backend local" in capsys.readouterr().err and not (tmp_path / "r2").exists()


def test_search_command_with_local_workers_resumes_to_the_same_history(tmp_path):
    """The nas-gym command itself spawns the pool; the same command again resumes on it and
    trains nothing; the history is the one of a single process (threads fixed to 1)."""
    import json
    import subprocess
    import sys

    def cli(out: Path, budget: int, workers: int) -> list[tuple]:
        args = [
            "search",
            "--agent",
            "evolution",
            "--budget",
            str(budget),
            "--out",
            str(out),
            "--workers",
            str(workers),
        ]
        sets = [f"--set={k}={v}" for k, v in KWARGS.items()]
        proc = subprocess.run(
            [sys.executable, "-m", "agents.cli", *args, *sets],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
        return [(r["arch"], r["accuracy"], r["training"], r["new_training"]) for r in rows]

    first = cli(tmp_path / "pooled", 10, workers=2)
    pooled = cli(tmp_path / "pooled", 10, workers=2)
    assert pooled == first
    alone = cli(tmp_path / "alone", 10, workers=1)
    assert pooled == alone and sum(r[3] for r in pooled) == 10


# -- a fidelity per request: a curriculum of epochs under every pool ---------------------------------


def _curriculum_search(tmp_path, backend: str, budget: int = 10):
    """REINFORCE with a curriculum that raises the children's epochs mid-search (0.5, then 1.0),
    in one process, over a local pool of two workers, or over Ray."""
    import json

    from agents.reinforce import ReinforceConfig
    from agents.reinforce import run as reinforce
    from nas_gym.parallel import RayPool

    store = tmp_path / f"{backend}.sqlite"
    env = gym.make(ENV_ID, store=str(store), **KWARGS)
    pool = None
    if backend == "local":
        pool = LocalPool(env.unwrapped.evaluator, workers=2)
    elif backend == "ray":
        pool = RayPool(env.unwrapped.evaluator)
    tracked = TrackedEnv(env, budget, pool=pool)
    config = ReinforceConfig(episodes_per_update=2, curriculum=[(0.0, 2, 0.5), (0.4, 3, 1.0)])
    try:
        reinforce(tracked, 3, config)
    finally:
        if pool is not None:
            pool.close()
        env.close()
    rows = list(ResultStore(store).rows())
    with sqlite3.connect(store) as conn:
        ledger = conn.execute("SELECT arch, budget, seed FROM trainings").fetchall()
    epochs_of = {r.config: json.loads(r.config)["epochs"] for r in rows}
    return tracked, rows, ledger, epochs_of


@pytest.mark.parametrize("backend", ["one-process", "local"])
def test_a_curriculum_of_epochs_trains_its_budget_under_each_key(tmp_path, backend, torch_single_thread):
    """Every pool trains each request at the epochs it asks for: exactly the budget, no child
    twice, and every row filed under the key of the epochs it was trained at (its curve ends
    there). A pool that kept the configuration it started with trained the later children at the
    old epochs (and the driver trained them again)."""
    tracked, rows, ledger, epochs_of = _curriculum_search(tmp_path, backend)
    assert tracked.trainings == 10 == len(ledger) == len(set(ledger)) == len(rows)
    assert sorted(set(epochs_of.values())) == [0.5, 1.0]  # the curriculum raised the epochs
    for r in rows:
        assert r.status == "ok" and r.curve_points()[-1][0] == epochs_of[r.config]
    assert {(r.arch, r.config, r.seed) for r in rows} == set(ledger)


def test_a_child_prefetched_at_two_fidelities_is_two_trainings_each_reached_at_its_own(
    tmp_path, torch_single_thread
):
    """The ledger matches a training by architecture and key: one child a pool trained at 0.5 and
    at 1.0 epochs before any step reached it is two pending trainings, each priced at its own
    seconds, and a step at one fidelity reaches only the training of its key."""
    store = tmp_path / "s.sqlite"
    env = gym.make(ENV_ID, store=str(store), **KWARGS)
    pool = LocalPool(env.unwrapped.evaluator, workers=2)
    tracked = TrackedEnv(env, budget=4, pool=pool)
    arch = "C16k3-MP2"
    try:
        tracked.reset(seed=0)
        tracked.prefetch([arch], epochs=0.5)
        tracked.prefetch([arch], epochs=1.0)
        evaluator = env.unwrapped.evaluator
        seconds = {e: evaluator.recorded_seconds(arch, 0, e) for e in (0.5, 1.0)}
        assert min(seconds.values()) > 0 and tracked.spent == 2
        assert tracked.spent_seconds == pytest.approx(sum(seconds.values()))
        tracked.reset(seed=0, options={"epochs": 0.5})
        tracked.evaluate(arch)
        assert (tracked.trainings, tracked.spent) == (1, 2)
        assert tracked.seconds == pytest.approx(seconds[0.5])
        tracked.reset(seed=0, options={"epochs": 1.0})
        tracked.evaluate(arch)
        assert (tracked.trainings, tracked.spent) == (2, 2)
        assert tracked.seconds == pytest.approx(sum(seconds.values()))
    finally:
        pool.close()
        env.close()
    rows = tracked.history.rows
    assert [(r.training, r.new_training, r.epochs) for r in rows] == [(1, True, 0.5), (2, True, 1.0)]
    assert ResultStore(store).trainings() == 2


def test_a_curriculum_of_epochs_on_ray_trains_its_budget_under_each_key(
    tmp_path, local_ray, torch_single_thread
):
    tracked, rows, ledger, epochs_of = _curriculum_search(tmp_path, "ray")
    assert tracked.trainings == 10 == len(ledger) == len(set(ledger)) == len(rows)
    assert sorted(set(epochs_of.values())) == [0.5, 1.0]
    for r in rows:
        assert r.status == "ok" and r.curve_points()[-1][0] == epochs_of[r.config]


def test_a_pool_with_inheritance_never_trains_a_child_twice_nor_past_its_budget(
    tmp_path, torch_single_thread
):
    """Two workers, inheriting children: a child whose prefix another worker is training waits for
    it instead of training the prefix itself (which paid it twice and overshot the budget)."""
    from agents.search import Search

    out = tmp_path / "run"
    search = Search(
        env_id=ENV_ID, agent="random", budget=16, seed=11, workers=2, out=out,
        overrides={**KWARGS, "inherit": True, "max_layers": 3},
    )  # fmt: skip
    outcome = search.start().run()
    with sqlite3.connect(out / "results.sqlite") as conn:
        ledger = conn.execute("SELECT arch, budget, seed FROM trainings").fetchall()
    assert len(ledger) == len(set(ledger)) <= 16
    assert outcome.history.trainings == len(ledger)
