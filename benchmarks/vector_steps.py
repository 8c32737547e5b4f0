"""Steps per second of ``gym.make_vec("NASSurrogate-v0", num_envs=N)`` beside CartPole's sync
vector env, both in this process.

    python benchmarks/vector_steps.py [--steps 2000] [--sizes 1,16,64]

For each N: ``--steps`` vector steps of the surrogate's vector env (one batched prediction per
step, :mod:`nas_gym.vector`), of N single surrogate envs in Gymnasium's ``SyncVectorEnv``, and
of ``gym.make_vec("CartPole-v1", N, vectorization_mode="sync")``, with random actions (the
surrogate's drawn among those its masks allow, as an agent that reads the masks would). The
surrogate's vector env and CartPole's run in turn, ``--rounds`` times ``--steps / --rounds``
steps each (each round draws other actions), so a change in the machine's load between them
moves both alike. Prints env steps per second (vector steps x N) over all rounds and the median
over rounds of the ratio of the surrogate's vector env to CartPole's, with its lowest and highest.
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
    p.add_argument("--rounds", type=int, default=5, help="turns of the two envs (the ratio's median)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'N':>4} {'surrogate vector':>17} {'surrogate sync':>15} {'CartPole sync':>14} "
        f"{'vector/CartPole, median [min, max]':>36}"
    )
    ratio = 0.0
    for n in sizes:
        ours = gym.make_vec(args.env, num_envs=n)
        sync = gym.make_vec(args.env, num_envs=n, vectorization_mode="sync")
        cart = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync")
        each = max(1, args.steps // args.rounds)
        turns = [
            (_rate(ours, each, True, seed=r), _rate(cart, each, False, seed=r)) for r in range(args.rounds)
        ]
        b = _rate(sync, max(1, args.steps // 4), True)
        a = len(turns) / sum(1 / t[0] for t in turns)  # the rate over all rounds (equal steps each)
        c = len(turns) / sum(1 / t[1] for t in turns)
        ratios = sorted(t[0] / t[1] for t in turns)
        ratio = float(np.median(ratios))
        spread = f"{ratio:.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]"
        print(f"{n:>4} {a:>17,.0f} {b:>15,.0f} {c:>14,.0f} {spread:>36}")
        for env in (ours, sync, cart):
            env.close()
    print(f"ratio_at_N_{sizes[-1]}: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
