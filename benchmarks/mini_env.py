"""The offline default env at its registered budget: step times and the poster's architecture.

    python benchmarks/mini_env.py [--env NASFashionMini-v0] [--children 7] [--device cpu]

Prints, measured in this run:
- the wall time of a *fresh* step (a store miss: the child is trained) that builds a 3-layer child,
  for ``--children`` random 3-layer architectures (median and max);
- the wall time of the same step answered from the result store (median), and its ratio;
- the validation accuracy and train seconds of the poster's best architecture
  ``R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3`` at the env's budget.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np

import nas_gym  # noqa: F401  (registers the ids)

POSTER_BEST = "R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="NASFashionMini-v0")
    parser.add_argument("--children", type=int, default=7, help="random 3-layer children to time")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env = gym.make(args.env, device=args.device)
    base = env.unwrapped
    vocab = base.vocabulary
    rng = np.random.default_rng(args.seed)
    fresh, cached = [], []
    env.reset(seed=args.seed)
    base.evaluator.evaluate("C32k3", seed=999)  # data load and first-call warm-up, outside the timings
    for _ in range(args.children):
        actions = []
        env.reset()
        for _ in range(3):
            mask = env.unwrapped.action_masks()[: vocab.head_action]
            actions.append(int(rng.choice(np.flatnonzero(mask))))
            start = time.perf_counter()
            env.step(actions[-1])
            seconds = time.perf_counter() - start
        fresh.append(seconds)  # the third step: the 3-layer child
        env.reset()
        for a in actions:
            start = time.perf_counter()
            env.step(a)
            seconds = time.perf_counter() - start
        cached.append(seconds)
    print(f"{args.env}: {args.children} random 3-layer children, device {base.evaluator.setup.device_type}")
    print(f"fresh step (trains the child):  median {statistics.median(fresh):.2f} s, max {max(fresh):.2f} s")
    print(f"stored step (from the store):   median {1000 * statistics.median(cached):.3f} ms")
    print(f"fresh / stored: {statistics.median(fresh) / statistics.median(cached):.0f}x")

    result = base.evaluator.evaluate(POSTER_BEST, seed=args.seed)
    print(
        f"poster's best {POSTER_BEST}: val_acc {result.accuracy:.4f}, {result.train_seconds:.1f} s, "
        f"{result.num_params} params, status {result.status}"
    )
    print(f"median_fresh_step_s: {statistics.median(fresh):.2f}")


if __name__ == "__main__":
    main()
