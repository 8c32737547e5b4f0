"""Search your own images and take the trained network away: NASImages-v0, nas-gym search --data,
nas-gym export, and every kind of bad data refused in one line with nothing stored."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from test_cli import process_env

import nas_gym  # noqa: F401  (registers the ids)
from agents.cli import main
from nas_gym.training.datasets import DatasetError, mini_dir, read_idx

NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
TINY = ["--set", "image_size=14", "--set", "epochs=0.5", "--set", "threads=1"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_GYM_DATA", str(tmp_path / "cache"))  # prepared images land here


def _mini(prefix: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(mini_dir() / f"{prefix}-images-idx3-ubyte.gz")[:n]
    y = read_idx(mini_dir() / f"{prefix}-labels-idx1-ubyte.gz")[:n].astype(np.int64)
    return x, y


def write_image_folder(root: Path, n_train: int = 600, n_test: int = 150) -> Path:
    """The shipped subset as PNG files in ImageFolder layout: train/<class>/, test/<class>/."""
    from PIL import Image

    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = _mini(prefix, n)
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            folder = root / split / NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i}.png")
    return root


def test_search_a_folder_export_and_classify_with_torch_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_image_folder(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    assert (
        main(["search", "--data", str(data), "--agent", "random", "--budget", "4", "--out", "run", *TINY])
        == 0
    )
    assert main(["export", "run", "--out", "model.pt", "--epochs", "2"]) == 0
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["classes"] == sorted(NAMES) and card["image_size"] == 14 and card["channels"] == 1
    assert card["validation_accuracy_in_search"] is not None and card["test_images"] == 150
    script = (
        "import sys; sys.modules['nas_gym'] = None; sys.modules['agents'] = None  # not importable here\n"
        "import json, pathlib, numpy as np, torch\n"
        "from PIL import Image\n"
        "torch.set_num_threads(1)\n"
        "card = json.loads(pathlib.Path('model.json').read_text())\n"
        "model = torch.jit.load('model.pt')\n"
        "right = total = 0\n"
        "for label, name in enumerate(card['classes']):\n"
        "    for path in sorted(pathlib.Path('images/test', name).glob('*.png')):\n"
        "        x = torch.from_numpy(np.asarray(Image.open(path))[None, None].copy())\n"
        "        right += int(model(x).argmax(1).item() == label); total += 1\n"
        "print(right, total)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    right, total = map(int, out.stdout.split())
    assert total == 150 and right == round(card["test_accuracy"] * total)  # to the image


def test_arrays_through_gym_make_and_an_sb3_agent(tmp_path: Path) -> None:
    import torch
    from sb3_contrib import MaskablePPO

    x, y = _mini("train", 400)
    store = tmp_path / "s.sqlite"
    env = gym.make(
        "NASImages-v0", data=(x, y), image_size=14, epochs=0.3, threads=1, store=str(store), max_layers=2
    )
    name = env.unwrapped.evaluator.dataset
    torch.set_num_threads(1)
    MaskablePPO("MlpPolicy", env, n_steps=8, batch_size=8, seed=0).learn(8)
    env.close()
    with sqlite3.connect(store) as conn:
        datasets = {d for (d,) in conn.execute("SELECT dataset FROM results")}
    assert datasets == {name} and name.startswith("images:")
    same = gym.make("NASImages-v0", data=(x, y), image_size=14)
    other = gym.make("NASImages-v0", data=(x, (y + 1) % 10), image_size=14)
    assert same.unwrapped.evaluator.dataset == name != other.unwrapped.evaluator.dataset  # the data's digest


def test_the_built_in_ids_keep_their_keys_and_flips_are_a_setting_of_the_data() -> None:
    from nas_gym.registration import ENV_IDS

    for config in ENV_IDS.values():
        assert "flip" not in config.key("cpu", 1)
    x, y = _mini("train", 200)
    digits = gym.make("NASImages-v0", data=(x, y), image_size=14, augment=True, flip=False)
    config = digits.unwrapped.evaluator.child
    assert config.train_config().augment and not config.train_config().flip
    assert json.loads(config.key("cpu", 1))["flip"] is False


def _bad_folder(tmp_path: Path, kind: str) -> Path:
    from PIL import Image

    root = tmp_path / kind
    root.mkdir()
    image = np.zeros((16, 16), np.uint8)
    if kind == "one class":
        (root / "a").mkdir()
        Image.fromarray(image).save(root / "a" / "1.png")
    elif kind == "not an image":
        for c in ("a", "b"):
            (root / c).mkdir()
            Image.fromarray(image).save(root / c / "1.png")
        (root / "b" / "2.png").write_text("this is text, not a picture")
    elif kind == "a class without images":
        for c in ("a", "b"):
            (root / c).mkdir()
        Image.fromarray(image).save(root / "a" / "1.png")
        (root / "b" / "notes.txt").write_text("no pictures here")
    elif kind == "too small":
        for c in ("a", "b"):
            (root / c).mkdir()
            for i in range(3):
                Image.fromarray(np.zeros((2, 2), np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "kind, words",
    [
        ("empty", "holds no class folders"),
        ("one class", "holds 1 class folder(s): a classifier needs at least 2"),
        ("not an image", "is not a readable image"),
        ("a class without images", "class folder(s) b hold no image files"),
        ("too small", "are too small: children need at least 4x4"),
    ],
)
def test_a_bad_folder_is_refused_in_one_line_and_nothing_is_stored(
    tmp_path: Path, kind: str, words: str
) -> None:
    root = _bad_folder(tmp_path, kind)
    store = tmp_path / "s.sqlite"
    with pytest.raises(DatasetError, match=words.replace("(", r"\(").replace(")", r"\)")) as failure:
        gym.make("NASImages-v0", data=str(root), store=str(store))
    assert "\n" not in str(failure.value) and not store.exists()
    assert not list((tmp_path / "cache").glob("**/*.npz"))


@pytest.mark.parametrize(
    "data, words",
    [
        (lambda x, y: (x, y + 20), None),  # labels past the given classes: see classes= below
        (lambda x, y: (x, y - 1), "labels out of range: found -1"),
        (lambda x, y: (x, y[:-3]), "200 images but 197 labels"),
        (lambda x, y: (x.astype(np.float32), y), "must be uint8 images"),
        (lambda x, y: (x, np.zeros_like(y)), "name 1 class(es): a classifier needs at least 2"),
        (lambda x, y: (x[:, :3, :3], y), "are too small"),
    ],
)
def test_bad_arrays_are_refused_in_one_line(tmp_path: Path, data, words: str | None) -> None:
    x, y = _mini("train", 200)
    arrays = data(x, y)
    if words is None:  # labels beyond the class names given
        with pytest.raises(DatasetError, match="labels out of range: found 20..29, expected 0..9"):
            gym.make("NASImages-v0", data=arrays, classes=NAMES)
        return
    with pytest.raises(DatasetError, match=words.replace("(", r"\(").replace(")", r"\)")) as failure:
        gym.make("NASImages-v0", data=arrays, store=str(tmp_path / "s.sqlite"))
    assert "\n" not in str(failure.value) and not (tmp_path / "s.sqlite").exists()


def test_data_that_does_not_fit_in_memory_names_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: 1 if name == "SC_AVPHYS_PAGES" else real(name))
    x, y = _mini("train", 200)
    with pytest.raises(
        DatasetError, match=r"does not fit in memory: 200 images of 1x28x28 need about 0.0 GiB"
    ):
        gym.make("NASImages-v0", data=(x, y))


def test_the_cli_refuses_data_for_another_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--data", str(tmp_path), "--env", "NASTabular-v0"]) == 2
    assert "--data searches NASImages-v0" in capsys.readouterr().err


def test_search_and_export_through_the_command_line_in_subprocesses(tmp_path: Path) -> None:
    """The command line in its own processes: the prepared images are found again by digest."""
    data = write_image_folder(tmp_path / "images", n_train=300, n_test=60)
    env = process_env()
    env["NAS_GYM_DATA"] = str(tmp_path / "cache")
    run = [sys.executable, "-m", "agents.cli"]
    search = subprocess.run([*run, "search", "--data", str(data), "--agent", "evolution", "--budget", "3", "--out", "r", *TINY],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert search.returncode == 0, search.stderr[-2000:]
    export = subprocess.run([*run, "export", "r", "--out", "m.pt", "--epochs", "1"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert export.returncode == 0, export.stderr[-2000:]
    assert json.loads((tmp_path / "m.json").read_text())["made"]["command"].startswith("nas-gym export r")


def test_arrays_searched_by_an_sb3_agent_into_a_run_folder_and_exported(tmp_path: Path) -> None:
    """Arrays have no path: the run folder names them by their digest, so the search resumes and
    exports like a folder's."""
    from agents.export import export_run
    from agents.search import Search

    x, y = _mini("train", 500)
    tx, ty = _mini("t10k", 100)
    settings = {"data": (x, y, tx, ty), "image_size": 14, "epochs": 0.3, "threads": 1, "max_layers": 2}
    first = (
        Search("NASImages-v0", "ppo", seed=0, budget=4, overrides=settings, out=tmp_path / "run")
        .start()
        .run()
    )
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert spec["env_kwargs"]["data"].startswith("images:") and first.summary["trainings"] == 4
    again = (
        Search("NASImages-v0", "ppo", seed=0, budget=4, overrides=settings, out=tmp_path / "run")
        .start()
        .run()
    )
    assert again.evaluator.trainings == 0  # resumed from the store: the same dataset, the same keys
    card = export_run(tmp_path / "run", tmp_path / "m.pt", epochs=1.0)
    assert card["classes"] == [str(i) for i in range(10)] and card["test_images"] == 100
    assert 0.0 < card["test_accuracy"] <= 1.0


def test_a_torchvision_dataset_by_name_from_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``data="KMNIST"``: torchvision's class reads its own raw files (written here in the real IDX
    format where torchvision looks for them), no network needed once they are there."""
    from conftest import write_mnist_like

    cache = tmp_path / "cache"
    write_mnist_like(cache / "torchvision" / "KMNIST" / "raw", n_train=300, n_test=100, compress=False)
    env = gym.make("NASImages-v0", data="KMNIST", image_size=14, epochs=0.2, threads=1)
    evaluator = env.unwrapped.evaluator
    assert evaluator.dataset.startswith("images:") and evaluator.child.dataset_info.num_classes == 10
    env.reset(seed=0)
    assert 0.0 <= env.step(1)[1] <= 1.0
    from nas_gym.training.images import images_meta

    meta = images_meta(evaluator.dataset)
    assert meta.source == "torchvision:KMNIST" and meta.test_split == "given" and meta.classes[0] == "o"
