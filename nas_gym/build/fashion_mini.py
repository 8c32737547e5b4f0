"""Rebuild the shipped Fashion-MNIST subset from the real dataset.

    python -m nas_gym.build.fashion_mini [SOURCE_DIR]

SOURCE_DIR holds the four Fashion-MNIST IDX files (default: the folder of Debian's
``dataset-fashion-mnist`` package). The subset keeps, in file order, the first 1,000 training
and the first 200 test images of each of the 10 classes, and is written as gzip IDX files,
the dataset's own format, so it loads through the same reader as the full set.
"""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np

from nas_gym.training.datasets import _IDX_FILES, _read_idx_folder, mini_dir

TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"


def first_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    picks = [np.flatnonzero(y == c)[:per_class] for c in range(10)]
    return np.sort(np.concatenate(picks))


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    # mtime=0 keeps the bytes identical across rebuilds
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main(argv: list[str]) -> None:
    source = Path(argv[0] if argv else DEFAULT_SOURCE)
    full = _read_idx_folder(source, "fashion_mnist")
    out = mini_dir()
    out.mkdir(parents=True, exist_ok=True)
    train = first_per_class(full.train_y, TRAIN_PER_CLASS)
    test = first_per_class(full.test_y, TEST_PER_CLASS)
    arrays = {
        "train_x": full.train_x[train, 0],
        "train_y": full.train_y[train],
        "test_x": full.test_x[test, 0],
        "test_y": full.test_y[test],
    }
    for key, stem in _IDX_FILES.items():
        write_idx(out / f"{stem}.gz", arrays[key])
    print(f"wrote {len(train)} training and {len(test)} test images to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
