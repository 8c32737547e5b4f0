"""What a rendered frame costs: ``render_mode="rgb_array"`` on the surrogate, and SB3's video recorder.

    python benchmarks/render_speed.py [--frames 200] [--video-steps 128]

Prints the seconds of the first frame (fonts and caches warm up), the mean and 95th percentile of
the next ``--frames`` frames over random masked episodes, and the wall seconds of SB3's
``VecVideoRecorder`` recording ``--video-steps`` steps of a random policy, beside the same steps
without recording (the baseline, in the same process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np


def frames(n: int) -> tuple[float, np.ndarray]:
    import gymnasium as gym

    import nas_gym  # noqa: F401

    env = gym.make("NASSurrogate-v1", render_mode="rgb_array")
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    start = time.perf_counter()
    env.render()
    first = time.perf_counter() - start
    times = []
    for _ in range(n):
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        _, _, terminated, truncated, info = env.step(action)
        start = time.perf_counter()
        env.render()
        times.append(time.perf_counter() - start)
        if terminated or truncated:
            _, info = env.reset()
    env.close()
    return first, np.array(times)


def video(steps: int, record: bool) -> float:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecVideoRecorder

    import nas_gym  # noqa: F401

    venv = make_vec_env("NASSurrogate-v1", n_envs=1, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        if record:
            venv = VecVideoRecorder(
                venv, folder, record_video_trigger=lambda step: step == 0, video_length=steps
            )
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        venv.reset()
        for _ in range(steps):
            masks = np.stack(venv.env_method("action_masks"))
            venv.step(np.array([int(rng.choice(np.flatnonzero(m))) for m in masks]))
        venv.close()
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--video-steps", type=int, default=128)
    args = p.parse_args(argv)
    first, times = frames(args.frames)
    print(f"first frame: {1000 * first:.1f} ms")
    print(
        f"frame: mean {1000 * times.mean():.1f} ms, p95 {1000 * np.percentile(times, 95):.1f} ms ({len(times)} frames)"
    )
    plain, recorded = video(args.video_steps, False), video(args.video_steps, True)
    print(
        f"VecVideoRecorder over {args.video_steps} steps: {recorded:.2f} s (the same steps unrecorded: {plain:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
