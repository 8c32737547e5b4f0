"""A search on a Ray cluster of several nodes (``ray.cluster_utils.Cluster``: a head with no CPUs and
two 1-CPU worker nodes on this machine), the real mini env: where children trained, a node lost, a
driver killed, inheritance with no shared disk. Each test starts its own cluster (about 5 s; the four
take about a minute on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import cli_sets

from agents.common.tracked_env import TrackedEnv
from agents.registry import run_agent
from nas_gym.parallel import RayPool

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

ENV_ID = "NASFashionMini-v0"
# children of about a second each on one thread, so that a search takes long enough to interrupt
KWARGS = dict(train_size=1024, val_size=256, epochs=1.0, batch_size=64, width=0.25, download=False, isolate=False,
              threads=1)  # fmt: skip


@pytest.fixture
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    try:
        yield c, workers
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def _store_rows(path: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT arch, status, node, host FROM results").fetchall()


def _ledger(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    try:
        with sqlite3.connect(path) as conn:
            return Counter(a for (a,) in conn.execute("SELECT arch FROM trainings"))
    except sqlite3.OperationalError:  # the driver is creating it
        return Counter()


def _search(tmp_path: Path, address: str, agent: str, seed: int, budget: int, train_fn=None, **overrides):
    ray.init(address=address, log_to_driver=False)
    kwargs = {**KWARGS, **overrides}
    env = gym.make(ENV_ID, store=str(tmp_path / "results.sqlite"), **kwargs)
    evaluator = env.unwrapped.evaluator
    pool = RayPool(evaluator, train_fn=train_fn)
    tracked = TrackedEnv(env, budget, pool=pool)
    run_agent(agent, tracked, seed)
    return tracked, pool


def test_children_train_on_both_nodes_and_the_store_says_where(tmp_path, cluster):
    c, _ = cluster
    tracked, pool = _search(tmp_path, c.address, "random", 3, 8)
    rows = _store_rows(tmp_path / "results.sqlite")
    assert tracked.trainings == 8 and len(rows) == 8 and pool.failures == 0
    nodes = {node for _, _, node, _ in rows}
    assert len(nodes) == 2 and "" not in nodes  # both worker nodes, never the CPU-less head
    assert {host for *_, host in rows} == {os.uname().nodename}


def test_a_worker_node_lost_mid_search_loses_nothing_and_counts_nothing_twice(tmp_path, cluster):
    c, workers = cluster
    store = tmp_path / "results.sqlite"

    removed_at: list[float] = []

    def remove_after_two() -> None:
        while len(_ledger(store)) < 2:
            time.sleep(0.05)
        c.remove_node(workers[0])
        removed_at.append(time.time())

    watcher = threading.Thread(target=remove_after_two, daemon=True)
    watcher.start()
    tracked, _ = _search(tmp_path, c.address, "random", 4, 10)
    watcher.join(timeout=5)
    assert not watcher.is_alive()  # the node went while the search ran
    rows = _store_rows(store)
    ledger = _ledger(store)
    assert tracked.trainings == 10 and len(rows) == 10 and sum(ledger.values()) == 10
    assert max(ledger.values()) == 1  # each child once
    assert all(status == "ok" for _, status, _, _ in rows)  # the lost tasks were retried elsewhere
    assert len({node for _, _, node, _ in rows}) == 2
    with sqlite3.connect(store) as conn:  # children were still training when the node went
        assert conn.execute("SELECT MAX(created_at) FROM trainings").fetchone()[0] > removed_at[0]


def test_a_driver_killed_mid_search_resumes_with_its_exact_budget(tmp_path, cluster):
    c, _ = cluster
    out = tmp_path / "run"
    store = out / "results.sqlite"
    cmd = [sys.executable, "-m", "agents.cli", "search", "--env", ENV_ID, "--agent", "random",
           "--budget", "12", "--seed", "5", "--out", str(out), "--backend", "ray", "--ray-address",
           c.address, *cli_sets(KWARGS)]  # fmt: skip
    driver = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while sum(_ledger(store).values()) < 4 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:] if driver.stderr else ""
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    before = sum(_ledger(store).values())
    assert 4 <= before < 12
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    ledger = _ledger(store)
    assert sum(ledger.values()) == 12 and max(ledger.values()) == 1  # nothing trained twice
    assert len(_store_rows(store)) == 12
    assert json.loads((out / "summary.json").read_text())["trainings"] == 12


def test_inheritance_on_two_nodes_trains_each_architecture_once(tmp_path, cluster):
    """No shared disk: each parent's weights go to its children through the object store, so no
    node trains a parent again and the search counts exactly its budget."""
    c, _ = cluster
    tracked, pool = _search(tmp_path, c.address, "random", 6, 16, inherit=True)
    store = tmp_path / "results.sqlite"
    rows, ledger = _store_rows(store), _ledger(store)
    assert tracked.trainings == 16 and pool.failures == 0
    assert len(rows) == sum(ledger.values()) == len(ledger) == 16
    assert len({node for _, _, node, _ in rows}) == 2
    with sqlite3.connect(store) as conn:
        assert all('"inherit_epochs"' in b for (b,) in conn.execute("SELECT budget FROM results"))
    ray.shutdown()
    # evolution evaluates whole architectures, whose missing prefixes train first: never past its budget
    tracked, pool = _search(tmp_path / "evolution", c.address, "evolution", 6, 14, inherit=True)
    ledger = _ledger(tmp_path / "evolution" / "results.sqlite")
    assert tracked.trainings == sum(ledger.values()) == len(ledger) <= 14 and tracked.exhausted


@pytest.mark.slow  # three clusters and a local pool: from 30 s to minutes on a busy 2-core machine
def test_the_scaling_benchmark_measures_ray_against_the_local_pool() -> None:
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "scaling.py"), "--backend", "ray", "--nodes", "1,2",
         "--children", "3", "--epochs", "0.05"],
        capture_output=True, text=True, timeout=600, cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert [line.split()[:2] for line in lines if line.split()[:1] in (["local"], ["ray"])] == [
        ["local", "-"], ["ray", "1"], ["ray", "2"]
    ]  # fmt: skip
    assert all(line.split()[-1] == "0" for line in lines if line.split()[:1] in (["local"], ["ray"]))
    assert any(line.startswith("ray_overhead_per_child_s: ") for line in lines)
    assert float(lines[-1].split(": ")[1]) > 0  # ray_1_node_vs_local
