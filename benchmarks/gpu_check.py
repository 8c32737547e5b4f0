"""Helpers of ``benchmarks/gpu_check.sh``: the machine's description and the final training.

    python benchmarks/gpu_check.py info  [--device cuda]
    python benchmarks/gpu_check.py final [--device cuda] [--epochs 5] [--train-size 55000] ...

``final`` trains the poster's best architecture through ``nas_gym.evaluation.Evaluator`` on the
full Fashion-MNIST (the NASFashionMNIST-v0 setting: 55000 train / 5000 val, 28x28, width 1.0,
batch 256, lr 0.1) and measures the held-out test set with ``final_evaluate``. A short untimed
warm-up run first (CUDA context, cudnn autotuning) keeps seconds per epoch honest. Its last line
is ``final_result: s_per_epoch=... val_acc=... test_acc=... status=...`` for the summary.
Nothing here downloads: the data must be found locally.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence

POSTER_BEST = "R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3"


def info(args: argparse.Namespace) -> int:
    import torch

    from nas_gym.training.datasets import load_dataset
    from nas_gym.training.trainer import resolve_device

    device = resolve_device(args.device)
    print(
        f"python {platform.python_version()} ({sys.executable}); torch {torch.__version__}; "
        f"cpus {os.cpu_count()}; torch threads {torch.get_num_threads()}"
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        print(
            f"cuda {torch.version.cuda}; cudnn {torch.backends.cudnn.version()}; {props.name}, "
            f"{props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
        )
    else:
        print("device cpu")
    start = time.perf_counter()
    data = load_dataset("fashion_mnist", download=False)
    print(
        f"fashion_mnist: {data.source}: train {data.train_x.shape}, test {data.test_x.shape} "
        f"(read in {time.perf_counter() - start:.1f} s)"
    )
    return 0


def final(args: argparse.Namespace) -> int:
    from nas_gym.evaluation import Evaluator
    from nas_gym.search_space import Architecture

    common = dict(
        dataset="fashion_mnist",
        train_size=args.train_size,
        val_size=args.val_size,
        image_size=args.image_size,
        width=args.width,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        download=False,
    )
    evaluator = Evaluator(epochs=args.epochs, **common)
    print(
        f"final: {args.arch} on fashion_mnist {args.train_size}/{args.val_size}, "
        f"{evaluator.image_size}x{evaluator.image_size}, width {args.width}, batch {args.batch_size}, "
        f"lr {args.lr}, {args.epochs:g} epochs, device {evaluator.setup.device_type}"
    )
    print(f"  params {evaluator.num_params(Architecture.parse(args.arch))}")

    # untimed warm-up on the same shapes: a fraction of an epoch, its own in-memory store
    steps_per_epoch = max(1, args.train_size // args.batch_size)
    warmup = Evaluator(epochs=min(args.epochs, 5 / steps_per_epoch), **common)
    start = time.perf_counter()
    w = warmup.evaluate(args.arch, seed=args.seed)
    print(
        f"  warm-up: {time.perf_counter() - start:.1f} s wall (data load + CUDA init + autotune), "
        f"status {w.status}"
    )

    start = time.perf_counter()
    result = evaluator.final_evaluate(args.arch, seed=args.seed)
    wall = time.perf_counter() - start
    per_epoch = result.train_seconds / args.epochs
    samples = args.train_size / per_epoch if per_epoch > 0 else 0.0
    test = float("nan") if result.test_accuracy is None else result.test_accuracy
    print(
        f"  status {result.status}; train {result.train_seconds:.1f} s ({per_epoch:.2f} s/epoch, "
        f"{samples:.0f} samples/s); {wall:.1f} s wall with data load and evaluation"
    )
    print(f"  val_acc {result.accuracy:.4f}; test_acc {test:.4f}")
    print(
        f"final_result: s_per_epoch={per_epoch:.2f} val_acc={result.accuracy:.4f} "
        f"test_acc={test:.4f} status={result.status}"
    )
    return 0 if result.status == "ok" else 1


def pool(args: argparse.Namespace) -> int:
    """Regularized evolution at one budget, alone and with a pool of workers: wall time of each."""
    import tempfile

    import nas_gym  # noqa: F401
    from agents.search import Search

    overrides = {"device": args.device, "download": False}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    walls, histories = {}, {}
    for workers in (1, args.workers):
        with tempfile.TemporaryDirectory() as folder:
            search = Search(
                args.env, args.agent, args.seed, args.budget, overrides=overrides,
                store=f"{folder}/results.sqlite", workers=workers,
            )  # fmt: skip
            running = search.start()
            if running.pool is not None:  # start-up (spawn, data, CUDA) is not timed
                running.pool.train(["C32k3", "C64k3", "C32k1", "C64k1"][:workers], seed=12345)
            outcome = running.run()
            walls[workers] = outcome.wall
            histories[workers] = [(r.arch, r.training) for r in outcome.history]
            best = outcome.history.best()
            print(
                f"  {args.agent} budget {args.budget}, workers {workers}: {walls[workers]:.1f} s, "
                f"best {best.arch if best else '-'} {best.accuracy if best else 0:.4f}"
            )
    same = histories[1] == histories[args.workers]
    print(f"  same architectures in the same order: {same}")
    print(
        f"pool_result: workers={args.workers} speedup={walls[1] / walls[args.workers]:.2f} same_history={same}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="python, torch, the device, where fashion_mnist is found")
    p_info.add_argument("--device", default=None)
    p_final = sub.add_parser("final", help="train the poster's best architecture, measure val and test")
    p_final.add_argument("--device", default=None)
    p_final.add_argument("--arch", default=POSTER_BEST)
    p_final.add_argument("--epochs", type=float, default=5.0)
    p_final.add_argument("--train-size", type=int, default=55_000)
    p_final.add_argument("--val-size", type=int, default=5_000)
    p_final.add_argument("--image-size", type=int, default=28)
    p_final.add_argument("--width", type=float, default=1.0)
    p_final.add_argument("--batch-size", type=int, default=256)
    p_final.add_argument("--lr", type=float, default=0.1)
    p_final.add_argument("--seed", type=int, default=0)
    p_pool = sub.add_parser("pool", help="a search alone and with a pool of workers: wall time")
    p_pool.add_argument("--device", default=None)
    p_pool.add_argument("--env", default="NASFashionMini-v0")
    p_pool.add_argument("--agent", default="evolution")
    p_pool.add_argument("--budget", type=int, default=40)
    p_pool.add_argument("--workers", type=int, default=4)
    p_pool.add_argument("--epochs", type=float, default=None)
    p_pool.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"info": info, "final": final, "pool": pool}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
