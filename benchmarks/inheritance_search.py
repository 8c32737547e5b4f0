"""Does prefix weight inheritance find better architectures per second of training? A search-level check.

    python benchmarks/inheritance_search.py [--seeds 5] [--scratch-budget 24] [--inherit-budget 60]
        [--inherit-epochs 0.75] [--agents reinforce,evolution] [--out runs/inheritance_search]

Each agent searches NASFashionMini-v0 for each seed twice: from scratch with ``--scratch-budget``
trainings, and with inheritance with ``--inherit-budget`` trainings, the two budgets chosen so the
summed train seconds are about equal (the table prints what each run really spent, read from its
store). Each run's best architecture is then trained *from scratch* at 3x the search's epochs
(what ``nas-gym evaluate --run`` does) and judged on that validation accuracy and its test accuracy.
All on the CPU with 1 torch thread per child. Runs are folders under ``--out``, so the script
resumes. Ends with ``mean_final_val_scratch: X`` and ``mean_final_val_inherit: Y``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    from agents.common.runs import FINAL_EPOCHS_FACTOR
    from nas_gym.evaluation import Evaluator
    from nas_gym.registration import ENV_IDS
    from nas_gym.store import ResultStore

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--scratch-budget", type=int, default=24)
    p.add_argument("--inherit-budget", type=int, default=60)
    p.add_argument("--inherit-epochs", type=float, default=0.75)
    p.add_argument("--agents", default="reinforce,evolution")
    p.add_argument("--out", type=Path, default=Path("runs/inheritance_search"))
    args = p.parse_args(argv)

    env_id = "NASFashionMini-v0"
    budget = ENV_IDS[env_id]
    final = Evaluator(
        budget.replace(epochs=FINAL_EPOCHS_FACTOR * budget.epochs, device="cpu", threads=1, isolate=False),
        store=args.out / "final.sqlite",
    )
    modes = {
        "scratch": (args.scratch_budget, []),
        "inherit": (args.inherit_budget, ["--set", "inherit=true", "--set", f"inherit_epochs={args.inherit_epochs}"]),
    }  # fmt: skip
    rows = []
    for agent in args.agents.split(","):
        for mode, (trainings, extra) in modes.items():
            for seed in range(args.seeds):
                out = args.out / f"{agent}-{mode}-seed{seed}"
                command = [sys.executable, "-m", "agents.cli", "search", "--env", env_id, "--agent", agent,
                           "--budget", str(trainings), "--seed", str(seed), "--out", str(out),
                           "--set", "threads=1", "--set", "isolate=false", *extra]  # fmt: skip
                subprocess.run(command, check=True, capture_output=True)
                summary = json.loads((out / "summary.json").read_text())
                seconds = sum(r.train_seconds for r in ResultStore(out / "results.sqlite").rows())
                best = summary["best_arch"]
                result = final.final_evaluate(best, seed)
                rows.append((agent, mode, seed, summary["trainings"], seconds, best, summary["best_accuracy"],
                             result.accuracy, result.test_accuracy or 0.0))  # fmt: skip
                print(f"{agent:<10} {mode:<8} seed {seed}: {summary['trainings']:>3} trainings, {seconds:6.0f} s, "
                      f"best {best} (search {summary['best_accuracy']:.4f}), from scratch x3: "
                      f"val {result.accuracy:.4f} test {result.test_accuracy or 0.0:.4f}", flush=True)  # fmt: skip
    print()
    print(f"{'agent':<10} {'mode':<8} {'trainings':>9} {'train s':>8} {'final val':>10} {'final test':>10}")
    means = {}
    for agent in args.agents.split(","):
        for mode in modes:
            mine = [r for r in rows if r[0] == agent and r[1] == mode]
            val = np.array([r[7] for r in mine])
            test = np.array([r[8] for r in mine])
            print(f"{agent:<10} {mode:<8} {np.mean([r[3] for r in mine]):>9.0f} {np.mean([r[4] for r in mine]):>8.0f} "
                  f"{100 * val.mean():>7.2f} ± {100 * val.std(ddof=1) if len(val) > 1 else 0:.2f} "
                  f"{100 * test.mean():>7.2f}")  # fmt: skip
    for mode in modes:
        means[mode] = float(np.mean([r[7] for r in rows if r[1] == mode]))
    print(f"mean_final_val_scratch: {means['scratch']:.4f}")
    print(f"mean_final_val_inherit: {means['inherit']:.4f}")
    return means


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
