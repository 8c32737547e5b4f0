"""The child trainer: real (tiny) trainings on synthetic device data, no mocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas_gym.models import build_model
from nas_gym.search_space import Architecture
from nas_gym.training.trainer import (
    STATUSES,
    DeviceData,
    TrainConfig,
    _augment,
    evaluate_accuracy,
    resolve_device,
    train,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")

SIZE = 8
CLASSES = 10


def _synthetic(n: int, channels: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # like conftest's fixtures: class-dependent brightness over uniform noise, so it is learnable
    y = (np.arange(n) % CLASSES).astype(np.int64)
    noise = rng.integers(0, 60, size=(n, channels, SIZE, SIZE))
    x = np.clip(noise + y[:, None, None, None] * 18, 0, 255).astype(np.uint8)
    return x, y


@pytest.fixture(scope="module")
def data() -> DeviceData:
    rng = np.random.default_rng(0)
    tx, ty = _synthetic(512, 3, rng)
    vx, vy = _synthetic(256, 3, rng)
    return DeviceData.from_numpy(tx, ty, vx, vy)


def conv_net() -> nn.Module:
    # a child as the env builds it, dropout included (its mask must come from the seed too)
    return build_model(Architecture.parse("C32k3-DR-MP2-C64k3"), 3, SIZE, CLASSES, width=0.25)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 64), nn.ReLU(), nn.Linear(64, CLASSES))


QUICK = TrainConfig(epochs=1.0, batch_size=64, lr=0.05, augment=True)


def _weights(model: nn.Module | None) -> list[torch.Tensor]:
    assert model is not None
    return [t.detach().clone() for t in model.state_dict().values()]


# -- reproducibility ------------------------------------------------------------------------------


def test_same_seed_gives_identical_accuracy_and_weights(data: DeviceData) -> None:
    torch.manual_seed(1)  # the global state must not leak into the child
    first = train(conv_net, data, QUICK, seed=5, keep_model=True)
    torch.manual_seed(2)
    second = train(conv_net, data, QUICK, seed=5, keep_model=True)
    assert first.status == second.status == "ok"
    assert first.accuracy == second.accuracy
    assert first.steps == second.steps
    for a, b in zip(_weights(first.model), _weights(second.model), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("epochs", [3.0, 2.5, 0.5])
def test_recording_the_curve_changes_neither_the_accuracy_nor_the_weights(
    data: DeviceData, epochs: float
) -> None:
    # the evaluation after every epoch draws no random numbers and touches no weight or BN statistic
    config = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, augment=True)
    plain = train(conv_net, data, config, seed=5, keep_model=True, curve=False)
    curved = train(conv_net, data, config, seed=5, keep_model=True)
    assert curved.accuracy == plain.accuracy and curved.steps == plain.steps
    assert all(torch.equal(a, b) for a, b in zip(_weights(plain.model), _weights(curved.model), strict=True))
    whole = [float(e) for e in range(1, math.ceil(epochs))]
    assert [e for e, _, _ in curved.curve] == [*whole, epochs]
    assert curved.curve[-1][1] == curved.accuracy and plain.curve == (
        (epochs, plain.accuracy, plain.train_seconds),
    )
    seconds = [t for _, _, t in curved.curve]
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(curved.train_seconds)
    assert all(0.0 <= a <= 1.0 for _, a, _ in curved.curve)


def test_a_failed_child_has_no_curve(data: DeviceData) -> None:
    result = train(conv_net, data, TrainConfig(epochs=2.0, batch_size=64, lr=1e30), seed=0)
    assert result.status == "diverged" and result.curve == ()


def test_different_seed_gives_a_different_child(data: DeviceData) -> None:
    a = train(conv_net, data, QUICK, seed=0, keep_model=True)
    b = train(conv_net, data, QUICK, seed=1, keep_model=True)
    assert a.status == b.status == "ok"
    assert any(not torch.equal(x, y) for x, y in zip(_weights(a.model), _weights(b.model), strict=True))


def test_global_rng_state_is_left_unchanged(data: DeviceData) -> None:
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    expected_next = torch.rand(3)
    torch.set_rng_state(before)
    result = train(conv_net, data, QUICK, seed=9)
    assert result.status == "ok"
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(3), expected_next)


def test_model_is_returned_only_when_asked(data: DeviceData) -> None:
    cfg = TrainConfig(epochs=0.25, batch_size=64)
    assert train(conv_net, data, cfg, seed=0).model is None
    kept = train(conv_net, data, cfg, seed=0, keep_model=True)
    assert isinstance(kept.model, nn.Module)
    # the kept model is the trained one: measuring it again gives the reported accuracy
    assert evaluate_accuracy(kept.model, data.val_x, data.val_y, data) == kept.accuracy


def test_result_fields(data: DeviceData) -> None:
    cfg = TrainConfig(epochs=1.5, batch_size=64)
    result = train(conv_net, data, cfg, seed=0)
    assert result.status == "ok" and result.status in STATUSES
    assert 0.0 <= result.accuracy <= 1.0
    assert result.steps == math.ceil(1.5 * (512 // 64))
    assert result.train_seconds > 0 and result.samples_per_second > 0
    assert result.message == ""


@pytest.mark.parametrize("warmup", [0.0, 0.2, 0.25, 0.5])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7])
def test_every_short_schedule_trains(data: DeviceData, warmup: float, steps: int) -> None:
    # 512 images in batches of 64: epochs = steps / 8. With warmup 0.2 and 4 steps the one-cycle
    # schedule's warm-up ends exactly on step 0, which used to raise ZeroDivisionError.
    cfg = TrainConfig(epochs=steps / 8, batch_size=64, warmup=warmup)
    result = train(mlp, data, cfg, seed=0)
    assert result.status == "ok"
    assert result.steps == steps


def test_learnable_data_is_learned(data: DeviceData) -> None:
    result = train(mlp, data, TrainConfig(epochs=6, batch_size=64, lr=0.1), seed=0)
    assert result.status == "ok"
    assert result.accuracy > 0.35  # chance is 0.1


# -- failures become statuses, never exceptions ---------------------------------------------------


def test_huge_learning_rate_diverges(data: DeviceData) -> None:
    result = train(conv_net, data, TrainConfig(epochs=1, batch_size=64, lr=1e30), seed=0)
    assert result.status == "diverged"
    assert result.accuracy == 0.0
    assert "not finite" in result.message


class _NaNForward(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * SIZE * SIZE, CLASSES)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * self.value


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_forward_diverges(data: DeviceData, value: float) -> None:
    result = train(lambda: _NaNForward(value), data, TrainConfig(epochs=1, batch_size=64), seed=0)
    assert result.status == "diverged"
    assert result.accuracy == 0.0
    assert result.steps == 1  # stopped at the first non-finite loss on the CPU


def test_tiny_time_limit_times_out(data: DeviceData) -> None:
    cfg = TrainConfig(epochs=20, batch_size=64, time_limit=1e-9)
    result = train(conv_net, data, cfg, seed=0)
    assert result.status == "timeout"
    assert result.accuracy == 0.0
    assert 1 <= result.steps < 20 * (512 // 64)
    assert "time limit" in result.message


def _factory_raising_oom() -> nn.Module:
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")


class _AllocFailure(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)"
        )


@pytest.mark.parametrize("factory", [_factory_raising_oom, _AllocFailure], ids=["factory", "forward"])
def test_out_of_memory_is_a_status(data: DeviceData, factory) -> None:
    result = train(factory, data, QUICK, seed=0)
    assert result.status == "out_of_memory"
    assert result.accuracy == 0.0
    assert "allocate" in result.message


class _Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # shape mismatch: a RuntimeError that is not about memory


def test_other_runtime_error_is_status_error(data: DeviceData) -> None:
    result = train(_Broken, data, QUICK, seed=0)
    assert result.status == "error"
    assert result.accuracy == 0.0
    assert result.message


def test_rng_state_restored_after_failure(data: DeviceData) -> None:
    torch.manual_seed(77)
    before = torch.get_rng_state()
    assert train(_factory_raising_oom, data, QUICK, seed=0).status == "out_of_memory"
    assert torch.equal(torch.get_rng_state(), before)


# -- TrainConfig validation -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["epochs", "batch_size", "lr"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), -0.5])
def test_config_rejects_non_positive_or_non_finite(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_config_rejects_fractional_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(warmup=1.0), "warmup"),
        (dict(label_smoothing=-0.1), "label_smoothing"),
        (dict(time_limit=0), "time_limit"),
        (dict(momentum=-1), "momentum"),
    ],
)
def test_config_rejects_other_bad_fields(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def test_config_accepts_fractional_epochs_and_key_ignores_time_limit() -> None:
    a = TrainConfig(epochs=0.5, time_limit=10)
    b = TrainConfig(epochs=0.5)
    assert a.key() == b.key()
    assert a.key()["epochs"] == 0.5
    assert TrainConfig(epochs=1).key() != TrainConfig(epochs=2).key()


# -- augmentation ---------------------------------------------------------------------------------


def _crops_and_flips(image: torch.Tensor, pad: int = 4) -> list[torch.Tensor]:
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (pad,) * 4)
    out = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            out += [crop, crop.flip(-1)]
    return out


def test_augment_keeps_shape_dtype_and_is_a_crop_or_flip() -> None:
    x = torch.randint(
        0, 256, (16, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    out = _augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    for original, augmented in zip(x, out, strict=True):
        assert any(torch.equal(augmented, c) for c in _crops_and_flips(original))


def test_augment_is_deterministic_for_a_generator_seed() -> None:
    x = torch.randint(
        0, 256, (32, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    a = _augment(x, torch.Generator().manual_seed(3))
    b = _augment(x, torch.Generator().manual_seed(3))
    c = _augment(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augment_does_not_touch_the_global_rng() -> None:
    x = torch.zeros((4, 1, SIZE, SIZE), dtype=torch.uint8)
    before = torch.get_rng_state()
    _augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), before)


# -- data and device ------------------------------------------------------------------------------


def test_device_data_rejects_non_uint8() -> None:
    x = np.zeros((4, 1, SIZE, SIZE), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="uint8"):
        DeviceData.from_numpy(x, y, x, y)


def test_device_data_normalisation_statistics(data: DeviceData) -> None:
    assert data.mean.shape == data.std.shape == (1, 3, 1, 1)
    assert data.train_x.dtype == data.val_x.dtype == torch.uint8
    assert data.train_y.dtype == torch.int64
    assert data.device.type == "cpu"


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda:1")
