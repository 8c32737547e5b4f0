"""Children trained per minute with 1, 2, ... workers, through the product's own path, in one run.

    python benchmarks/scaling.py [--env NASFashionMini-v0] [--workers 1,2] [--children 12]
    python benchmarks/scaling.py --env NASFashionMNIST-v0 --device cuda --workers 1,2,4,8
    python benchmarks/scaling.py --backend ray [--nodes 1,2] [--children 12]

Each setting is an ``nas_gym.parallel.LocalPool``: N spawned worker processes, each with its
own evaluator, sharing one result store, as
``nas-gym search --workers N`` uses it. Every setting trains the same list of distinct children
(random architectures of 2 to 4 layers drawn with a fixed seed from the default vocabulary, or
from the layers of ``--space``, e.g. the shipped table's small ones), each worker claiming the
next one free. Before the clock starts, each worker trains one warm-up child (process start, data
loading and CUDA initialisation are not counted). On the CPU each worker gets its share
of the cores (torch threads = cores // N; 1 worker uses them all); on one GPU all workers share it.

The last line is ``speedup_best_vs_1: X.XX``: the best setting's children per minute over the
single-worker setting measured in the same run.

``--backend ray``: the same children through ``nas_gym.parallel.RayPool`` on a
``ray.cluster_utils.Cluster`` of a CPU-less head and N simulated worker nodes of 1 CPU each (all on
this machine, so they share its cores), 1 torch thread per child, after one warm-up child per node.
First the local pool with 1 worker on the same children, the baseline: the last lines are
``ray_overhead_per_child_s`` (Ray's seconds over the local pool's, per child, 1 node) and
``ray_1_node_vs_local: X.XX`` (children per minute, Ray's 1 node over the local worker's).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np


def sample_children(count: int, image_size: int, seed: int, space: str | None = None) -> list[str]:
    """Distinct random children of 2 to 4 layers (at most the space's depth) from the default
    vocabulary, or from the layers of ``space`` (``TOKENS:DEPTH``, as a table's)."""
    from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture
    from nas_gym.tabular import Space

    V = DEFAULT_VOCABULARY if space is None else Space.parse(space).vocabulary
    rng = np.random.default_rng(seed)
    children: list[str] = []
    while len(children) < count:
        arch = Architecture()
        for _ in range(min(int(rng.integers(2, 5)), V.max_layers)):
            mask = V.action_mask(arch, image_size)[: V.head_action]
            arch = arch.append(V.layer_of(int(rng.choice(np.flatnonzero(mask)))))
        if str(arch) not in children:
            children.append(str(arch))
    return children


def measure(env_id: str, overrides: dict, children: list[str], workers: int) -> tuple[float, list[str]]:
    """Seconds for ``workers`` pool workers to train ``children`` (fresh store), and the statuses."""
    from nas_gym.evaluation import ResultStore
    from nas_gym.parallel import LocalPool

    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "results.sqlite")
        import gymnasium as gym

        env = gym.make(env_id, store=store, **overrides)
        pool = LocalPool(env.unwrapped.evaluator, workers)
        try:
            warm = sample_children(workers, int(gym_image_size(env_id)), seed=12345)
            pool.train(warm, seed=12345)  # one each: data on the device, CUDA init, autotune
            start = time.perf_counter()
            pool.train(children, seed=0)
            wall = time.perf_counter() - start
        finally:
            pool.close()
            env.close()
        statuses = [r.status for r in ResultStore(store).rows() if r.seed == 0]
    return wall, statuses


def measure_ray(env_id: str, overrides: dict, children: list[str], nodes: int) -> tuple[float, list[str]]:
    """Seconds for a Ray cluster of ``nodes`` 1-CPU worker nodes to train ``children`` (fresh
    store, fresh cluster), and the statuses."""
    import gymnasium as gym
    import ray
    from ray.cluster_utils import Cluster

    from nas_gym.evaluation import ResultStore
    from nas_gym.parallel import RayPool

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(nodes):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = os.path.join(folder, "results.sqlite")
            env = gym.make(env_id, store=store, **overrides)
            pool = RayPool(env.unwrapped.evaluator)
            pool.train(sample_children(nodes, int(gym_image_size(env_id)), seed=12345), seed=12345)
            start = time.perf_counter()
            pool.train(children, seed=0)
            wall = time.perf_counter() - start
            statuses = [r.status for r in ResultStore(store).rows() if r.seed == 0]
            env.close()
    finally:
        ray.shutdown()
        cluster.shutdown()
    return wall, statuses


def gym_image_size(env_id: str) -> int:
    import gymnasium as gym

    return gym.spec(env_id).kwargs.get("image_size") or 28


def main(argv: Sequence[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="NASFashionMini-v0")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--children", type=int, default=12, help="children trained per setting")
    parser.add_argument("--epochs", type=float, default=None, help="override the env's epochs")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the list of children")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per worker (default: the cores shared out)"
    )
    parser.add_argument(
        "--space",
        default=None,
        help="draw children from these layers, TOKENS:DEPTH (default: all 24 actions)",
    )
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--nodes", default="1,2", help="ray: comma-separated simulated node counts")
    args = parser.parse_args(argv)

    import nas_gym  # noqa: F401

    device = args.device or ("cuda" if _cuda() else "cpu")
    overrides = {"device": device, "download": False}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.threads is not None:
        overrides["threads"] = args.threads
    children = sample_children(args.children, gym_image_size(args.env), args.seed, args.space)
    if args.backend == "ray":
        return _main_ray(args, {**overrides, "threads": args.threads or 1}, children)
    counts = [int(w) for w in args.workers.split(",")]
    print(
        f"{args.env} on {device}, {len(children)} children per setting from "
        f"{args.space or 'the default vocabulary'}, cpus {os.cpu_count()}"
    )
    print(f"{'workers':>8} {'seconds':>9} {'children/min':>13} {'failed':>7}")
    rates: dict[int, float] = {}
    for n in counts:
        wall, statuses = measure(args.env, overrides, children, n)
        rates[n] = 60.0 * len(children) / wall
        failed = sum(s != "ok" for s in statuses)
        print(f"{n:>8} {wall:>9.1f} {rates[n]:>13.1f} {failed:>7}", flush=True)
    base = rates.get(1)
    best = max(rates.values())
    speedup = best / base if base else float("nan")
    print(f"speedup_best_vs_1: {speedup:.2f}")
    return speedup


def _main_ray(args: argparse.Namespace, overrides: dict, children: list[str]) -> float:
    print(
        f"{args.env} on {overrides['device']}, {len(children)} children per setting, 1 thread each, "
        f"cpus {os.cpu_count()} (the simulated nodes share them)"
    )
    print(f"{'backend':>8} {'nodes':>6} {'seconds':>9} {'children/min':>13} {'failed':>7}")
    local, statuses = measure(args.env, overrides, children, 1)
    print(
        f"{'local':>8} {'-':>6} {local:>9.1f} {60 * len(children) / local:>13.1f} {sum(s != 'ok' for s in statuses):>7}"
    )
    walls = {}
    for n in [int(x) for x in args.nodes.split(",")]:
        walls[n], statuses = measure_ray(args.env, overrides, children, n)
        rate = 60.0 * len(children) / walls[n]
        print(
            f"{'ray':>8} {n:>6} {walls[n]:>9.1f} {rate:>13.1f} {sum(s != 'ok' for s in statuses):>7}",
            flush=True,
        )
    if 1 not in walls:
        return float("nan")
    print(f"ray_overhead_per_child_s: {(walls[1] - local) / len(children):.3f}")
    ratio = local / walls[1]
    print(f"ray_1_node_vs_local: {ratio:.2f}")
    return ratio


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
    sys.exit(0)
