"""Your own images, end to end: a PNG folder made from Debian's Fashion-MNIST, searched and exported.

    python benchmarks/own_data.py [--train 3000] [--test 1000] [--budget 20] [--agent evolution] \
        [--export-epochs 9] [--out runs/own_data]

Writes ``--train`` / ``--test`` images of the real Fashion-MNIST (``dataset-fashion-mnist``'s IDX
files) as 28x28 PNG files in ImageFolder layout (``train/<class>/``, ``test/<class>/``), then runs
what a user runs: ``nas-gym search --data FOLDER`` and ``nas-gym export``, and loads the exported
file in a fresh process with ``torch`` alone (``nas_gym`` not importable there) to time the load
and classify the test PNGs. Prints the search's best, the card's test accuracy, the accuracy the
fresh process measures, the file's size and its load time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]

CLASSIFY = """
import sys; sys.modules['nas_gym'] = None; sys.modules['agents'] = None
import json, pathlib, time, numpy as np
start = time.perf_counter()
import torch
torch.set_num_threads(1)
model = torch.jit.load(sys.argv[1])
loaded = time.perf_counter() - start
card = json.loads(pathlib.Path(sys.argv[1]).with_suffix('.json').read_text())
from PIL import Image
right = total = 0
for label, name in enumerate(card['classes']):
    files = sorted(pathlib.Path(sys.argv[2], name).glob('*.png'))
    x = torch.from_numpy(np.stack([np.asarray(Image.open(f)) for f in files])[:, None].copy())
    right += int((model(x).argmax(1) == label).sum()); total += len(files)
print(json.dumps({"load_seconds": loaded, "right": right, "total": total}))
"""


def write_folder(root: Path, n_train: int, n_test: int) -> None:
    from PIL import Image

    from nas_gym.training.datasets import read_idx

    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = read_idx(next(FASHION.glob(f"{prefix}-images-idx3-ubyte*")))[:n]
        y = read_idx(next(FASHION.glob(f"{prefix}-labels-idx1-ubyte*")))[:n]
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            folder = root / split / NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i}.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=3000)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--agent", default="evolution")
    p.add_argument("--export-epochs", type=float, default=9.0)
    p.add_argument("--out", type=Path, default=Path("runs/own_data"))
    args = p.parse_args(argv)
    if not FASHION.is_dir():
        print(f"{FASHION} is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    folder, run, model = args.out / "images", args.out / "run", args.out / "model.pt"
    if not folder.exists():
        write_folder(folder, args.train, args.test)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "agents.cli"]
    started = time.perf_counter()
    subprocess.run([*cli, "search", "--data", str(folder), "--agent", args.agent, "--budget", str(args.budget),
                    "--out", str(run), "--set", "threads=1"], env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    searched = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([*cli, "export", str(run), "--out", str(model), "--epochs", str(args.export_epochs)], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    exported = time.perf_counter() - started
    fresh = json.loads(subprocess.run([sys.executable, "-c", CLASSIFY, str(model), str(folder / "test")],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    card = json.loads(model.with_suffix(".json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    print(
        f"data: {args.train} train / {args.test} test PNGs, 28x28 greyscale, 10 classes (Debian's Fashion-MNIST)"
    )
    print(f"search: {args.agent}, {summary['trainings']} trainings, {searched:.0f} s; best {summary['best_arch']} "
          f"at {100 * summary['best_accuracy']:.2f}% validation")  # fmt: skip
    print(f"export: {card['training']['epochs']:g} epochs on {card['training']['images']} images, {exported:.0f} s; "
          f"card test accuracy {100 * card['test_accuracy']:.2f}%")  # fmt: skip
    print(f"fresh process, torch alone: {fresh['right']}/{fresh['total']} = {100 * fresh['right'] / fresh['total']:.2f}%, "
          f"load {1000 * fresh['load_seconds']:.0f} ms (import torch included); file {card['bytes'] / 1024:.0f} KiB")  # fmt: skip
    return 0 if round(card["test_accuracy"] * fresh["total"]) == fresh["right"] else 1


if __name__ == "__main__":
    sys.exit(main())
