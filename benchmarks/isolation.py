"""What training children in a watched worker process costs, against training them in-process.

    python benchmarks/isolation.py [--children 24] [--threads 2] [--env NASFashionMini-v0]

The same children (random architectures of 1 to 4 layers, each trained once) at the env's budget,
once through an evaluator with ``isolate=False`` (this process) and once with ``isolate=True`` (the
default: a worker process, started once, with a watchdog), in alternating order, on the CPU with the
same thread count, so the accuracies must agree. Prints the wall time of each mode, the worker's
start (import torch, load the data), and ends with ``overhead_per_child_s: X`` (after the start)
and ``ratio: Y`` (isolated wall time / in-process wall time, start included).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def main(argv: Sequence[str] | None = None) -> float:
    import gymnasium as gym

    import nas_gym  # noqa: F401
    from nas_gym.build.samples import sample_architectures
    from nas_gym.config import ChildConfig
    from nas_gym.evaluation import Evaluator

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="NASFashionMini-v0")
    p.add_argument("--children", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=float, default=None, help="override the env's epochs (a quick look)")
    args = p.parse_args(argv)

    config = ChildConfig.from_kwargs(gym.spec(args.env).kwargs, device="cpu", threads=args.threads)
    if args.epochs is not None:
        config = config.replace(epochs=args.epochs)
    image_size = config.image_size
    rng = np.random.default_rng(args.seed)
    archs = [a for a in sample_architectures(4 * args.children, rng, int(image_size)) if len(a) <= 4]
    archs = list(dict.fromkeys(str(a) for a in archs))[: args.children]

    modes = {
        "in-process": Evaluator(config, isolate=False),
        "isolated": Evaluator(config, isolate=True),
    }
    # the start of each mode: in-process loads the data, isolated starts its worker (which does)
    start_seconds = {}
    for name, evaluator in modes.items():
        t = time.perf_counter()
        evaluator.evaluate("DR", args.seed)  # a child of one cheap layer: the start, mostly
        start_seconds[name] = time.perf_counter() - t
    wall = dict.fromkeys(modes, 0.0)
    accuracy: dict[str, list[float]] = {name: [] for name in modes}
    for i, arch in enumerate(archs):
        order = list(modes) if i % 2 == 0 else list(reversed(modes))
        for name in order:
            t = time.perf_counter()
            result = modes[name].evaluate(arch, args.seed)
            wall[name] += time.perf_counter() - t
            accuracy[name].append(result.accuracy)
    modes["isolated"].close()

    n = len(archs)
    print(f"{args.env}: {n} children (1-4 layers), {args.threads} threads, CPU")
    print(f"{'mode':<12} {'start s':>8} {'children s':>11} {'per child s':>12}")
    for name in modes:
        print(f"{name:<12} {start_seconds[name]:>8.2f} {wall[name]:>11.2f} {wall[name] / n:>12.3f}")
    same = accuracy["in-process"] == accuracy["isolated"]
    print(f"same accuracies in both modes: {'yes' if same else 'NO'}")
    overhead = (wall["isolated"] - wall["in-process"]) / n
    ratio = (wall["isolated"] + start_seconds["isolated"]) / (
        wall["in-process"] + start_seconds["in-process"]
    )
    print(f"overhead_per_child_s: {overhead:.4f}")
    print(f"ratio: {ratio:.3f}")
    return ratio


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
