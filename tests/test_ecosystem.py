"""The envs as Gymnasium and SB3 users write them: pictures, SB3's ``make_vec_env`` with its
defaults, video recording, output file modes, and the package as a wheel."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import TINY_CHILD

import nas_gym
from nas_gym.drawing import FRAME_HEIGHT, frame_width
from nas_gym.search_space import DEFAULT_VOCABULARY

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ROOT = Path(__file__).resolve().parents[1]
REAL = {"NASCifar10-v0", "NASMnist-v0", "NASFashionMNIST-v0", "NASFashionMini-v0"}


def _make(env_id: str, data_root: Path, **kwargs) -> gym.Env:
    if env_id in REAL:
        kwargs = {**TINY_CHILD, "device": "cpu", **kwargs}
        if env_id != "NASFashionMini-v0":
            kwargs["data_dir"] = str(data_root)
    return gym.make(env_id, **kwargs)


@pytest.mark.parametrize("env_id", sorted(nas_gym.ENV_IDS))
def test_rgb_array_render_is_a_picture_of_the_architecture_on_every_id(env_id, data_root):
    env = _make(env_id, data_root, render_mode="rgb_array")
    assert "rgb_array" in env.metadata["render_modes"]
    env.reset(seed=0)
    empty = env.render()
    layers = ("C32k3", "MP2") if env_id == "NASTabular-v0" else ("C32k3", "R64s2", "MP2")
    tokens = env.unwrapped.vocabulary.tokens
    for token in layers:
        env.step(tokens.index(token))
    frame = env.render()
    max_layers = env.unwrapped.vocabulary.max_layers
    for img in (empty, frame):
        assert isinstance(img, np.ndarray) and img.dtype == np.uint8
        assert img.shape == (FRAME_HEIGHT, frame_width(max_layers), 3)  # one size per env: videos
    assert not np.array_equal(empty, frame)  # the layers are drawn
    env.close()


def test_render_modes_are_named_in_the_error():
    with pytest.raises(ValueError, match="'ansi', 'rgb_array'.*got 'svg'"):
        gym.make("NASTabular-v0", render_mode="svg")


def test_sb3_make_vec_env_with_its_defaults_on_the_surrogate():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv_ = make_vec_env("NASSurrogate-v0", n_envs=4)  # asks for render_mode="rgb_array"
    model = PPO("MlpPolicy", venv_, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps >= 256
    assert venv_.render_mode == "rgb_array"
    frames = venv_.get_images()
    assert len(frames) == 4 and all(f.ndim == 3 and f.shape[2] == 3 for f in frames)
    venv_.close()


def test_sb3_make_vec_env_on_the_real_mini_env():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv_ = make_vec_env("NASFashionMini-v0", n_envs=2, env_kwargs={**TINY_CHILD, "device": "cpu"})
    model = PPO("MlpPolicy", venv_, n_steps=32, batch_size=32, seed=0, device="cpu")
    model.learn(64)  # 64 steps: real children, a few seconds at the tiny budget
    assert model.num_timesteps >= 64
    venv_.close()


def test_record_video_over_episodes_of_the_table(tmp_path):
    pytest.importorskip("moviepy", reason="gymnasium's RecordVideo writes through moviepy (not installed)")
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(
        gym.make("NASTabular-v0", render_mode="rgb_array"), str(tmp_path), episode_trigger=lambda e: True
    )
    rng = np.random.default_rng(0)
    for episode in range(2):
        obs, info = env.reset(seed=episode)
        done = False
        while not done:
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    env.close()
    videos = sorted(tmp_path.glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 0 for v in videos)


def test_sb3_agents_run_their_policy_on_one_thread_and_restore_torch():
    import torch

    from agents.common.tracked_env import TrackedEnv
    from agents.registry import run_agent
    from agents.sb3_agents import PPOConfig

    assert PPOConfig().policy_threads == 1
    seen = []
    env = TrackedEnv(gym.make("NASTabular-v0"), budget=5)
    env.listeners.append(lambda row: seen.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    try:
        run_agent("ppo", env, seed=0)
        assert set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_outputs_of_a_search_get_the_usual_file_modes(tmp_path):
    from agents.cli import main

    old = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert main(["search", "--env", "NASTabular-v0", "--budget", "5", "--out", str(out)]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert "tree.json" in modes
    assert set(modes.values()) == {0o644}, modes


def _wheel(tmp: Path) -> Path:
    given = os.environ.get("NAS_GYM_WHEEL")
    if given:
        return Path(given)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "absent from the `packages` configuration" not in out.stdout + out.stderr
    return next(tmp.glob("nas_gym-*.whl"))


def test_the_built_wheel_installs_and_runs_from_another_folder(tmp_path):
    wheel = _wheel(tmp_path / "dist")
    env_dir = tmp_path / "venv"
    # the new venv sees this interpreter's packages (torch, SB3: nothing is downloaded) as plain
    # paths, so their .pth files, this checkout's editable install among them, are not run; the
    # wheel is installed into the venv itself
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    (Path(purelib) / "parent_packages.pth").write_text(
        "".join(f"{p}\n" for p in sorted(ours) if Path(p).is_dir())
    )
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    check = (
        "import gymnasium as gym, nas_gym, agents\n"
        "print(nas_gym.__file__); print(agents.__file__)\n"
        "for i in ('NASTabular-v0', 'NASSurrogate-v0'):\n"
        "    e = gym.make(i); e.reset(seed=0); print(i, e.step(1)[1])\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(python), "-c", check], cwd=work, capture_output=True, text=True, timeout=300, env=clean
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(env_dir)) and lines[1].startswith(str(env_dir)), lines
    assert all(0.0 < float(line.split()[1]) <= 1.0 for line in lines[2:4])
    cli = env_dir / "bin" / "nas-gym"
    search = subprocess.run(
        [str(cli), "search", "--budget", "2", "--out", "run", "--set", "threads=1", "--set", "epochs=0.05"],
        cwd=work, capture_output=True, text=True, timeout=600, env=clean,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr[-2000:]
    assert (work / "run" / "history.jsonl").exists()
    maskable = subprocess.run(
        [str(cli), "search", "--env", "NASTabular-v0", "--agent", "maskable_ppo", "--budget", "20", "--out", "mppo"],
        cwd=work, capture_output=True, text=True, timeout=600, env=clean,
    )  # fmt: skip
    assert maskable.returncode == 0, maskable.stderr[-2000:]
    assert json.loads((work / "mppo" / "summary.json").read_text())["trainings"] == 20
    no_optuna = (
        "import sys; sys.modules['optuna'] = None  # as where the tpe extra is not installed\n"
        "from agents.cli import main; sys.exit(main(sys.argv[1:]))\n"
    )
    refused = subprocess.run(
        [str(python), "-c", no_optuna, "search", "--env", "NASTabular-v0", "--agent", "tpe", "--out", "tpe"],
        cwd=work, capture_output=True, text=True, timeout=300, env=clean,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert 'pip install "nas-gym[tpe]"' in refused.stderr and not (work / "tpe").exists()
    shutil.rmtree(env_dir)


def test_vocabulary_of_the_picture_covers_every_layer():
    from nas_gym.drawing import draw_architecture
    from nas_gym.search_space import Architecture

    arch = Architecture(DEFAULT_VOCABULARY.layers[:15])
    img = draw_architecture(arch, 32, 15, [0.5] * 15, closed=True)
    assert img.shape == (FRAME_HEIGHT, frame_width(15), 3)


def test_the_cleanrl_style_masked_ppo_example_runs_and_learns_something():
    """examples/masked_ppo.py over the same-step vector env, at a tiny step count: every update
    reports its episodes, and masked sampling never builds an invalid architecture."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "masked_ppo.py"), "--num-envs", "8", "--total-steps", "2048"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("steps ")]
    assert len(lines) == 8 and lines[-1].startswith("steps 2048: mean final accuracy 0.")
    best = float(lines[-1].split("best ")[1].split()[0])
    assert 0.5 < best <= 1.0
