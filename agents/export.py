"""``nas-gym export RUN --out FILE``: a search's best architecture, trained at a final budget and
saved as one TorchScript file that plain ``torch`` loads, with a JSON card beside it.

The architecture is trained from scratch on the run's training *and* validation images for
``epochs`` (default: 3x the search's), then wrapped so that it takes what a user has: uint8 images
(N, C, H, W) at any size (area-resized to the card's size inside, as the training data were) and
returns class scores, the normalisation inside. The card (``FILE`` with ``.json``) names the
architecture, the classes in order, the image size and channels, the validation accuracy the
search measured, the test accuracy of the exported file itself (computed by running it), the
training settings and how it was made.

    model = torch.jit.load("model.pt"); scores = model(images_uint8)  # no nas_gym needed
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_run"]


def _wrapper(inner: Any, mean: Any, std: Any, size: int) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Exported(nn.Module):
        """uint8 images (N, C, H, W) -> class scores (N, classes)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = inner
            self.mean: torch.Tensor
            self.std: torch.Tensor
            self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
            self.register_buffer("std", std.reshape(1, -1, 1, 1).float())
            self.size = size

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = images.float()
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="area").round().clamp(0, 255)
            x = (x / 255.0 - self.mean) / self.std
            return self.net(x)

    return torch.jit.script(Exported())


def export_run(
    run: Path, out: Path, epochs: float | None = None, seed: int | None = None, command: str = ""
) -> dict:
    """Train the best architecture of the search in ``run`` and write ``out`` and its card; return the card."""
    import torch

    import nas_gym
    from agents.common.runs import FINAL_EPOCHS_FACTOR, RunError, RunSpec, best_of_run
    from agents.search import env_kwargs, make_env

    arch, env_id, run_seed = best_of_run(run)
    spec = RunSpec.load(run)
    if spec is None:
        raise RunError(f"{run} has no run.json: not a search folder")
    seed = run_seed if seed is None else seed
    env = make_env(
        env_id, {**env_kwargs(env_id, spec.env_kwargs), "store": str(Path(run) / "results.sqlite")}
    )
    try:
        evaluator = env.unwrapped.evaluator
        if evaluator.kind != "train":
            raise RunError(f"{env_id} trains nothing: export a search of an env that trains its children")
        searched = evaluator.stored(arch, seed)
        child = evaluator.child
        config = child.replace(
            epochs=float(epochs) if epochs is not None else FINAL_EPOCHS_FACTOR * float(child.epochs)
        )
        trained = _final_training(arch, config, seed, evaluator.setup.torch_threads)
        test_accuracy = _save(trained, out)
    finally:
        env.close()
    info = config.dataset_info
    card = {
        "architecture": arch,
        "file": out.name,
        "input": f"uint8 images (N, {info.channels}, H, W); resized to {trained.size}x{trained.size} inside (area)",
        "output": f"class scores (N, {info.num_classes}); argmax is the class",
        "classes": _classes(config.dataset, info.num_classes),
        "image_size": trained.size,
        "channels": info.channels,
        "validation_accuracy_in_search": None if searched is None else searched.accuracy,
        "validation_epochs_in_search": float(child.epochs),
        "test_accuracy": test_accuracy,
        "test_images": int(len(trained.test_y)),
        "training": {
            "epochs": float(config.epochs), "images": trained.images, "on": "the search's training and validation images",
            "batch_size": config.batch_size, "lr": config.lr, "width": config.width, "seed": seed,
            "train_seconds": round(trained.seconds, 1), "threads": evaluator.setup.torch_threads,
        },
        "made": {
            "command": command, "run": str(Path(run).resolve()), "env": env_id,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "nas_gym": nas_gym.__version__,
            "torch": torch.__version__, "python": platform.python_version(),
        },
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "bytes": out.stat().st_size,
    }  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


@dataclass
class _Trained:
    model: Any  # the trained network, in evaluation mode
    mean: Any  # the training images' normalisation
    std: Any
    size: int  # the side the images were trained at
    test_x: np.ndarray  # the test images as the dataset holds them (before resizing)
    test_y: np.ndarray
    images: int  # training images (train + validation)
    seconds: float


def _final_training(arch: str, config: Any, seed: int, threads: int) -> _Trained:
    """``arch`` trained from scratch with ``config`` on the training and validation images."""
    import torch

    from agents.common.runs import RunError
    from nas_gym.models import build_model
    from nas_gym.search_space import Architecture
    from nas_gym.training.datasets import load_dataset, resize_images, split_train_val
    from nas_gym.training.trainer import DeviceData, train

    info, size = config.dataset_info, int(config.image_size)
    raw = load_dataset(config.dataset, config.data_dir, config.download)
    split = split_train_val(raw, config.train_size, config.val_size, config.split_seed)
    train_x = resize_images(np.concatenate([split.train_x, split.val_x]), size)
    train_y = np.concatenate([split.train_y, split.val_y])
    data = DeviceData.from_numpy(train_x, train_y, resize_images(raw.test_x, size), raw.test_y, "cpu")
    parsed = Architecture.parse(arch)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        result = train(lambda: build_model(parsed, info.channels, size, info.num_classes, config.width), data,
                       config.train_config(), seed, keep_model=True)  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous)
    if result.status != "ok" or result.model is None:
        raise RunError(f"the final training of {arch} ended {result.status}: {result.message}")
    model = result.model.eval().to(memory_format=torch.contiguous_format)
    return _Trained(model, data.mean, data.std, size, raw.test_x, raw.test_y, len(train_y), seconds)


def _save(trained: _Trained, out: Path) -> float:
    """Write the TorchScript file; return its test accuracy, measured by loading it back and running
    it on the test images as the dataset holds them (the card's figure is the file's own)."""
    import torch

    example = torch.from_numpy(trained.test_x[:2]).float()
    if example.shape[-1] != trained.size:
        example = torch.nn.functional.interpolate(example, size=(trained.size, trained.size), mode="area")
    with torch.no_grad():
        inner = torch.jit.trace(trained.model, (example / 255.0 - trained.mean) / trained.std)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(_wrapper(inner, trained.mean, trained.std, trained.size), str(out))
    loaded = torch.jit.load(str(out))
    x = trained.test_x
    with torch.no_grad():
        scores = torch.cat([loaded(torch.from_numpy(x[i : i + 512])) for i in range(0, len(x), 512)])
    return float((scores.argmax(1).numpy() == trained.test_y).mean())


def _classes(dataset: str, num_classes: int) -> list[str]:
    if dataset.startswith("images:"):
        from nas_gym.training.images import images_meta

        return list(images_meta(dataset).classes)
    if dataset in ("fashion_mnist", "fashion_mini"):
        return [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ]
    if dataset == "cifar10":
        return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return [str(i) for i in range(num_classes)]
