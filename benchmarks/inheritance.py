"""How well prefix weight inheritance ranks architectures, and what it costs, on the shipped table.

    python benchmarks/inheritance.py [--inherit-epochs 0.75] [--store FILE] [--calibrate 24]

The shipped table holds all 583 architectures of up to 3 layers over 8 layer types, each trained
from scratch at NASFashionMini-v0's budget with 2 seeds. Here every one of them is trained with
inheritance (seed 0, the table's thread count, on the CPU): shortest first, so each child starts
from its prefix's trained weights and trains ``--inherit-epochs``; the 1-layer roots train the
full budget from scratch. Printed: Kendall tau and Spearman rho of the inherited accuracies
against the table's mean, the same within the table's top 20%, the table's own seed-to-seed tau
(the noise ceiling), and the cost: summed train seconds of the inherited run over the table's
from-scratch seconds. The table's seconds were measured on another day, so ``--calibrate K``
architectures are also trained from scratch here and the table's total is scaled by how fast
this machine is now (the ratio of optimizer steps, which no machine changes, is printed too).
``--store`` makes the run resumable. Ends with ``kendall_tau: X`` and ``cost_ratio: Y``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np


def _taus(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    from nas_gym.evaluation import Evaluator
    from nas_gym.registration import ENV_IDS
    from nas_gym.tabular import load_table

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inherit-epochs", type=float, default=0.75)
    p.add_argument("--store", default=None, help="result store (default: a temporary file)")
    p.add_argument("--calibrate", type=int, default=24, help="architectures re-trained from scratch")
    p.add_argument("--limit", type=int, default=None, help="only the first N architectures (a quick look)")
    args = p.parse_args(argv)

    table = load_table()
    threads = int(table.build["torch_threads_per_worker"])
    store = args.store or str(tempfile.mkdtemp(prefix="inherit_") + "/results.sqlite")
    config = ENV_IDS["NASFashionMini-v0"].replace(device="cpu", threads=threads, isolate=False)
    inherited = Evaluator(config, store=store, inherit=True, inherit_epochs=args.inherit_epochs)
    archs = sorted(table.entries, key=lambda a: (a.count("-"), a))[: args.limit]

    # how fast this machine trains from scratch now, against the table's recorded seconds: these
    # architectures are trained from scratch too, each right after its inherited training
    rng = np.random.default_rng(0)
    sample = {archs[i] for i in rng.choice(len(archs), size=min(args.calibrate, len(archs)), replace=False)}
    scratch = Evaluator(config, store=store)
    started = time.perf_counter()
    accuracy = {}
    for a in archs:
        accuracy[a] = inherited.evaluate(a, 0).accuracy
        if a in sample:
            scratch.evaluate(a, 0)
    wall = time.perf_counter() - started
    rows = {r.arch: r for r in inherited.result_store.rows(inherited.dataset, inherited.config_key)}
    inherited_seconds = sum(rows[a].train_seconds for a in archs)
    steps_scratch = len(archs) * 375
    roots = sum(1 for a in archs if "-" not in a)
    steps_inherited = roots * 375 + (len(archs) - roots) * round(375 * args.inherit_epochs / config.epochs)
    now = [scratch.stored(a, 0).train_seconds for a in sorted(sample)]
    then = [table.get(a).train_seconds[0] for a in sorted(sample)]
    speed = float(np.sum(now) / np.sum(then))
    scratch_seconds = speed * sum(table.get(a).train_seconds[0] for a in archs)

    mine = np.array([accuracy[a] for a in archs])
    mean = np.array([table.get(a).mean_accuracy for a in archs])
    tau, rho = _taus(mine, mean)
    top = mean >= np.quantile(mean, 0.8)
    tau_top, rho_top = _taus(mine[top], mean[top])
    s0 = np.array([table.get(a).accuracy[0] for a in archs])
    s1 = np.array([table.get(a).accuracy[1] for a in archs])
    seed_tau, _ = _taus(s0, s1)
    seed_tau_top, _ = _taus(s0[top], s1[top])
    cost = inherited_seconds / scratch_seconds

    print(
        f"{len(archs)} architectures of the shipped table, inherit_epochs={args.inherit_epochs:g} "
        f"(roots {config.epochs:g} epochs), {threads} thread(s), CPU; {wall:.0f} s wall"
    )
    print(f"{'':<28} {'kendall tau':>11} {'spearman rho':>12}")
    print(f"{'inherited vs table mean':<28} {tau:>11.3f} {rho:>12.3f}")
    print(f"{'  within the top 20%':<28} {tau_top:>11.3f} {rho_top:>12.3f}")
    print(f"{'table seed 0 vs seed 1':<28} {seed_tau:>11.3f}")
    print(f"{'  within the top 20%':<28} {seed_tau_top:>11.3f}")
    print(
        f"train seconds: inherited {inherited_seconds:.0f}, from scratch {scratch_seconds:.0f} "
        f"(the table's {sum(table.get(a).train_seconds[0] for a in archs):.0f} x {speed:.2f}, "
        f"this machine now on {len(sample)} re-trained architectures)"
    )
    print(f"optimizer steps: inherited {steps_inherited}, from scratch {steps_scratch} "
          f"(ratio {steps_inherited / steps_scratch:.3f})")  # fmt: skip
    best_inherited = archs[int(np.argmax(mine))]
    print(f"best by inheritance: {best_inherited} (table mean {table.get(best_inherited).mean_accuracy:.4f}); "
          f"table optimum {table.optimum()[0]} ({table.optimum()[1]:.4f})")  # fmt: skip
    print(f"kendall_tau: {tau:.3f}")
    print(f"cost_ratio: {cost:.3f}")
    return {"kendall_tau": tau, "cost_ratio": cost, "kendall_tau_top20": tau_top}


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
