"""Steps per second of ``gym.make_vec("NASSurrogate-v0", num_envs=N)`` beside CartPole's sync
vector env, both in this process.

    python benchmarks/vector_steps.py [--steps 2000] [--sizes 1,16,64]

For each N: ``--steps`` vector steps of the surrogate's vector env (one batched prediction per
step, :mod:`nas_gym.vector`), of N single surrogate envs in Gymnasium's ``SyncVectorEnv``, and
of ``gym.make_vec("CartPole-v1", N, vectorization_mode="sync")``, with random actions (the
surrogate's drawn among those its masks allow, as an agent that reads the masks would). Prints
env steps per second (vector steps x N) and the ratio of the surrogate's vector env to CartPole's.
Ends with ``ratio_at_N_<largest>: X``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def _rate(env, steps: int, masked: bool, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    n = env.num_envs
    _, info = env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        if masked:  # a uniform draw among each env's allowed actions, vectorised
            scores = rng.random(info["action_mask"].shape) * info["action_mask"]
            actions = scores.argmax(axis=1)
        else:
            actions = rng.integers(0, 2, size=n)
        _, _, _, _, info = env.step(actions)
    return steps * n / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> float:
    import gymnasium as gym

    import nas_gym  # noqa: F401  registers the ids

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--sizes", default="1,16,64")
    p.add_argument("--env", default="NASSurrogate-v0", help="a surrogate env id")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'N':>4} {'surrogate vector':>17} {'surrogate sync':>15} {'CartPole sync':>14} {'vector/CartPole':>16}"
    )
    ratio = 0.0
    for n in sizes:
        ours = gym.make_vec(args.env, num_envs=n)
        sync = gym.make_vec(args.env, num_envs=n, vectorization_mode="sync")
        cart = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync")
        a, b, c = (
            _rate(ours, args.steps, True),
            _rate(sync, max(1, args.steps // 4), True),
            _rate(cart, args.steps, False),
        )
        ratio = a / c
        print(f"{n:>4} {a:>17,.0f} {b:>15,.0f} {c:>14,.0f} {ratio:>16.2f}")
        for env in (ours, sync, cart):
            env.close()
    print(f"ratio_at_N_{sizes[-1]}: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
