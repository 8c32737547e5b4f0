"""Datasets: the real on-disk formats, the lookup order, errors that name the file, splitting."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION_SYSTEM_DIR, write_cifar_like, write_idx, write_mnist_like

from nas_gym.training.datasets import (
    DatasetError,
    ImageData,
    load_dataset,
    read_idx,
    resize_images,
    split_train_val,
)

MNIST_SYSTEM_DIR = Path("/usr/share/datasets/mnist")
IDX_STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No test sees the user's ~/.cache/nas_gym or $NAS_GYM_DATA: both point at empty folders."""
    home = tmp_path_factory.mktemp("home")
    env = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NAS_GYM_DATA", str(env))
    return home, env


def _array(shape=(5, 7, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# read_idx


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("shape", [(5, 7, 3), (11,), (2, 28, 28)])
def test_read_idx_reads_what_was_written(tmp_path, compress, shape):
    array = _array(shape)
    path = write_idx(tmp_path / "a-idx-ubyte", array, compress=compress)
    assert path.name.endswith(".gz") == compress
    out = read_idx(path)
    assert out.dtype == np.uint8
    assert out.shape == shape
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # a writable copy, not a view of the file's bytes
    assert read_idx(str(path)).shape == shape  # str paths work too


def _expect_error_naming(path: Path, fn=read_idx) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        fn(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    return info.value


@pytest.mark.parametrize("cut", [1, 100, 1000])
def test_truncated_plain_idx_raises(tmp_path, cut):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((10, 28, 28)), compress=False)
    path.write_bytes(path.read_bytes()[:-cut])
    _expect_error_naming(path)


def test_truncated_idx_header_raises(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((10, 28, 28)), compress=False)
    path.write_bytes(path.read_bytes()[:9])  # magic + part of the dims
    _expect_error_naming(path)
    path.write_bytes(b"\x00\x00")
    _expect_error_naming(path)


def test_idx_with_extra_bytes_raises(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((10, 28, 28)), compress=False)
    path.write_bytes(path.read_bytes() + b"\x00" * 5)
    _expect_error_naming(path)


@pytest.mark.parametrize("cut", [1, 10, 500])
def test_truncated_gzip_idx_raises(tmp_path, cut):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((10, 28, 28)), compress=True)
    path.write_bytes(path.read_bytes()[:-cut])
    _expect_error_naming(path)


def test_gzip_holding_a_truncated_idx_raises(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((10, 28, 28)), compress=False)
    gz = tmp_path / "y-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()[:-50]))
    _expect_error_naming(gz)


@pytest.mark.parametrize("corruption", ["inverted-stream", "bad-crc", "not-deflate", "not-gzip"])
def test_corrupt_gzip_raises(tmp_path, corruption):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((10, 28, 28)), compress=True)
    raw = path.read_bytes()
    if corruption == "inverted-stream":  # the deflate data itself is damaged
        raw = raw[:12] + bytes(255 - b for b in raw[12:-8]) + raw[-8:]
    elif corruption == "bad-crc":
        raw = raw[:-8] + b"\x00" * 8
    elif corruption == "not-deflate":
        raw = b"\x1f\x8b" + b"garbage" * 10
    else:
        raw = b"this is not a gzip file at all"
    path.write_bytes(raw)
    _expect_error_naming(path)


@pytest.mark.parametrize(
    "header",
    [b"\x01\x00\x08\x03", b"\x00\x01\x08\x03", b"\x00\x00\x0d\x03"],  # bad magic; float data
    ids=["byte0", "byte1", "float-type"],
)
def test_wrong_magic_number_raises(tmp_path, header):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((4, 28, 28)), compress=False)
    path.write_bytes(header + path.read_bytes()[4:])
    _expect_error_naming(path)
    gz = tmp_path / "g-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    _expect_error_naming(gz)


def test_gzip_data_without_gz_suffix_is_not_an_idx_file(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", _array((4, 28, 28)), compress=True)
    plain_name = path.rename(tmp_path / "x-idx3-ubyte")
    _expect_error_naming(plain_name)


def test_missing_idx_file_raises(tmp_path):
    _expect_error_naming(tmp_path / "nothing-here-idx3-ubyte.gz")


# ---------------------------------------------------------------------------------------------
# load_dataset: the torchvision layouts


def _check_image_data(data: ImageData, n_train: int, n_test: int, channels: int, size: int) -> None:
    assert data.train_x.shape == (n_train, channels, size, size)
    assert data.test_x.shape == (n_test, channels, size, size)
    assert data.train_x.dtype == np.uint8 and data.test_x.dtype == np.uint8
    assert data.train_y.shape == (n_train,) and data.test_y.shape == (n_test,)
    assert data.train_y.dtype == np.int64 and data.test_y.dtype == np.int64
    assert data.num_classes == 10
    assert set(np.unique(data.train_y)) <= set(range(10))


@pytest.mark.parametrize("name, layout", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw")])
def test_load_idx_datasets_from_torchvision_layout(data_root, name, layout):
    data = load_dataset(name, data_dir=data_root, download=False)
    _check_image_data(data, 600, 200, 1, 28)
    assert data.name == name
    assert Path(data.source) == (data_root / layout).resolve()
    # the pixels and labels are the ones in the files
    folder = data_root / layout
    gz = ".gz" if name == "mnist" else ""
    np.testing.assert_array_equal(data.train_x[:, 0], read_idx(folder / f"train-images-idx3-ubyte{gz}"))
    np.testing.assert_array_equal(data.test_y, read_idx(folder / f"t10k-labels-idx1-ubyte{gz}"))
    np.testing.assert_array_equal(data.train_y, np.arange(600) % 10)


def test_mnist_and_fashion_mnist_are_not_confused(data_root):
    mnist = load_dataset("mnist", data_dir=data_root, download=False)
    fashion = load_dataset("fashion_mnist", data_dir=data_root, download=False)
    assert not np.array_equal(mnist.train_x, fashion.train_x)  # seeds 1 and 2 in conftest


def test_load_cifar10_from_torchvision_layout(data_root):
    data = load_dataset("cifar10", data_dir=data_root, download=False)
    _check_image_data(data, 5 * 120, 200, 3, 32)
    assert Path(data.source) == (data_root / "cifar-10-batches-py").resolve()
    np.testing.assert_array_equal(data.train_y, np.tile(np.arange(120) % 10, 5))


def test_cifar_pixels_are_channel_major_rows(tmp_path):
    """A CIFAR row is 1024 red, 1024 green, 1024 blue values, each 32x32 row-major."""
    folder = write_cifar_like(tmp_path / "cifar-10-batches-py", per_batch=10, n_test=10)
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.arange(1024) % 256]).astype(np.uint8)
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({"labels": [7] * 10, "data": np.tile(row, (10, 1))}, f)
    data = load_dataset("cifar10", data_dir=tmp_path, download=False)
    img = data.train_x[10]  # first image of batch 2: batches are concatenated in order
    assert data.train_y[10] == 7
    assert (img[0] == 10).all() and (img[1] == 20).all()
    np.testing.assert_array_equal(img[2], (np.arange(1024) % 256).reshape(32, 32))


@pytest.mark.parametrize("layout", ["mnist", "."])
def test_other_mnist_layouts(tmp_path, layout):
    write_mnist_like(tmp_path / layout, n_train=30, n_test=10)
    data = load_dataset("mnist", data_dir=tmp_path, download=False)
    _check_image_data(data, 30, 10, 1, 28)


def test_data_dir_accepts_str_and_tilde(tmp_path, isolated_env):
    home, _ = isolated_env
    write_mnist_like(home / "d" / "MNIST" / "raw", n_train=30, n_test=10)
    assert len(load_dataset("mnist", data_dir=str(home / "d"), download=False).train_x) == 30
    assert len(load_dataset("mnist", data_dir="~/d", download=False).train_x) == 30


# ---------------------------------------------------------------------------------------------
# load_dataset: not found, incomplete, corrupt


def test_unknown_dataset_name_raises():
    with pytest.raises(DatasetError, match="imagenet"):
        load_dataset("imagenet", download=False)


def test_data_dir_that_does_not_exist_raises_naming_it(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=missing, download=False)
    assert str(missing) in str(info.value)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", data_dir=a_file, download=False)
    assert str(a_file) in str(info.value)


@pytest.mark.parametrize(
    "name, layout",
    [
        ("cifar10", "cifar-10-batches-py"),
        pytest.param(
            "mnist",
            "MNIST/raw",
            marks=pytest.mark.skipif(MNIST_SYSTEM_DIR.is_dir(), reason="Debian's MNIST is installed"),
        ),
    ],
)
def test_not_found_lists_the_folders_searched(tmp_path, isolated_env, name, layout):
    home, env = isolated_env
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_dir=empty, download=False)
    message = str(info.value)
    assert name in message and "not found" in message
    for folder in (empty / layout, env / layout, home / ".cache" / "nas_gym" / layout):
        assert str(folder.resolve()) in message, folder
    assert message.index(str(empty)) < message.index(str(env)) < message.index(str(home))
    assert not (home / ".cache" / "nas_gym").exists()  # download=False writes nothing


@pytest.mark.parametrize("missing", IDX_STEMS)
def test_missing_idx_file_raises_naming_it(tmp_path, missing):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=30, n_test=10)
    (folder / f"{missing}.gz").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert missing in str(info.value)
    assert str(folder.resolve()) in str(info.value)


@pytest.mark.parametrize("missing", ["data_batch_1", "data_batch_3", "test_batch"])
def test_missing_cifar_batch_raises_naming_it(tmp_path, missing):
    folder = write_cifar_like(tmp_path / "cifar-10-batches-py", per_batch=10, n_test=10)
    (folder / missing).unlink()
    with pytest.raises(DatasetError, match=missing):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_truncated_idx_in_a_dataset_folder_raises_naming_the_file(tmp_path):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=30, n_test=10)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_images_and_labels_of_different_lengths_raise(tmp_path):
    folder = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=30, n_test=10)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(29, dtype=np.uint8))
    with pytest.raises(DatasetError, match="train"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def _pickled_batch(n: int = 4) -> bytes:
    data = np.zeros((n, 3072), dtype=np.uint8)
    return pickle.dumps({"batch_label": "x", "labels": [0] * n, "data": data}, protocol=2)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated"),
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: bytes(range(256)), id="garbage"),
        pytest.param(lambda raw: raw.replace(b"numpy", b"nump~", 1), id="bad-global"),
        pytest.param(lambda raw: raw.replace(b"latin1", b"latinX", 1), id="bad-encoding"),
        pytest.param(lambda raw: pickle.dumps([1, 2, 3]), id="not-a-dict"),
        pytest.param(lambda raw: pickle.dumps({"data": np.zeros((4, 3072), np.uint8)}), id="no-labels"),
        pytest.param(
            lambda raw: pickle.dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}),
            id="wrong-row-size",
        ),
        pytest.param(
            lambda raw: pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 3}),
            id="label-count",
        ),
    ],
)
def test_corrupt_cifar_batch_raises_naming_the_file(tmp_path, corrupt):
    folder = write_cifar_like(tmp_path / "cifar-10-batches-py", per_batch=10, n_test=10)
    bad = folder / "data_batch_4"
    bad.write_bytes(corrupt(_pickled_batch()))
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert str(bad) in str(info.value)


# ---------------------------------------------------------------------------------------------
# load_dataset: lookup order


def test_nas_gym_data_is_used_when_data_dir_is_none(isolated_env):
    _, env = isolated_env
    write_mnist_like(env / "MNIST" / "raw", n_train=30, n_test=10)
    data = load_dataset("mnist", download=False)
    assert len(data.train_x) == 30
    assert Path(data.source) == (env / "MNIST" / "raw").resolve()


def test_data_dir_wins_over_nas_gym_data(tmp_path, isolated_env):
    _, env = isolated_env
    write_mnist_like(env / "MNIST" / "raw", n_train=30, n_test=10)
    write_mnist_like(tmp_path / "MNIST" / "raw", n_train=40, n_test=10)
    data = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert len(data.train_x) == 40
    assert Path(data.source) == (tmp_path / "MNIST" / "raw").resolve()


def test_nas_gym_data_wins_over_the_user_cache(isolated_env):
    home, env = isolated_env
    write_cifar_like(home / ".cache" / "nas_gym" / "cifar-10-batches-py", per_batch=4, n_test=4)
    data = load_dataset("cifar10", download=False)
    assert len(data.train_x) == 20  # the cache is used when nothing comes before it
    write_cifar_like(env / "cifar-10-batches-py", per_batch=6, n_test=4)
    assert len(load_dataset("cifar10", download=False).train_x) == 30


def test_empty_nas_gym_data_is_ignored(tmp_path, monkeypatch, isolated_env):
    home, _ = isolated_env
    monkeypatch.setenv("NAS_GYM_DATA", "")
    write_mnist_like(home / ".cache" / "nas_gym" / "MNIST" / "raw", n_train=20, n_test=10)
    assert len(load_dataset("mnist", download=False).train_x) == 20


# ---------------------------------------------------------------------------------------------
# the shipped subset and Debian's Fashion-MNIST


def test_shipped_fashion_mini_loads_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_GYM_DATA", str(tmp_path / "nowhere"))
    data = load_dataset("fashion_mini", download=False)
    _check_image_data(data, 10_000, 2_000, 1, 28)
    assert np.bincount(data.train_y, minlength=10).tolist() == [1000] * 10
    assert np.bincount(data.test_y, minlength=10).tolist() == [200] * 10
    assert data.train_x.max() > 200  # real images, not blank
    # the same subset however it is asked for
    again = load_dataset("fashion_mini", data_dir=tmp_path, download=True)
    np.testing.assert_array_equal(again.train_x, data.train_x)


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_loads_through_the_lookup():
    data = load_dataset("fashion_mnist", download=False)
    _check_image_data(data, 60_000, 10_000, 1, 28)
    assert Path(data.source) == FASHION_SYSTEM_DIR
    assert np.bincount(data.train_y, minlength=10).tolist() == [6000] * 10
    assert np.bincount(data.test_y, minlength=10).tolist() == [1000] * 10


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_a_data_root_comes_before_debians_folder(isolated_env):
    _, env = isolated_env
    write_mnist_like(env / "fashion-mnist", n_train=30, n_test=10)
    assert len(load_dataset("fashion_mnist", download=False).train_x) == 30


# ---------------------------------------------------------------------------------------------
# split_train_val


def _numbered(n: int = 200, n_test: int = 50) -> ImageData:
    """Image i is filled with i % 256 and labelled i, so every sample can be traced."""
    ids = np.arange(n)
    x = np.broadcast_to((ids % 256).astype(np.uint8)[:, None, None, None], (n, 1, 4, 4)).copy()
    tx = np.full((n_test, 1, 4, 4), 255, dtype=np.uint8)
    return ImageData("numbered", x, ids.astype(np.int64), tx, np.arange(n_test) + 10_000, 10, "mem")


def test_split_sizes_are_exact_and_disjoint():
    data = _numbered()
    split = split_train_val(data, train_size=120, val_size=50, split_seed=0)
    assert split.train_x.shape == (120, 1, 4, 4) and split.train_y.shape == (120,)
    assert split.val_x.shape == (50, 1, 4, 4) and split.val_y.shape == (50,)
    train_ids, val_ids = set(split.train_y.tolist()), set(split.val_y.tolist())
    assert len(train_ids) == 120 and len(val_ids) == 50
    assert not train_ids & val_ids
    assert train_ids | val_ids <= set(range(200))  # carved from the training set, never the test set
    # images stay with their labels
    np.testing.assert_array_equal(split.train_x[:, 0, 0, 0], split.train_y % 256)
    np.testing.assert_array_equal(split.val_x[:, 0, 0, 0], split.val_y % 256)


def test_split_without_train_size_uses_the_rest():
    split = split_train_val(_numbered(), train_size=None, val_size=30)
    assert len(split.val_y) == 30 and len(split.train_y) == 170
    assert set(split.train_y.tolist()) | set(split.val_y.tolist()) == set(range(200))


def test_split_is_deterministic_for_a_seed():
    data = _numbered()
    a = split_train_val(data, 100, 40, split_seed=3)
    b = split_train_val(data, 100, 40, split_seed=3)
    c = split_train_val(data, 100, 40, split_seed=4)
    np.testing.assert_array_equal(a.train_y, b.train_y)
    np.testing.assert_array_equal(a.val_y, b.val_y)
    assert not np.array_equal(a.val_y, c.val_y)
    # the validation set does not depend on how much training data is asked for
    d = split_train_val(data, 60, 40, split_seed=3)
    np.testing.assert_array_equal(a.val_y, d.val_y)
    # and it is not simply the first images
    assert sorted(a.val_y.tolist()) != list(range(40))


@pytest.mark.parametrize(
    "train_size, val_size, field",
    [
        (100, 0, "val_size"),
        (100, -5, "val_size"),
        (None, 200, "val_size"),
        (None, 1000, "val_size"),
        (0, 50, "train_size"),
        (-1, 50, "train_size"),
        (151, 50, "train_size"),
        (1000, 50, "train_size"),
    ],
)
def test_split_rejects_bad_sizes_naming_the_field(train_size, val_size, field):
    with pytest.raises(ValueError, match=field):
        split_train_val(_numbered(), train_size=train_size, val_size=val_size)


def test_split_of_everything_is_allowed():
    split = split_train_val(_numbered(), train_size=150, val_size=50)
    assert len(split.train_y) + len(split.val_y) == 200


# ---------------------------------------------------------------------------------------------
# resize_images


def test_resize_28_to_14_keeps_uint8_and_averages_2x2_blocks():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 1, 28, 28), dtype=np.uint8)
    out = resize_images(x, 14)
    assert out.dtype == np.uint8
    assert out.shape == (3, 1, 14, 14)
    blocks = x.reshape(3, 1, 14, 2, 14, 2).astype(np.float64).mean(axis=(3, 5))
    assert np.abs(out.astype(np.float64) - blocks).max() <= 0.5 + 1e-6


def test_resize_keeps_channels_and_extremes():
    x = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    x[:, 1] = 255
    out = resize_images(x, 16)
    assert out.shape == (2, 3, 16, 16) and out.dtype == np.uint8
    assert (out[:, 0] == 0).all() and (out[:, 1] == 255).all()


def test_resize_to_the_same_size_is_a_no_op_and_upscaling_raises():
    x = _array((2, 1, 28, 28))
    np.testing.assert_array_equal(resize_images(x, 28), x)
    with pytest.raises(ValueError, match="image_size"):
        resize_images(x, 32)
