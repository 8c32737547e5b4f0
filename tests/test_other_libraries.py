"""The "Other RL libraries" recipes (docs/other-rl-libraries.md), run as written on NASTabular-v0.

Each test reads its code block from that page (the fenced block after ``<!-- recipe: NAME -->``),
so the page and the test cannot drift, and skips where its library is not installed (CI installs
none of them).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "other-rl-libraries.md"


def recipe(name: str) -> tuple[str, str]:
    """(language, code) of the page's block marked ``<!-- recipe: name -->``."""
    found = re.findall(rf"<!-- recipe: {re.escape(name)} -->\n```(\w+)\n(.*?)```", PAGE.read_text(), re.S)
    assert len(found) == 1, f"{PAGE.name} has {len(found)} blocks marked 'recipe: {name}'"
    return found[0]


def run_python_recipe(name: str) -> dict:
    language, code = recipe(name)
    assert language == "python"
    namespace: dict = {"__name__": f"readme_{name}"}
    exec(compile(code, f"{PAGE.name}[{name}]", "exec"), namespace)
    return namespace


@pytest.mark.timeout(300)
def test_rl_zoo3_recipe(tmp_path: Path) -> None:
    pytest.importorskip("rl_zoo3")
    language, code = recipe("rl-zoo3")
    assert language == "bash"
    command = shlex.split(code.replace("\\\n", " "))
    assert command[0] == "python"
    # the subprocess imports the nas_gym under test, installed or not
    import nas_gym

    source = str(Path(nas_gym.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    run = tmp_path / "logs" / "ppo" / "NASTabular-v0_1"
    assert (run / "NASTabular-v0.zip").is_file()  # the trained model
    # the monitor's episodes: r (return), l (length), t (time)
    episodes = np.loadtxt(run / "0.monitor.csv", delimiter=",", skiprows=2, ndmin=2)
    steps = int(episodes[:, 1].sum())
    assert 256 - 3 <= steps <= 256  # -n 256, less the unfinished last episode (<= 3 layers)
    # reward="improvement": an episode's return is the accuracy it reached, never a sum
    assert np.all((episodes[:, 0] >= 0) & (episodes[:, 0] <= 1))
    assert episodes[:, 0].max() > 0.5


@pytest.mark.timeout(300)
def test_torchrl_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("torchrl")
    monkeypatch.chdir(tmp_path)
    ns = run_python_recipe("torchrl")
    data = ns["buffer"][:]  # every transition collected
    assert data.numel() == 320
    mask, action = data["action_mask"], data["action"]
    assert mask.shape == (320, 9) and not mask[:, 8].all()  # HEAD is masked at the first layer
    assert mask.gather(-1, action.unsqueeze(-1)).all()  # no masked action was ever taken
    assert data["next", "reward"].max() > 0.5  # rewards are the table's accuracies
    assert ns["explore"].eps < ns["explore"].eps_init  # exploration was annealed: it trained


@pytest.mark.timeout(300)
def test_tianshou_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("tianshou")
    monkeypatch.chdir(tmp_path)
    ns = run_python_recipe("tianshou")
    assert ns["result"].train_step == 320
    assert ns["result"].update_step > 0
    buffer = ns["collector"].buffer
    data = buffer[buffer.sample_indices(0)]  # every transition, from both envs' parts of the buffer
    assert len(data) == 320
    mask, action = data.obs.mask, data.act
    assert not mask[:, 8].all()  # HEAD is masked at the first layer
    assert mask[np.arange(len(data)), action].all()  # no masked action was ever taken...
    assert not np.any(data.info.invalid_action)  # ...so no episode ended on one
    assert data.rew.max() > 0.5


@pytest.mark.timeout(300)
def test_rllib_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # ray without its rllib extra (as CI installs it) fails to import ray.rllib: skip then too
    pytest.importorskip("ray.rllib", exc_type=ImportError)
    import ray

    monkeypatch.chdir(tmp_path)
    try:
        ns = run_python_recipe("rllib")
    finally:
        ray.shutdown()
    result = ns["result"]
    assert result["training_iteration"] == 2
    assert result["num_env_steps_sampled_lifetime"] == 256  # train_batch_size=128, twice
    runners = result["env_runners"]
    assert 1 <= runners["episode_len_mean"] <= 3
    # reward="prefix": a return is a sum of up to 3 accuracies, so it can exceed 1
    assert 0 <= runners["episode_return_mean"] <= 3
    assert runners["episode_return_max"] > 0.5
    learner = result["learners"]["default_policy"]
    assert np.isfinite(learner["policy_loss"])
