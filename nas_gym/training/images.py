"""The user's own images as a dataset: a folder in torchvision's ``ImageFolder`` layout, or arrays.

:func:`prepare_images` reads the data once, converts it to uint8 (N, C, S, S) arrays at one size,
and keeps them in a cache file named by a digest of their contents (``images/<digest>.npz`` under
``$NAS_GYM_DATA`` or ``~/.cache/nas_gym``). The dataset's name is ``images:<digest>``: it is what
the store files results under, so results on different data never mix, and any process on the
machine (a child's worker, a pool's) reads the same arrays from the cache by that name.

- A folder: one subfolder per class (``DIR/cat/1.png``), or ``DIR/train/<class>/`` and
  ``DIR/test/<class>/`` where the user has a test split. Without one, a fixed ``test_fraction`` of
  the images (chosen by a seeded permutation) is held out as the test set.
- Arrays: ``(images, labels)`` or ``(images, labels, test_images, test_labels)``; images uint8 as
  (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1 or 3, labels integers 0..K-1.

Modes and sizes: every image is read with Pillow; when any image has colour, all are converted
to RGB, else to greyscale (``L``); each is then area-resized to ``image_size`` x ``image_size``
(default: the images' own size when they all share one square size, else 32) with torch's
``area`` interpolation, the same operation the exported model applies to its input.

Bad data is refused with a :class:`~nas_gym.training.datasets.DatasetError` naming the problem,
before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.training.datasets import DATASETS, DatasetError, DatasetInfo, ImageData

__all__ = [
    "IMAGES_PREFIX",
    "MIN_IMAGE_SIZE",
    "ImagesMeta",
    "load_images",
    "prepare_images",
    "register_images",
]

IMAGES_PREFIX = "images:"
MIN_IMAGE_SIZE = 4  # pixels: below this no 2x2 pooling fits after a stride-2 layer
_FORMAT = "nas-gym-images/1"


@dataclass(frozen=True)
class ImagesMeta:
    """What the cache file says of a prepared dataset."""

    classes: tuple[str, ...]
    channels: int
    image_size: int
    augment: bool
    flip: bool
    source: str  # where it came from: a folder's path, or "arrays"
    test_split: str  # "given" or the held-out fraction


def cache_dir() -> Path:
    root = os.environ.get("NAS_GYM_DATA")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "nas_gym") / "images"


def _to_nchw(x: np.ndarray, what: str) -> np.ndarray:
    if x.dtype != np.uint8:
        raise DatasetError(f"{what} must be uint8 images (0..255), got dtype {x.dtype}")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    raise DatasetError(f"{what} must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3, got {x.shape}")


def _labels(y: Any, n: int, what: str, num_classes: int | None) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DatasetError(
            f"{what}: {n} images but {y.shape[0] if y.ndim else 'no'} labels (shape {y.shape})"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{what} must be integer class indices, got dtype {y.dtype}")
    low, high = (int(y.min()), int(y.max())) if n else (0, 0)
    if low < 0 or (num_classes is not None and high >= num_classes):
        top = "" if num_classes is None else f"..{num_classes - 1}"
        raise DatasetError(f"{what} out of range: found {low}..{high}, expected 0{top}")
    return y.astype(np.int64)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Area-resize uint8 (N, C, H, W) to (N, C, size, size), as the exported model does."""
    if x.shape[-2:] == (size, size):
        return x
    import torch
    import torch.nn.functional as F

    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)).float(), size=(size, size), mode="area")
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()


def _check_memory(n: int, channels: int, size: int) -> None:
    need = n * channels * size * size * 3  # the arrays, a copy while converting, the device's copy
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > free:
        raise DatasetError(
            f"the data does not fit in memory: {n} images of {channels}x{size}x{size} need about "
            f"{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB is free (use a smaller image_size or fewer images)"
        )


def _read_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, int]] | None]:
    """(classes, train files, test files or None) of an ImageFolder-layout folder."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    split = (root / "train").is_dir() and (root / "test").is_dir()
    train_root = root / "train" if split else root
    try:
        classes, index = find_classes(str(train_root))
    except FileNotFoundError:
        raise DatasetError(
            f"{train_root} holds no class folders (one subfolder per class is expected)"
        ) from None
    if len(classes) < 2:
        raise DatasetError(
            f"{train_root} holds {len(classes)} class folder(s): a classifier needs at least 2"
        )

    def files(folder: Path) -> list[tuple[Path, int]]:
        try:
            found = make_dataset(str(folder), index, extensions=IMG_EXTENSIONS, allow_empty=True)
        except FileNotFoundError as e:
            raise DatasetError(f"{folder}: {e}") from None
        return [(Path(p), int(c)) for p, c in found]

    train = files(train_root)
    if not train:
        raise DatasetError(f"{train_root} holds no image files ({', '.join(IMG_EXTENSIONS)})")
    empty = sorted(set(classes) - {classes[c] for _, c in train})
    if empty:
        raise DatasetError(f"{train_root}: class folder(s) {', '.join(empty)} hold no image files")
    test = None
    if split:
        test_classes, _ = find_classes(str(root / "test"))
        extra = sorted(set(test_classes) - set(classes))
        if extra:
            raise DatasetError(f"{root / 'test'} has class folder(s) {', '.join(extra)} that train/ does not")
        test = files(root / "test")
    return classes, train, test


def _open_images(files: list[tuple[Path, int]]) -> tuple[list[Any], np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    images = []
    for path, _ in files:
        try:
            with Image.open(path) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DatasetError(f"{path} is not a readable image ({type(e).__name__}: {e})") from None
    return images, np.array([c for _, c in files], dtype=np.int64)


def _pick_size(sizes: set[tuple[int, int]], image_size: int | None) -> int:
    if image_size is not None:
        size = int(image_size)
    elif len(sizes) == 1 and len({*next(iter(sizes))}) == 1:
        size = next(iter(sizes))[0]
    else:
        size = 32
    smallest = min(min(s) for s in sizes)
    if size < MIN_IMAGE_SIZE or smallest < MIN_IMAGE_SIZE:
        raise DatasetError(
            f"images of {smallest} px (image_size {size}) are too small: children need at least "
            f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (a stride-2 layer and a 2x2 pooling)"
        )
    return size


def _to_arrays(images: list[Any], mode: str, size: int) -> np.ndarray:
    out = []
    for im in images:
        a = np.asarray(im.convert(mode), dtype=np.uint8)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        out.append(_resize(a[None], size)[0])
    return np.stack(out)


def _from_folder(
    root: Path, image_size: int | None, test_fraction: float
) -> tuple[ImageData, list[str], str]:
    classes, train_files, test_files = _read_folder(root)
    everything = train_files + (test_files or [])
    train_imgs, train_y = _open_images(train_files)
    test_imgs, test_y = _open_images(test_files) if test_files else ([], np.zeros(0, dtype=np.int64))
    all_imgs = train_imgs + test_imgs
    colour = any(im.mode not in ("1", "L", "I", "I;16", "F", "LA", "P") or (im.mode == "P" and _palette_colour(im))
                 for im in all_imgs)  # fmt: skip
    mode, channels = ("RGB", 3) if colour else ("L", 1)
    size = _pick_size({im.size for im in all_imgs}, image_size)
    _check_memory(len(everything), channels, size)
    train_x = _to_arrays(train_imgs, mode, size)
    test_x = _to_arrays(test_imgs, mode, size) if test_imgs else np.zeros((0, channels, size, size), np.uint8)
    data = ImageData("", train_x, train_y, test_x, test_y, len(classes), str(root))
    return _held_out(data, test_fraction, given=test_files is not None), classes, str(root.resolve())


def _palette_colour(im: Any) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 1] != rgb[..., 2]).any())


def _from_arrays(
    data: tuple, image_size: int | None, test_fraction: float, classes: Any
) -> tuple[ImageData, list[str], str]:
    if len(data) not in (2, 4):
        raise DatasetError(
            "arrays are given as (images, labels) or (images, labels, test_images, test_labels)"
        )
    x = _to_nchw(np.asarray(data[0]), "images")
    known = None if classes is None else len(classes)
    y = _labels(data[1], len(x), "labels", known)
    if len(x) == 0:
        raise DatasetError("images holds no image")
    tx, ty = np.zeros((0, *x.shape[1:]), np.uint8), np.zeros(0, np.int64)
    if len(data) == 4:
        tx = _to_nchw(np.asarray(data[2]), "test images")
        ty = _labels(data[3], len(tx), "test labels", known)
        if tx.shape[1] != x.shape[1]:
            raise DatasetError(f"test images have {tx.shape[1]} channels, images {x.shape[1]}")
    num_classes = known or int(max(y.max(), ty.max() if len(ty) else 0)) + 1
    if num_classes < 2 or len(np.unique(y)) < 2:
        raise DatasetError(f"the labels name {len(np.unique(y))} class(es): a classifier needs at least 2")
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(num_classes)]
    size = _pick_size({tuple(x.shape[-2:])} | ({tuple(tx.shape[-2:])} if len(tx) else set()), image_size)
    _check_memory(len(x) + len(tx), x.shape[1], size)
    image_data = ImageData(
        "", _resize(x, size), y, _resize(tx, size) if len(tx) else tx, ty, num_classes, "arrays"
    )
    return _held_out(image_data, test_fraction, given=len(data) == 4), names, "arrays"


def _torchvision_class(name: str) -> Any:
    try:
        import torchvision.datasets as tvd
    except ImportError:
        return None
    cls = getattr(tvd, name, None)
    return cls if isinstance(cls, type) else None


def _from_torchvision(name: str, image_size: int | None) -> tuple[ImageData, list[str], str]:
    """A torchvision dataset class by name (``"KMNIST"``, ``"CIFAR100"``, ``"SVHN"``...): its own
    train and test splits, read from (or downloaded into, where the network allows) the data
    folder's ``torchvision/``; its ``data`` and ``targets`` (or ``labels``) as arrays."""
    cls = _torchvision_class(name)
    root = cache_dir().parent / "torchvision"
    splits = []
    for train in (True, False):
        kwargs: dict[str, Any] = (
            {"split": "train" if train else "test"} if name == "SVHN" else {"train": train}
        )
        try:
            dataset = cls(root=str(root), download=True, **kwargs)
        except Exception as e:  # no network, a wrong class, a corrupt file: all end the same way
            raise DatasetError(
                f"torchvision's {name} could not be read from or downloaded into {root}: {e}"
            ) from None
        x = np.asarray(dataset.data)
        y = np.asarray(getattr(dataset, "targets", getattr(dataset, "labels", None)))
        splits.append((_to_nchw(x.astype(np.uint8) if x.dtype != np.uint8 else x, f"{name}'s images"), y))
    (x, y), (tx, ty) = splits
    classes = [str(c) for c in getattr(dataset, "classes", [])] or None
    data, names, _ = _from_arrays((x, y, tx, ty), image_size, 0.1, classes)
    return data, names, f"torchvision:{name}"


def _held_out(data: ImageData, test_fraction: float, given: bool) -> ImageData:
    if given:
        return data
    if not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = len(data.train_x)
    order = np.random.default_rng(0).permutation(n)
    k = max(1, int(round(test_fraction * n)))
    if n - k < 2:
        raise DatasetError(f"{n} images are too few to hold out a test set and still train")
    test, train = order[:k], order[k:]
    return ImageData(data.name, data.train_x[train], data.train_y[train], data.train_x[test], data.train_y[test],
                     data.num_classes, data.source)  # fmt: skip


def prepare_images(
    data: Any,
    image_size: int | None = None,
    augment: bool = False,
    flip: bool = True,
    test_fraction: float = 0.1,
    classes: Any = None,
) -> str:
    """Read ``data`` (a folder, or arrays: see the module), keep it in the cache, and return its
    dataset name (``images:<digest>``). ``augment``: random crops (4 px padding) during training,
    and horizontal flips unless ``flip=False`` (digits, text, house numbers). ``classes``: the
    class names of arrays' labels (default "0", "1", ...). Reading the same data again finds the
    cache file and writes nothing."""
    if isinstance(data, str) and data.startswith(IMAGES_PREFIX):  # prepared before: found by its digest
        register_images(data)
        return data
    if (
        isinstance(data, str)
        and not Path(data).expanduser().exists()
        and _torchvision_class(data) is not None
    ):
        given = True
        image_data, names, source = _from_torchvision(data, image_size)
    elif isinstance(data, str | os.PathLike):
        root = Path(data).expanduser()
        given = (root / "train").is_dir() and (root / "test").is_dir()
        image_data, names, source = _from_folder(root, image_size, test_fraction)
    elif isinstance(data, tuple | list):
        given = len(data) == 4
        image_data, names, source = _from_arrays(tuple(data), image_size, test_fraction, classes)
    else:
        raise DatasetError(
            f"data must be a folder (ImageFolder layout) or (images, labels) arrays, got {type(data).__name__}"
        )
    meta = {
        "format": _FORMAT,
        "classes": names,
        "channels": int(image_data.train_x.shape[1]),
        "image_size": int(image_data.train_x.shape[-1]),
        "augment": bool(augment),
        "flip": bool(flip),
        "source": source,
        "test_split": "given" if given else f"{test_fraction:g} of the images held out",
    }
    digest = hashlib.sha256()
    for a in (image_data.train_x, image_data.train_y, image_data.test_x, image_data.test_y):
        digest.update(np.ascontiguousarray(a).tobytes())
        digest.update(str(a.shape).encode())
    digest.update(json.dumps({k: meta[k] for k in ("classes", "augment", "flip")}).encode())
    name = IMAGES_PREFIX + digest.hexdigest()[:16]
    _write_cache(cache_dir() / f"{name[len(IMAGES_PREFIX) :]}.npz", image_data, meta)
    register_images(name)
    return name


def _write_cache(path: Path, data: ImageData, meta: dict) -> None:
    """The prepared arrays and their description, whole or not at all (a file already there holds
    the same data: its name is their digest)."""
    if path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, train_x=data.train_x, train_y=data.train_y, test_x=data.test_x, test_y=data.test_y,
                 meta=np.array(json.dumps(meta)))  # fmt: skip
        os.replace(tmp, path)
    except OSError as e:
        raise DatasetError(f"cannot write the prepared images to {path}: {e.strerror or e}") from None


def _cache_file(name: str) -> Path:
    if not name.startswith(IMAGES_PREFIX):
        raise DatasetError(f"{name!r} is not a prepared images dataset")
    path = cache_dir() / f"{name[len(IMAGES_PREFIX) :]}.npz"
    if not path.exists():
        raise DatasetError(
            f"{name}: its prepared images ({path}) are gone; prepare the data again (gym.make with data=...)"
        )
    return path


def images_meta(name: str) -> ImagesMeta:
    with np.load(_cache_file(name)) as f:
        meta = json.loads(str(f["meta"]))
    return ImagesMeta(tuple(meta["classes"]), int(meta["channels"]), int(meta["image_size"]), bool(meta["augment"]),
                      bool(meta["flip"]), str(meta["source"]), str(meta.get("test_split")))  # fmt: skip


def register_images(name: str) -> DatasetInfo:
    """Make the prepared dataset ``name`` known to this process (``DATASETS``), from its cache file."""
    if name in DATASETS:
        return DATASETS[name]
    meta = images_meta(name)
    info = DatasetInfo(
        name, meta.channels, meta.image_size, len(meta.classes), meta.augment, (), (), None, meta.flip
    )
    DATASETS[name] = info
    return info


def load_images(name: str) -> ImageData:
    with np.load(_cache_file(name)) as f:
        return ImageData(name, f["train_x"], f["train_y"].astype(np.int64), f["test_x"], f["test_y"].astype(np.int64),
                         len(json.loads(str(f["meta"]))["classes"]), str(_cache_file(name)))  # fmt: skip
