"""Trainer throughput: our device-resident trainer against the usual torchvision DataLoader loop.

Both loops train the SAME child (``nas_gym.models.build_model``, same seed, so the same initial
weights) on the SAME split for the SAME number of optimizer steps with the same optimizer and
schedule (SGD Nesterov, linear one-cycle, label smoothing: the env's ``TrainConfig``), in this one
process, and are measured by the same evaluation code on the same validation split.

(a) ours: ``nas_gym.training.trainer.train``: the split lives on the device as uint8, batches are
    indexed, normalised (and on CIFAR-10 cropped and flipped) there.
(b) the usual PyTorch loop: a ``Dataset`` that yields PIL images through ``torchvision.transforms``
    (RandomCrop(pad 4) + RandomHorizontalFlip on CIFAR-10, ToTensor, Normalize with the same
    mean/std), a ``DataLoader(shuffle=True, drop_last=True)`` for each ``--workers`` setting
    (persistent workers; on CUDA pin_memory and non_blocking copies). On the CPU it runs NCHW, as
    a plain loop does (ours runs channels_last); one more row repeats its best setting in
    channels_last, and ``speedup_vs_dataloader_same_memory_format`` isolates the data path. On
    CUDA it uses the same bf16 autocast, channels_last and cudnn.benchmark as ours.

Images are resized to the env's image_size ONCE, before either loop (the same uint8 arrays feed
both), so the comparison is about the loop and not about a Resize transform.

Timed span, for both: from building the model to the end of the last optimizer step (CUDA
synchronised); the data load and the final evaluation are outside it. Worker start-up is inside
it: it is part of what a DataLoader costs. A short untimed warm-up first initialises CUDA and
cudnn's autotuner so neither loop pays it. With ``--repeats`` > 1 each loop reports its best time
and its mean accuracy.

The last line printed is exactly ``speedup_vs_dataloader: X.XX``: our samples/s over the BEST
DataLoader setting's.

    python benchmarks/trainer_throughput.py                      # NASFashionMini-v0, its budget
    python benchmarks/trainer_throughput.py --epochs 0.5 --workers 0,2,4 --repeats 3
    python benchmarks/trainer_throughput.py --env NASFashionMNIST-v0 --device cuda --workers 0,4,8
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from nas_gym.models import build_model, count_parameters
from nas_gym.registration import ENV_IDS
from nas_gym.search_space import Architecture
from nas_gym.training.datasets import load_dataset, resize_images, split_train_val
from nas_gym.training.trainer import (
    DeviceData,
    TrainConfig,
    count_steps,
    evaluate_accuracy,
    make_optimizer,
    resolve_device,
    train,
)

DEFAULT_ARCH = "C32k3-R64-AP2"  # a typical 3-layer child of the mini env
WARMUP_STEPS = 5  # untimed steps that initialise CUDA and cudnn's autotuner for the batch shape


# ---------------------------------------------------------------------------------------------
# the workload: one child, one split, one budget


@dataclass(frozen=True)
class Workload:
    env_id: str
    arch: Architecture
    make_model: Callable[[], nn.Module]
    config: TrainConfig
    data: DeviceData  # ours reads this; the evaluation of both loops too
    train_x: np.ndarray  # the same (pre-resized) uint8 images, on the host, for the DataLoader
    train_y: np.ndarray
    augment: bool
    image_size: int
    total_steps: int


def prepare(
    env_id: str,
    arch_text: str,
    device: torch.device,
    epochs: float | None = None,
    data_dir: str | None = None,
    train_size: int | None = None,
    val_size: int | None = None,
    download: bool = True,
) -> Workload:
    """Read the env's dataset and budget, carve the split, resize once, put it on ``device``."""
    if env_id not in ENV_IDS:
        raise SystemExit(f"unknown env {env_id!r}; known: {', '.join(ENV_IDS)}")
    budget = ENV_IDS[env_id]
    info = budget.dataset_info
    image_size = int(budget.image_size)  # type: ignore[arg-type]
    config = budget.train_config(epochs=float(epochs) if epochs is not None else None)
    arch = Architecture.parse(arch_text)
    if not arch.fits(image_size):
        raise SystemExit(f"{arch} shrinks a {image_size}x{image_size} input below 1x1")
    width = float(budget.width)

    raw = load_dataset(info.name, data_dir, download)
    split = split_train_val(
        raw,
        train_size if train_size is not None else budget.train_size,
        val_size if val_size is not None else budget.val_size,
    )
    train_x = resize_images(split.train_x, image_size)
    data = DeviceData.from_numpy(
        train_x, split.train_y, resize_images(split.val_x, image_size), split.val_y, device
    )

    def make_model() -> nn.Module:
        return build_model(arch, info.channels, image_size, info.num_classes, width)

    return Workload(
        env_id,
        arch,
        make_model,
        config,
        data,
        train_x,
        split.train_y.astype(np.int64),
        info.augment,
        image_size,
        count_steps(config, len(train_x)),
    )


@dataclass(frozen=True)
class Run:
    seconds: float
    steps: int
    samples: int
    accuracy: float


# ---------------------------------------------------------------------------------------------
# (a) ours


def run_ours(work: Workload, seed: int) -> Run:
    result = train(work.make_model, work.data, work.config, seed)
    if result.status != "ok":
        raise RuntimeError(f"our trainer ended {result.status}: {result.message}")
    bs = min(work.config.batch_size, len(work.train_x))
    return Run(result.train_seconds, result.steps, result.steps * bs, result.accuracy)


# ---------------------------------------------------------------------------------------------
# (b) the usual torchvision loop


class PILImageDataset(Dataset):
    """What torchvision's MNIST / CIFAR10 datasets do: one PIL image per item, then the transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform: Callable) -> None:
        # torchvision keeps MNIST as (N, H, W) and CIFAR-10 as (N, H, W, C); so do we
        self.images = x[:, 0] if x.shape[1] == 1 else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        self.labels = y
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[i])
        return self.transform(image), int(self.labels[i])


def torchvision_transform(work: Workload) -> transforms.Compose:
    mean = tuple(float(m) for m in work.data.mean.flatten().cpu())
    std = tuple(float(s) for s in work.data.std.flatten().cpu())
    steps: list = []
    if work.augment:
        steps += [transforms.RandomCrop(work.image_size, padding=4), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def run_dataloader(work: Workload, workers: int, seed: int, channels_last: bool) -> Run:
    device = work.data.device
    cuda = device.type == "cuda"
    config = work.config
    dataset = PILImageDataset(work.train_x, work.train_y, torchvision_transform(work))
    bs = min(config.batch_size, len(dataset))

    start = time.perf_counter()
    torch.manual_seed(seed)  # the same initial weights as ours: build_model is the first draw
    model = work.make_model().to(device)
    if cuda:
        torch.backends.cudnn.benchmark = True
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = DataLoader(
        dataset,
        batch_size=bs,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=cuda,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer, schedule = make_optimizer(model, config, work.total_steps)  # exactly as ours
    loss_sum = torch.zeros((), device=device)  # summed on the device: no per-step sync

    model.train()
    step = 0
    while step < work.total_steps:
        for xb, yb in loader:
            if step >= work.total_steps:
                break
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(xb), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach()
            step += 1
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    del loader  # shuts the workers down, outside the timed span

    if not torch.isfinite(loss_sum):
        raise RuntimeError(f"the DataLoader loop diverged (workers={workers})")
    accuracy = evaluate_accuracy(model, work.data.val_x, work.data.val_y, work.data)
    return Run(seconds, step, step * bs, accuracy)


# ---------------------------------------------------------------------------------------------
# the comparison


@dataclass(frozen=True)
class Row:
    loop: str
    samples_per_second: float  # of the best repeat
    seconds: float  # of the best repeat
    accuracy: float  # mean over repeats


def summarise(loop: str, runs: Sequence[Run]) -> Row:
    best = min(runs, key=lambda r: r.seconds)
    return Row(loop, best.samples / best.seconds, best.seconds, statistics.fmean(r.accuracy for r in runs))


def parse_workers(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--workers wants a comma-separated list of ints, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"--workers wants ints >= 0, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="NASFashionMini-v0", help="env id whose dataset and budget are used")
    p.add_argument("--epochs", type=float, default=None, help="override the env's epochs (fractions allowed)")
    p.add_argument("--arch", default=DEFAULT_ARCH, help="the child, in token text")
    p.add_argument("--device", default=None, help="cpu / cuda / cuda:N (default: CUDA when available)")
    p.add_argument(
        "--workers", type=parse_workers, default=[0, 2], help="DataLoader num_workers to try, e.g. 0,2,4"
    )
    p.add_argument("--repeats", type=int, default=1, help="runs of each loop; the best time is reported")
    p.add_argument("--data-dir", default=None, help="data root (else $NAS_GYM_DATA, ~/.cache/nas_gym, ...)")
    p.add_argument("--train-size", type=int, default=None, help="override the env's train_size")
    p.add_argument("--val-size", type=int, default=None, help="override the env's val_size")
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="fail when the dataset is not found locally instead of downloading it",
    )
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> float:
    """Run the comparison, print the table; return the speedup over the best DataLoader setting."""
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    device = resolve_device(args.device)
    work = prepare(
        args.env, args.arch, device, args.epochs, args.data_dir, args.train_size, args.val_size, args.download
    )
    n = len(work.train_x)
    bs = min(work.config.batch_size, n)
    print(
        f"env {work.env_id}: {n} train / {len(work.data.val_x)} val images, {work.image_size}x{work.image_size}, "
        f"augment={work.augment}; arch {work.arch} ({count_parameters(work.make_model())} params); "
        f"batch {bs}, {work.total_steps} steps ({work.config.epochs:g} epochs); device {device}"
        + (
            f" ({torch.cuda.get_device_name(device)})"
            if device.type == "cuda"
            else f", {torch.get_num_threads()} threads"
        )
    )

    # untimed warm-up: CUDA context, cudnn autotuning of the training batch shape, first-touch allocations
    steps_per_epoch = max(1, n // bs)
    warmup = replace(work.config, epochs=min(work.config.epochs, WARMUP_STEPS / steps_per_epoch))
    train(work.make_model, work.data, warmup, args.seed)

    ours: list[Run] = []
    # the usual loop: NCHW on the CPU (what a plain PyTorch loop does); on CUDA with channels_last,
    # as tuned GPU loops are. One more row repeats the best setting in ours' memory format, so the
    # reader sees how much of the gap is the data path alone.
    usual_cl = device.type == "cuda"
    baseline: dict[int, list[Run]] = {w: [] for w in args.workers}
    failed: dict[int, str] = {}  # a setting the machine cannot run (e.g. too little /dev/shm for workers)

    def run_baselines(seed: int) -> None:
        for w in args.workers:
            if w in failed:
                continue
            try:
                baseline[w].append(run_dataloader(work, w, seed, usual_cl))
            except (RuntimeError, OSError) as e:
                failed[w] = f"{type(e).__name__}: {e}".splitlines()[0][:160]

    for r in range(args.repeats):
        seed = args.seed + r
        if r % 2 == 1:  # alternate the order so neither loop always runs first
            ours.append(run_ours(work, seed))
        run_baselines(seed)
        if r % 2 == 0:
            ours.append(run_ours(work, seed))
    ran = [w for w in args.workers if w not in failed]
    if not ran:
        raise SystemExit("no DataLoader setting ran; no speedup to report")
    rows = [summarise("ours (device-resident)", ours)]
    rows += [summarise(f"dataloader workers={w}", baseline[w]) for w in ran]
    best = max(rows[1:], key=lambda row: row.samples_per_second)
    same_format = None
    if not usual_cl:
        w_best = ran[rows[1:].index(best)]
        extra = [run_dataloader(work, w_best, args.seed + r, True) for r in range(args.repeats)]
        same_format = summarise(f"dataloader workers={w_best}, channels_last", extra)
    steps = {run.steps for run in ours} | {run.steps for runs in baseline.values() for run in runs}
    assert steps == {work.total_steps}, f"the loops ran different numbers of steps: {steps}"

    print(f"{'loop':<36} {'samples/s':>10} {'seconds':>9} {'val_acc':>8}")
    for row in rows + ([same_format] if same_format else []):
        print(f"{row.loop:<36} {row.samples_per_second:>10.0f} {row.seconds:>9.2f} {row.accuracy:>8.4f}")
    for w, why in failed.items():
        print(f"{f'dataloader workers={w}':<36} FAILED, left out of the comparison: {why}")
    speedup = rows[0].samples_per_second / best.samples_per_second
    print(
        f"best DataLoader setting: {best.loop}"
        + (f"; best of {args.repeats} repeats" if args.repeats > 1 else "")
    )
    if same_format is not None:
        ratio = rows[0].samples_per_second / same_format.samples_per_second
        print(f"speedup_vs_dataloader_same_memory_format: {ratio:.2f}")
    print(f"speedup_vs_dataloader: {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main()
