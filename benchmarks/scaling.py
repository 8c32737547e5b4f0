"""Children trained per minute with 1, 2, ... concurrent worker processes, in one run.

    python benchmarks/scaling.py [--env NASFashionMini-v0] [--workers 1,2] [--children 8]
    python benchmarks/scaling.py --env NASFashionMNIST-v0 --device cuda --workers 1,2,4,8

Every setting trains the same list of distinct children (random architectures of 2 to 4 layers
drawn with a fixed seed from the default vocabulary) split round-robin over its workers. Each
worker is a spawned process that loads the data, warms up on one child, then waits at a barrier;
the clock runs from the barrier to the last worker's end, so process start-up, data loading and
CUDA initialisation are not counted. On the CPU the cores are split between the workers (torch
threads = cores // workers); on CUDA all workers share the one GPU.

The last line is ``speedup_best_vs_1: X.XX``: the best setting's children per minute over the
single-worker setting measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence

import numpy as np


def sample_children(count: int, image_size: int, seed: int) -> list[str]:
    from nas_gym.search_space import DEFAULT_VOCABULARY as V
    from nas_gym.search_space import Architecture

    rng = np.random.default_rng(seed)
    children: list[str] = []
    while len(children) < count:
        arch = Architecture()
        for _ in range(int(rng.integers(2, 5))):
            mask = V.action_mask(arch, image_size)[: V.head_action]
            arch = arch.append(V.layer_of(int(rng.choice(np.flatnonzero(mask)))))
        if str(arch) not in children:
            children.append(str(arch))
    return children


def _worker(env_id, overrides, children, threads, barrier, results) -> None:
    import torch

    torch.set_num_threads(threads)
    import gymnasium as gym

    import nas_gym  # noqa: F401  (registers the ids)

    evaluator = gym.make(env_id, **overrides).unwrapped.evaluator
    evaluator.evaluate(children[0], seed=12345)  # warm-up: data on the device, CUDA init, autotune
    barrier.wait()
    start = time.perf_counter()
    statuses = [evaluator.evaluate(arch, seed=0).status for arch in children]
    results.put((time.perf_counter() - start, statuses))


def measure(env_id: str, overrides: dict, children: list[str], workers: int) -> tuple[float, list[str]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    results = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers) if overrides.get("device") == "cpu" else 1
    procs = [
        ctx.Process(target=_worker, args=(env_id, overrides, children[i::workers], threads, barrier, results))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    statuses: list[str] = []
    for _ in procs:
        _, s = results.get()
        statuses += s
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    return wall, statuses


def main(argv: Sequence[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="NASFashionMini-v0")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--children", type=int, default=8, help="children trained per setting")
    parser.add_argument("--epochs", type=float, default=None, help="override the env's epochs")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: best available)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the list of children")
    args = parser.parse_args(argv)

    import gymnasium as gym

    import nas_gym  # noqa: F401

    device = args.device or ("cuda" if _cuda() else "cpu")
    overrides = {"device": device, "download": False}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    image_size = gym.spec(args.env).kwargs.get("image_size") or 28
    children = sample_children(args.children, image_size, args.seed)
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{args.env} on {device}, {len(children)} children per setting, cpus {os.cpu_count()}")
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


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
    sys.exit(0)
