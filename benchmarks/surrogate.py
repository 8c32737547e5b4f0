"""Fit the surrogate of the full space and measure it on architectures it never saw.

    python benchmarks/surrogate.py --samples nas_gym/data/surrogate/fashion_mini_samples.json \
        [--out nas_gym/data/surrogate/fashion_mini_surrogate.npz] [--holdout 0.2] [--members 5]

The architectures (not rows) are split at random: 80% to fit, 20% held out. On the held-out ones it
prints Kendall tau and Spearman rho of predicted against measured accuracy (mean over seeds), overall
and within the measured top 20%, and, for the held-out architectures trained with two seeds, the
tau between the two seeds (the noise ceiling: a perfect model of the mean cannot rank a single
seed's results better than the other seed does). Then it fits on every architecture and writes
``--out``. Ends with ``kendall_tau: X`` and ``seed_tau: Y``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def _taus(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    from nas_gym.samples import SampleSet
    from nas_gym.search_space import Architecture
    from nas_gym.surrogate import fit_surrogate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", required=True)
    p.add_argument("--with-table", action="store_true", help="add the shipped table's 583 x 2 trainings")
    p.add_argument("--out", default=None, help="write the surrogate fitted on every architecture here")
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    samples = SampleSet.load(args.samples)
    if args.with_table:
        from nas_gym.tabular import load_table

        samples = samples.merged(SampleSet.from_table(load_table()))
    by_arch = {a: rows for a, rows in samples.by_arch().items() if all(r.status == "ok" for r in rows)}
    names = sorted(by_arch)
    depths = np.bincount([len(Architecture.parse(a)) for a in names], minlength=16)[1:]
    two = [a for a in names if len({r.seed for r in by_arch[a]}) >= 2]
    print(
        f"{args.samples}: {len(samples.samples)} trainings, {len(names)} architectures, {len(two)} with 2 seeds"
    )
    print("architectures per depth 1..15: " + " ".join(str(int(d)) for d in depths))

    rng = np.random.default_rng(args.seed)
    held = set(rng.choice(names, size=max(1, int(args.holdout * len(names))), replace=False).tolist())
    started = time.perf_counter()
    model, _ = fit_surrogate(samples, members=args.members, epochs=args.epochs, seed=args.seed, holdout=held)
    fit_seconds = time.perf_counter() - started
    test = sorted(held)
    measured = np.array([np.mean([r.accuracy for r in by_arch[a]]) for a in test])
    predicted = model.predict_many(test)[:, 0]
    tau, rho = _taus(predicted, measured)
    top = measured >= np.quantile(measured, 0.8)
    tau_top, rho_top = _taus(predicted[top], measured[top])
    seconds_measured = np.array([np.mean([r.train_seconds for r in by_arch[a]]) for a in test])
    seconds_tau, _ = _taus(model.predict_many(test)[:, 1], seconds_measured)
    held_two = [a for a in test if a in set(two)]
    seed_tau = float("nan")
    if len(held_two) >= 3:
        s0 = np.array([next(r.accuracy for r in by_arch[a] if r.seed == 0) for a in held_two])
        s1 = np.array([next(r.accuracy for r in by_arch[a] if r.seed == 1) for a in held_two])
        seed_tau, _ = _taus(s0, s1)
        mine, _ = _taus(model.predict_many(held_two)[:, 0], s1)
        print(f"on the {len(held_two)} held-out architectures with 2 seeds: seed 0 vs seed 1 tau {seed_tau:.3f}, "
              f"surrogate vs seed 1 tau {mine:.3f}")  # fmt: skip
    mae = float(np.mean(np.abs(predicted - measured)))
    print(f"fitted on {model.meta['fitted_on']} architectures in {fit_seconds:.1f} s; {len(test)} held out")
    print(
        f"held out, overall: kendall tau {tau:.3f}, spearman rho {rho:.3f}, mean abs error {100 * mae:.2f} pp"
    )
    print(
        f"held out, measured top 20% ({int(top.sum())}): kendall tau {tau_top:.3f}, spearman rho {rho_top:.3f}"
    )
    print(f"held out, train seconds: kendall tau {seconds_tau:.3f}")
    if args.out:
        final, arrays = fit_surrogate(samples, members=args.members, epochs=args.epochs, seed=args.seed)
        final.meta["holdout_quality"] = {
            "kendall_tau": round(tau, 4), "spearman_rho": round(rho, 4), "kendall_tau_top20": round(tau_top, 4),
            "seed_tau": round(seed_tau, 4), "held_out": len(test),
        }  # fmt: skip
        final.save(args.out, arrays)
        print(f"surrogate fitted on all {final.meta['fitted_on']} architectures -> {args.out}")
    print(f"kendall_tau: {tau:.3f}")
    print(f"seed_tau: {seed_tau:.3f}")
    return {"kendall_tau": tau, "seed_tau": seed_tau}


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
