"""Shared fixtures: small datasets written in the real on-disk formats (IDX, CIFAR-10 pickles)."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed when ``compress``."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if compress else path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def _images(rng: np.random.Generator, n: int, shape: tuple[int, ...], labels: np.ndarray) -> np.ndarray:
    # class-dependent brightness so a child can learn something in a few steps
    base = rng.integers(0, 60, size=(n, *shape))
    return np.clip(base + labels.reshape(-1, *([1] * len(shape))) * 18, 0, 255).astype(np.uint8)


def write_mnist_like(
    folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0, compress: bool = True
) -> Path:
    """The four MNIST/Fashion-MNIST IDX files in ``folder`` (28x28, 10 classes)."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", _images(rng, n, (28, 28), labels), compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return folder


def write_cifar_like(folder: Path, per_batch: int = 120, n_test: int = 200, seed: int = 0) -> Path:
    """torchvision's cifar-10-batches-py layout: five training batches and a test batch."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        labels = (np.arange(n) % 10).astype(np.int64)
        data = _images(rng, n, (3, 32, 32), labels).reshape(n, -1)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels.tolist(), "data": data}, f)
    return folder


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root in torchvision's layouts holding small MNIST, Fashion-MNIST and CIFAR-10."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_like(root / "MNIST" / "raw", seed=1)
    write_mnist_like(root / "FashionMNIST" / "raw", seed=2, compress=False)
    write_cifar_like(root / "cifar-10-batches-py", seed=3)
    return root


# The tiny child configuration of the tests: env kwargs that make any registered id train a child in
# well under a second (two optimizer steps), in this process (the worker process and its watchdog
# have their own tests, tests/test_reliability.py). A test that needs more says so at its use site.
TINY_CHILD = dict(
    train_size=256, val_size=128, epochs=0.5, batch_size=64, width=0.125, download=False, isolate=False
)


def cli_sets(kwargs: dict[str, object]) -> list[str]:
    """Env kwargs as the command line's ``--set KEY=VALUE`` arguments (VALUE in JSON, as it reads it)."""
    return [arg for key, value in kwargs.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


@pytest.fixture(scope="module")
def torch_single_thread():
    """One intra-op thread for the module's tests: on a shared 2-core runner, torch's default
    thread pool spins against the other processes and makes tiny trainings 3-10x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
