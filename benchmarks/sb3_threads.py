"""SB3 on the CPU: torch's default thread count against one thread, same search, one process.

    python benchmarks/sb3_threads.py [--env NASSurrogate-v0] [--steps 2048] [--repeats 3]

Torch uses every core by default. SB3's policies here are MLPs of a few thousand weights, for which
thread start-up costs more than the arithmetic, so a PPO update is far slower with the default
than with one thread (the SB3 agents set ``policy_threads=1``; a script of your own should call
``torch.set_num_threads(1)``). Runs PPO (SB3's defaults but ``n_steps=256, batch_size=64``) on
``make_vec_env(ENV, n_envs=4)`` for ``--steps`` steps, alternating the two settings ``--repeats``
times, and prints each's wall time and the ratio. Ends with ``ratio_default_over_one: X``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> float:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    import nas_gym  # noqa: F401  registers the ids

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="NASSurrogate-v0")
    p.add_argument("--steps", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    default = torch.get_num_threads()
    times: dict[int, list[float]] = {default: [], 1: []}
    for _ in range(args.repeats):
        for threads in (default, 1):
            torch.set_num_threads(threads)
            model = PPO(
                "MlpPolicy",
                make_vec_env(args.env, n_envs=4),
                n_steps=256,
                batch_size=64,
                seed=0,
                device="cpu",
            )
            start = time.perf_counter()
            model.learn(args.steps)
            times[threads].append(time.perf_counter() - start)
    torch.set_num_threads(default)
    for threads, ts in times.items():
        print(
            f"threads={threads}: median {statistics.median(ts):.2f} s over {len(ts)} runs of {args.steps} steps"
        )
    ratio = statistics.median(times[default]) / statistics.median(times[1])
    print(f"ratio_default_over_one: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
