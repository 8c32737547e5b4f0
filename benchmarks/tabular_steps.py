"""Steps per second of ``NASTabular-v0`` (or ``NASSurrogate-v0``) against ``CartPole-v1``, in one run.

    python benchmarks/tabular_steps.py [--steps 10000] [--table FILE] [--env NASSurrogate-v0]

Both envs are made with ``gym.make`` (so with Gymnasium's default wrappers) and driven by the same
loop: a random allowed action each step (the mask from ``info``, CartPole has none), ``reset`` at the
end of each episode. The last line is ``seconds_for_10000_steps: X.XXX`` (scaled to 10,000 steps).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def drive(env, steps: int, seed: int = 0) -> float:
    """Seconds for ``steps`` random steps (allowed ones where the env gives a mask)."""
    rng = np.random.default_rng(seed)
    n = env.action_space.n
    _, info = env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        mask = info.get("action_mask")
        action = int(rng.choice(np.flatnonzero(mask))) if mask is not None else int(rng.integers(n))
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            _, info = env.reset()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> float:
    import gymnasium as gym

    import nas_gym  # noqa: F401

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--table", default=None, help="table file (default: the shipped one)")
    p.add_argument("--env", default="NASTabular-v0", help="NASTabular-v0 or NASSurrogate-v0")
    args = p.parse_args(argv)

    from nas_gym.registration import env_kind

    tabular = gym.make(args.env, **({"table": args.table} if env_kind(args.env) == "table" else {}))
    cartpole = gym.make("CartPole-v1")
    drive(tabular, 200), drive(cartpole, 200)  # warm-up
    t_tab = drive(tabular, args.steps)
    t_cart = drive(cartpole, args.steps)
    trainings = tabular.unwrapped.evaluator.trainings
    print(f"{'env':<16} {'steps':>7} {'seconds':>8} {'steps/s':>9}")
    for name, t in ((args.env, t_tab), ("CartPole-v1", t_cart)):
        print(f"{name:<16} {args.steps:>7} {t:>8.3f} {args.steps / t:>9.0f}")
    print(f"distinct (architecture, seed) rows read: {trainings}")
    print(f"tabular_time_vs_cartpole: {t_tab / t_cart:.2f}")
    per_10k = t_tab * 10_000 / args.steps
    print(f"seconds_for_10000_steps: {per_10k:.3f}")
    return per_10k


if __name__ == "__main__":
    main()
    sys.exit(0)
