"""Image datasets as uint8 arrays: finding them on disk, reading their real formats, splitting.

Lookup order for a dataset (DESIGN §4): the ``data_dir`` argument, ``$NAS_GYM_DATA``,
``~/.cache/nas_gym``, the folder of Debian's ``dataset-*`` package, then a download through
torchvision into the first writable of those. torchvision's own folder layouts
(``cifar-10-batches-py/``, ``MNIST/raw/``, ``FashionMNIST/raw/``) are accepted, so existing
downloads are reused. The Fashion-MNIST subset ``fashion_mini`` ships inside this package.

Knows nothing of architectures.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetInfo",
    "ImageData",
    "Split",
    "load_dataset",
    "read_idx",
    "resize_images",
    "split_train_val",
]


class DatasetError(ValueError):
    """A dataset that cannot be found or read; the message names the path and the problem."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    channels: int
    image_size: int
    num_classes: int
    augment: bool  # random crop + horizontal flip during training
    layouts: tuple[str, ...]  # sub-folders of a data root that may hold the files
    system_dirs: tuple[str, ...]  # where Debian's dataset-* package puts the files
    torchvision_class: str | None
    flip: bool = True  # with augment: the random horizontal flip too (not for digits or text)


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        "cifar10", 3, 32, 10, True, ("cifar-10-batches-py", "cifar10", "."), (), "CIFAR10"
    ),
    "mnist": DatasetInfo(
        "mnist", 1, 28, 10, False, ("MNIST/raw", "mnist", "."), ("/usr/share/datasets/mnist",), "MNIST"
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        1,
        28,
        10,
        False,
        ("FashionMNIST/raw", "fashion-mnist", "fashion_mnist", "."),
        ("/usr/share/datasets/fashion-mnist",),
        "FashionMNIST",
    ),
    "fashion_mini": DatasetInfo("fashion_mini", 1, 28, 10, False, (".",), (), None),
}

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR_TEST = "test_batch"


@dataclass(frozen=True)
class ImageData:
    """A dataset on the host: images as uint8 (N, C, H, W), labels as int64."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    source: str  # the folder it was read from


@dataclass(frozen=True)
class Split:
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray


def mini_dir() -> Path:
    """Folder of the shipped Fashion-MNIST subset (IDX files, gzip)."""
    return Path(str(resources.files("nas_gym") / "data" / "fashion_mini"))


# ---------------------------------------------------------------------------------------------
# formats


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (MNIST's format; gzip when the name ends in .gz) as a uint8 array."""
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a corrupt deflate stream
        raise DatasetError(f"{path}: cannot read ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: IDX type 0x{raw[2]:02x} is not unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: truncated or corrupt IDX file: header says {dims} "
            f"({expected} bytes), file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx_folder(folder: Path, name: str) -> ImageData:
    arrays = {}
    for key, stem in _IDX_FILES.items():
        path = _find_idx(folder, stem)
        if path is None:
            raise DatasetError(f"{folder}: {stem}[.gz] is missing (the {name} folder is incomplete)")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not match")
        if y.size and y.max() >= 10:
            raise DatasetError(f"{folder}: {split} labels go up to {y.max()}, expected 0..9")
    return ImageData(
        name,
        arrays["train_x"][:, None],
        arrays["train_y"].astype(np.int64),
        arrays["test_x"][:, None],
        arrays["test_y"].astype(np.int64),
        10,
        str(folder),
    )


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except Exception as e:  # a corrupt pickle fails in many ways (bad opcode, unknown global, ...)
        raise DatasetError(f"{path}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})") from e
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DatasetError(f"{path}: CIFAR-10 batch has data {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar_folder(folder: Path) -> ImageData:
    xs, ys = [], []
    for name in _CIFAR_TRAIN:
        if not (folder / name).is_file():
            raise DatasetError(f"{folder}: {name} is missing (the cifar10 folder is incomplete)")
        x, y = _read_cifar_batch(folder / name)
        xs.append(x)
        ys.append(y)
    if not (folder / _CIFAR_TEST).is_file():
        raise DatasetError(f"{folder}: {_CIFAR_TEST} is missing (the cifar10 folder is incomplete)")
    test_x, test_y = _read_cifar_batch(folder / _CIFAR_TEST)
    return ImageData("cifar10", np.concatenate(xs), np.concatenate(ys), test_x, test_y, 10, str(folder))


def _holds(info: DatasetInfo, folder: Path) -> bool:
    # any one file claims the folder, so an incomplete one is reported (naming the missing file)
    if info.name == "cifar10":
        return any((folder / name).is_file() for name in (*_CIFAR_TRAIN, _CIFAR_TEST))
    return any(_find_idx(folder, stem) is not None for stem in _IDX_FILES.values())


def _read(info: DatasetInfo, folder: Path) -> ImageData:
    return _read_cifar_folder(folder) if info.name == "cifar10" else _read_idx_folder(folder, info.name)


# ---------------------------------------------------------------------------------------------
# lookup


def data_roots(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The data roots searched, in order (system folders of Debian packages come after these)."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("NAS_GYM_DATA"):
        roots.append(Path(os.environ["NAS_GYM_DATA"]).expanduser())
    roots.append(Path.home() / ".cache" / "nas_gym")
    return roots


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> ImageData:
    """Find and read dataset ``name`` (``cifar10``, ``mnist``, ``fashion_mnist``, ``fashion_mini``).

    Raises :class:`DatasetError` naming the folders searched when it is nowhere, and naming the
    file when a file is truncated or corrupt.
    """
    if name.startswith("images:"):  # the user's images, prepared into the cache (nas_gym.training.images)
        from nas_gym.training.images import load_images, register_images

        register_images(name)
        return load_images(name)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    info = DATASETS[name]
    if name == "fashion_mini":
        return _read_idx_folder(mini_dir(), name)
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DatasetError(f"data_dir {str(data_dir)!r} does not exist or is not a folder")

    searched: list[Path] = []
    for root in data_roots(data_dir):
        for layout in info.layouts:
            folder = (root / layout).resolve()
            searched.append(folder)
            if _holds(info, folder):
                return _read(info, folder)
    for system in info.system_dirs:
        searched.append(Path(system))
        if _holds(info, Path(system)):
            return _read(info, Path(system))

    where = "\n  ".join(dict.fromkeys(str(p) for p in searched))
    if not download or info.torchvision_class is None:
        raise DatasetError(f"{name} not found; searched:\n  {where}")
    return _download(info, data_roots(data_dir)[0] if data_dir else data_roots()[-1], where)


def _download(info: DatasetInfo, root: Path, searched: str) -> ImageData:
    """Download through torchvision (which checks the files' MD5 sums), then read as usual."""
    import torchvision.datasets as tvd

    try:
        root.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            getattr(tvd, str(info.torchvision_class))(root=str(root), train=train, download=True)
    except Exception as e:  # no network, a proxy, a full disk: all end the same way for the user
        raise DatasetError(
            f"{info.name} not found (searched:\n  {searched}\n) and the download into {root} "
            f"failed: {type(e).__name__}: {e}"
        ) from e
    folder = root / info.layouts[0]
    return _read(info, folder)


# ---------------------------------------------------------------------------------------------
# shaping


def resize_images(x: np.ndarray, image_size: int) -> np.ndarray:
    """Area-downsample uint8 (N, C, H, W) images to ``image_size`` (no change when equal)."""
    h = x.shape[-1]
    if image_size == h:
        return x
    if image_size > h:
        raise ValueError(f"image_size {image_size} is larger than the data's {h}")
    import torch
    import torch.nn.functional as F

    out = F.interpolate(torch.from_numpy(x).float(), size=(image_size, image_size), mode="area")
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()


def split_train_val(data: ImageData, train_size: int | None, val_size: int, split_seed: int = 0) -> Split:
    """Carve a validation set out of the *training* set (never the test set).

    The split depends only on ``split_seed`` (not on a child's seed) so that every child of a
    search is measured on the same validation images.
    """
    n = len(data.train_x)
    if val_size <= 0:
        raise ValueError(f"val_size must be > 0, got {val_size}")
    if train_size is not None and train_size <= 0:
        raise ValueError(f"train_size must be > 0, got {train_size}")
    if val_size >= n:
        raise ValueError(f"val_size {val_size} leaves no training images ({data.name} has {n})")
    available = n - val_size
    if train_size is None:
        train_size = available
    if train_size > available:
        raise ValueError(
            f"train_size {train_size} + val_size {val_size} exceed the {n} training images of {data.name}"
        )
    order = np.random.default_rng(split_seed).permutation(n)
    val_idx, train_idx = order[:val_size], order[val_size : val_size + train_size]
    return Split(
        data.train_x[train_idx], data.train_y[train_idx], data.train_x[val_idx], data.train_y[val_idx]
    )
