"""The child trainer: data resident on the device, batches indexed and augmented there.

No DataLoader and no per-sample transforms: the split lives on the device as uint8 tensors,
each step indexes a batch, normalises it (and on CIFAR-10 crops and flips it) on the device.
channels_last everywhere (oneDNN's CPU convolutions are about 25% faster with it too); fp32 on
the CPU; on CUDA bf16 autocast and cudnn.benchmark.

It receives a model *factory* and never sees an architecture. A child that diverges (NaN
loss), runs out of memory or overruns its wall-clock limit ends with a status and accuracy
0.0 instead of an exception, so one bad child never ends a search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "STATUSES",
    "DeviceData",
    "TrainConfig",
    "TrainResult",
    "count_steps",
    "evaluate_accuracy",
    "make_optimizer",
    "resolve_device",
    "train",
]

STATUSES = ("ok", "diverged", "out_of_memory", "timeout", "error")  # what train() itself returns
_EVAL_BATCH = 1024
_CROP_PAD = 4  # pixels of zero padding for the random crop (the usual CIFAR-10 setting)


@dataclass(frozen=True)
class TrainConfig:
    """How long and how one child is trained. Every field is part of the result store's key."""

    epochs: float = 1.0  # passes over the training split; fractions allowed
    batch_size: int = 128
    lr: float = 0.05  # peak SGD learning rate of the one-cycle schedule
    momentum: float = 0.9  # Nesterov
    weight_decay: float = 5e-4
    warmup: float = 0.2  # fraction of the steps spent warming the learning rate up
    label_smoothing: float = 0.1
    augment: bool = False  # random crop (4 px padding) + horizontal flip
    flip: bool = True  # with augment, the horizontal flip too (False: crops only, for digits or text)
    time_limit: float | None = None  # wall-clock seconds for one child; None = no limit

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.batch_size, int):
            raise ValueError(f"batch_size must be an int, got {self.batch_size!r}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds or None, got {self.time_limit}")

    def key(self) -> dict[str, object]:
        """The fields that change a trained child's accuracy (time_limit does not); ``flip`` only
        where it is off under ``augment`` (so every key written before it existed reads the same)."""
        key: dict[str, object] = {
            "epochs": float(self.epochs),
            "batch_size": self.batch_size,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "warmup": self.warmup,
            "label_smoothing": self.label_smoothing,
            "augment": self.augment,
        }
        if self.augment and not self.flip:
            key["flip"] = False
        return key


@dataclass(frozen=True)
class TrainResult:
    accuracy: float  # validation accuracy in [0, 1]; 0.0 unless status == "ok"
    status: str  # one of STATUSES
    train_seconds: float  # wall clock of the training loop (device synchronised)
    steps: int
    samples_per_second: float
    message: str = ""
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    # the validation curve: (epoch, accuracy, train seconds so far) after every whole epoch, the
    # last point at the configured epochs (its accuracy is ``accuracy``); empty for a failed child
    curve: tuple[tuple[float, float, float], ...] = ()


@dataclass(frozen=True)
class DeviceData:
    """A train/validation split resident on one device as uint8 images and int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: torch.Tensor  # (1, C, 1, 1) float32, in [0, 1] units
    std: torch.Tensor

    @classmethod
    def from_numpy(
        cls,
        train_x: np.ndarray,
        train_y: np.ndarray,
        val_x: np.ndarray,
        val_y: np.ndarray,
        device: torch.device | str = "cpu",
    ) -> DeviceData:
        device = torch.device(device)
        if train_x.dtype != np.uint8 or val_x.dtype != np.uint8:
            raise ValueError("images must be uint8 (N, C, H, W)")
        scaled = train_x.astype(np.float32) / 255.0
        mean = scaled.mean(axis=(0, 2, 3)).reshape(1, -1, 1, 1)
        std = scaled.std(axis=(0, 2, 3)).reshape(1, -1, 1, 1) + 1e-6

        def put(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device)

        return cls(
            put(train_x),
            put(train_y.astype(np.int64)),
            put(val_x),
            put(val_y.astype(np.int64)),
            put(mean),
            put(std),
        )

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def with_validation(self, x: np.ndarray, y: np.ndarray) -> DeviceData:
        """The same training images (and normalisation) measured on another held-out set."""
        return DeviceData(
            self.train_x,
            self.train_y,
            torch.from_numpy(np.ascontiguousarray(x)).to(self.device),
            torch.from_numpy(y.astype(np.int64)).to(self.device),
            self.mean,
            self.std,
        )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means the best available: CUDA when present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device {str(device)!r} is not a device torch knows (e.g. 'cpu', 'cuda', 'cuda:1')"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available")
    return device


def _normalise(x: torch.Tensor, data: DeviceData) -> torch.Tensor:
    out = (x.float().div_(255.0) - data.mean) / data.std
    return out.contiguous(memory_format=torch.channels_last)


def _augment(x: torch.Tensor, generator: torch.Generator, flip_images: bool = True) -> torch.Tensor:
    """Random crop with 4 px zero padding and (``flip_images``) a random horizontal flip, per
    sample, on device."""
    n, _, h, w = x.shape
    padded = F.pad(x, (_CROP_PAD,) * 4)
    dev = x.device
    dy = torch.randint(0, 2 * _CROP_PAD + 1, (n,), device=dev, generator=generator)
    dx = torch.randint(0, 2 * _CROP_PAD + 1, (n,), device=dev, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    batch = torch.arange(n, device=dev)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    cropped = padded[batch, chans, rows, cols]
    if not flip_images:
        return cropped
    flip = torch.rand(n, device=dev, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)


Progress = Callable[[], None]


def _no_progress() -> None:
    pass


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: DeviceData, progress: Progress = _no_progress
) -> float:
    """Top-1 accuracy of ``model`` on uint8 images ``x`` normalised like ``data``."""
    model.eval()
    cuda = x.device.type == "cuda"
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for i in range(0, len(x), _EVAL_BATCH):
        xb = _normalise(x[i : i + _EVAL_BATCH], data)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = model(xb)
        correct += (logits.argmax(1) == y[i : i + _EVAL_BATCH]).sum()
        progress()
    return int(correct) / max(1, len(x))


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return "out of memory" in text or "can't allocate memory" in text


def train(
    make_model: Callable[[], nn.Module],
    data: DeviceData,
    config: TrainConfig,
    seed: int,
    keep_model: bool = False,
    progress: Progress = _no_progress,
    curve: bool = True,
) -> TrainResult:
    """Train ``make_model()`` on ``data`` for ``config`` and measure validation accuracy.

    The model's initial weights, the batch order, augmentation and dropout all derive from
    ``seed``: on the CPU the same seed gives the same accuracy. The global RNG state is left
    as it was. ``progress()`` is called after every optimizer step and evaluation batch (a
    watchdog in another process tells a slow child from a hung one by it).

    With ``curve`` (default) the validation accuracy is also measured after every whole epoch
    (:attr:`TrainResult.curve`). Measuring it draws no random numbers and changes no weight or
    statistic (evaluation mode, no gradients), so the final accuracy is the same with or without
    it; its seconds are left out of ``train_seconds``.
    """
    device = data.device
    cuda = device.type == "cuda"
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    start = time.perf_counter()
    steps = 0
    # enable_grad: a caller may step the env inside torch.no_grad() (an agent sampling actions)
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        torch.manual_seed(seed)
        try:
            model = make_model().to(device)
            result = _train_loop(model, data, config, seed, start, progress, curve)
            steps = result.steps
        except (RuntimeError, torch.OutOfMemoryError) as e:
            status = "out_of_memory" if _is_out_of_memory(e) else "error"
            if cuda:
                torch.cuda.empty_cache()
            return TrainResult(0.0, status, time.perf_counter() - start, steps, 0.0, str(e)[:500])
    if not keep_model:
        result = replace(result, model=None)
    return result


def count_steps(config: TrainConfig, n: int) -> int:
    """Optimizer steps of one training on ``n`` images (the ragged last batch is dropped: BN
    dislikes tiny batches)."""
    bs = min(config.batch_size, n)
    return max(1, math.ceil(config.epochs * max(1, n // bs)))


def make_optimizer(model: nn.Module, config: TrainConfig, total_steps: int):
    """SGD (Nesterov) with a linear one-cycle schedule over ``total_steps`` steps."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    pct_start = max(config.warmup, 1e-3)
    if float(pct_start * (total_steps + 1)) - 1 == 0:
        # OneCycleLR divides by zero when its warm-up phase ends exactly on step 0 (warmup 0.2
        # with 4 steps): lengthen that phase by a hair (the rates move by about 1e-6 relative)
        pct_start *= 1 + 1e-6
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=total_steps + 1,  # OneCycleLR counts its own first step
        pct_start=pct_start,
        anneal_strategy="linear",
        cycle_momentum=False,
    )
    return optimizer, schedule


def _train_loop(
    model: nn.Module,
    data: DeviceData,
    config: TrainConfig,
    seed: int,
    start: float,
    progress: Progress,
    record_curve: bool = True,
) -> TrainResult:
    device = data.device
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    model = model.to(memory_format=torch.channels_last)
    n = len(data.train_x)
    bs, steps_per_epoch, total_steps = _batching(config, n)
    optimizer, schedule = make_optimizer(model, config, total_steps)
    generator = torch.Generator(device=device).manual_seed(seed)
    check_every = 1 if not cuda else 25  # a NaN check synchronises the GPU
    loss_sum = torch.zeros((), device=device)

    model.train()
    step = 0
    status, message = "ok", ""
    curve: list[tuple[float, float, float]] = []
    measuring = 0.0  # seconds spent on the curve, left out of the training's seconds
    while step < total_steps and status == "ok":
        order = torch.randperm(n, device=device, generator=generator)
        for b in range(steps_per_epoch):
            if step >= total_steps:
                break
            idx = order[b * bs : (b + 1) * bs]
            xb = data.train_x[idx]
            if config.augment:
                xb = _augment(xb, generator, config.flip)
            xb = _normalise(xb, data)
            yb = data.train_y[idx]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(xb), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            progress()
            loss_sum += loss.detach()
            if step % check_every == 0 or step == total_steps:
                if not torch.isfinite(loss_sum):
                    status, message = "diverged", f"loss is not finite at step {step}"
                    break
            if config.time_limit is not None and time.perf_counter() - start - measuring > config.time_limit:
                status, message = "timeout", f"time limit of {config.time_limit} s reached at step {step}"
                break
        if record_curve and status == "ok" and step < total_steps:  # a whole epoch ended
            measuring = _record_curve_point(
                model, data, progress, curve, step / steps_per_epoch, start, measuring
            )
    return _finish_training(model, data, config, progress, status, message, step, bs, curve, start, measuring)


def _batching(config: TrainConfig, n: int) -> tuple[int, int, int]:
    """The batch size, steps per epoch and total optimizer steps of one training on ``n`` images."""
    bs = min(config.batch_size, n)
    return bs, max(1, n // bs), count_steps(config, n)


def _record_curve_point(
    model: nn.Module,
    data: DeviceData,
    progress: Progress,
    curve: list[tuple[float, float, float]],
    epoch: float,
    start: float,
    measuring: float,
) -> float:
    """Append the validation accuracy after a whole epoch to ``curve``; return the seconds measured so far."""
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    paused = time.perf_counter()
    point = evaluate_accuracy(model, data.val_x, data.val_y, data, progress)
    curve.append((epoch, point, paused - start - measuring))
    model.train()
    return measuring + (time.perf_counter() - paused)


def _finish_training(
    model: nn.Module,
    data: DeviceData,
    config: TrainConfig,
    progress: Progress,
    status: str,
    message: str,
    step: int,
    bs: int,
    curve: list[tuple[float, float, float]],
    start: float,
    measuring: float,
) -> TrainResult:
    """Time the ended training, measure its final accuracy (when it ended ok) and assemble the result."""
    if data.device.type == "cuda":
        torch.cuda.synchronize(data.device)
    seconds = time.perf_counter() - start - measuring
    accuracy = 0.0
    if status == "ok":
        accuracy = evaluate_accuracy(model, data.val_x, data.val_y, data, progress)
        if not math.isfinite(accuracy):
            status, accuracy = "diverged", 0.0
        else:
            curve.append((float(config.epochs), accuracy, seconds))
    rate = step * bs / max(seconds, 1e-9)
    return TrainResult(
        accuracy, status, seconds, step, rate, message, model, tuple(curve) if status == "ok" else ()
    )
