"""Fit the surrogate of the full space and measure it on architectures it never saw.

    python benchmarks/surrogate.py --samples nas_gym/data/surrogate/fashion_mini_samples.json \
        [--with-table] [--out nas_gym/data/surrogate/fashion_mini_surrogate.npz] [--folds 5] [--members 5]

Cross-validation by architecture (not by row): the architectures are shuffled and cut into
``--folds`` parts; each part is predicted by a surrogate fitted on the others, so every architecture
gets a prediction from a model that never saw it. On those predictions it prints Kendall tau and
Spearman rho against the measured accuracy (mean over seeds), overall, within the measured top 20%,
and per source (sampled architectures, searches' trajectories, other trainings in the samples' store,
such as surrogate_check.py's). For the architectures trained with
two seeds it compares like with like: the tau between the two seeds (the noise ceiling: one seed
cannot rank the other seed's results better than that) beside the tau of the surrogate against the
second seed, on the same architectures. Then it fits on every architecture and writes ``--out``.
Ends with ``kendall_tau: X``, ``seed_tau: Y`` and ``surrogate_seed_tau: Z``.

``--split grouped`` holds out as NAS-Bench-301 does (Siems et al. 2020): every search run's
architectures stay together in one fold, so no trajectory is predicted by a model that saw its
neighbours; ``--split searcher`` leaves one searcher out at a time (all its runs), predicting only
the searches' architectures; ``--split all`` runs the three and prints them side by side: Kendall
tau, sparse tau (accuracies rounded to 0.1 pp first, NAS-Bench-301's), Spearman, tau within the
measured top 20% and top 5% each beside the seed-to-seed tau of the two-seed architectures there,
and the predicted train seconds' tau and mean abs error. ``--samples`` may be given more than once
(e.g. the shipped samples and ``benchmarks/data/surrogate_top/samples.json``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence

import numpy as np


def _taus(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    from nas_gym.build.samples import SampleSet
    from nas_gym.build.surrogate import fit_surrogate
    from nas_gym.search_space import Architecture

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", action="append", required=True, help="a samples file (repeatable: merged)")
    p.add_argument(
        "--split",
        choices=("random", "grouped", "searcher", "all"),
        default="random",
        help="how architectures are held out (see above)",
    )
    p.add_argument("--with-table", action="store_true", help="add the shipped table's 583 x 2 trainings")
    p.add_argument("--out", default=None, help="write the surrogate fitted on every architecture here")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, by architecture (>= 2)")
    p.add_argument(
        "--model",
        default="mlp",
        help="the model: mlp, trees or mlp+trees (the two averaged); with --split, a comma-separated "
        "list compares them, one table each, in the same run",
    )
    p.add_argument("--blend", type=float, default=0.5, help="the trees' weight in mlp+trees")
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.folds < 2:
        p.error("--folds must be >= 2")
    from nas_gym.surrogate import MODELS

    args.models = args.model.split(",")
    if unknown := [m for m in args.models if m not in MODELS]:
        p.error(f"--model: {', '.join(unknown)} not one of {', '.join(MODELS)}")
    if len(args.models) > 1 and args.split == "random" and args.out is None:
        p.error("several --model values compare them: give --split (random, grouped, searcher or all)")
    args.model = args.models[0]

    samples = SampleSet.load(args.samples[0])
    for more in args.samples[1:]:
        samples = samples.merged(SampleSet.load(more))
    if args.with_table:
        from nas_gym.tabular import load_table

        samples = samples.merged(SampleSet.from_table(load_table()))
    by_arch = {a: rows for a, rows in samples.by_arch().items() if all(r.status == "ok" for r in rows)}
    names = sorted(by_arch)
    depths = np.bincount([len(Architecture.parse(a)) for a in names], minlength=16)[1:]
    two = [a for a in names if len({r.seed for r in by_arch[a]}) >= 2]
    print(
        f"{', '.join(args.samples)}: {len(samples.samples)} trainings, {len(names)} architectures, {len(two)} with 2 seeds"
    )
    print("architectures per depth 1..15: " + " ".join(str(int(d)) for d in depths))

    if args.split != "random":
        _splits(args, samples, by_arch, names)
        if args.out:
            _write(args, samples, by_arch, {"folds": args.folds, "split": args.split})
        return {}
    order = np.random.default_rng(args.seed).permutation(len(names))
    predicted = np.zeros(len(names))
    predicted_seconds = np.zeros(len(names))
    started = time.perf_counter()
    for fold in np.array_split(order, args.folds):
        held = {names[i] for i in fold}
        model, _ = fit_surrogate(samples, holdout=held, **_fit_args(args, args.model))
        out = model.predict_many([names[i] for i in fold])
        predicted[fold], predicted_seconds[fold] = out[:, 0], out[:, 1]
    fit_seconds = time.perf_counter() - started
    measured = np.array([np.mean([r.accuracy for r in by_arch[a]]) for a in names])
    seconds = np.array([np.mean([r.train_seconds for r in by_arch[a]]) for a in names])
    tau, rho = _taus(predicted, measured)
    top = measured >= np.quantile(measured, 0.8)
    tau_top, rho_top = _taus(predicted[top], measured[top])
    mae = float(np.mean(np.abs(predicted - measured)))
    print(
        f"{args.folds} folds fitted in {fit_seconds:.1f} s; every architecture predicted by a model that never saw it"
    )
    print(
        f"overall ({len(names)}): kendall tau {tau:.3f}, spearman rho {rho:.3f}, mean abs error {100 * mae:.2f} pp"
    )
    print(f"measured top 20% ({int(top.sum())}): kendall tau {tau_top:.3f}, spearman rho {rho_top:.3f}")
    sources = {
        a: {r.source if r.source in ("random", "table", "store") else "searches" for r in by_arch[a]}
        for a in names
    }
    for source in ("random", "table", "searches", "store"):
        mask = np.array([source in sources[a] for a in names])
        if mask.sum() >= 3:
            t, r = _taus(predicted[mask], measured[mask])
            print(f"  {source} ({int(mask.sum())}): kendall tau {t:.3f}, spearman rho {r:.3f}")
    print(f"train seconds: kendall tau {_taus(predicted_seconds, seconds)[0]:.3f}")
    seed_tau = mine = float("nan")
    if len(two) >= 3:
        index = {a: i for i, a in enumerate(names)}
        # an architecture's first two seeds (0 and 1 for the sampled ones; a search trains with its own seed)
        pairs = [sorted({r.seed: r.accuracy for r in by_arch[a]}.items())[:2] for a in two]
        first, second = np.array([q[0][1] for q in pairs]), np.array([q[1][1] for q in pairs])
        seed_tau, seed_rho = _taus(first, second)
        mine, mine_rho = _taus(predicted[[index[a] for a in two]], second)
        print(f"the {len(two)} architectures with 2 seeds: first seed vs second seed kendall tau {seed_tau:.3f} "
              f"(rho {seed_rho:.3f}); surrogate vs second seed {mine:.3f} (rho {mine_rho:.3f}), "
              f"{mine / seed_tau:.0%} of the seed-to-seed tau")  # fmt: skip
    if args.out:
        _write(args, samples, by_arch, {
            "folds": args.folds, "kendall_tau": round(tau, 4), "spearman_rho": round(rho, 4),
            "kendall_tau_top20": round(tau_top, 4), "seed_tau": round(seed_tau, 4),
            "surrogate_seed_tau": round(mine, 4), "two_seed_architectures": len(two),
        })  # fmt: skip
    print(f"kendall_tau: {tau:.3f}")
    print(f"seed_tau: {seed_tau:.3f}")
    print(f"surrogate_seed_tau: {mine:.3f}")
    return {"kendall_tau": tau, "seed_tau": seed_tau, "surrogate_seed_tau": mine}


def _write(args, samples, by_arch: dict, cross_validation: dict) -> None:
    """Fit on every architecture, write ``--out``, and print how its noise compares with the seeds'."""
    from nas_gym.build.surrogate import fit_surrogate

    final, arrays = fit_surrogate(samples, **_fit_args(args, args.model))
    final.meta["cross_validation"] = cross_validation
    final.save(args.out, arrays)
    print(f"surrogate ({args.model}) fitted on all {final.meta['fitted_on']} architectures -> {args.out}")
    _noise_table(final, by_arch)


def _noise_table(model, by_arch: dict) -> None:
    """The seed spread of the two-seed architectures, measured and drawn by ``noise=True`` (each
    architecture's two seeds), overall, in the measured top decile and by accuracy band."""
    from nas_gym.build.surrogate import first_two_seeds
    from nas_gym.surrogate import SurrogateEvaluator

    noisy = SurrogateEvaluator(model, noise=True)
    rows = []  # mean measured, measured diff, drawn diff
    for arch, trainings in by_arch.items():
        two = first_two_seeds(trainings)
        if two is not None:
            (s0, a0), (s1, a1) = two
            rows.append(((a0 + a1) / 2, a0 - a1, noisy._values(arch, s0)[0] - noisy._values(arch, s1)[0]))
    table = np.array(rows)
    means = np.array([np.mean([r.accuracy for r in t]) for t in by_arch.values()])
    decile = float(np.quantile(means, 0.9))

    def spread(d: np.ndarray) -> str:
        return f"{100 * np.sqrt(np.mean(d**2) / 2):.2f} pp"

    print(f"\nseed spread (one seed's standard deviation, from the pairs' differences), noise=True "
          f"against the {len(table)} architectures trained with two seeds; pooled before: "
          f"{100 * model.seed_std:.2f} pp everywhere")  # fmt: skip
    print("| architectures | pairs | measured | noise=True |")
    print("| --- | --- | --- | --- |")
    bands = [
        ("all", np.ones(len(table), dtype=bool)),
        (f"top decile (>= {100 * decile:.2f}%)", table[:, 0] >= decile),
    ]
    edges = [0.0, 0.7, 0.8, 0.84, 0.86, 0.87, 0.88, 1.0]
    bands += [
        (f"{100 * lo:.0f}-{100 * hi:.0f}%", (table[:, 0] >= lo) & (table[:, 0] < hi))
        for lo, hi in itertools.pairwise(edges)
    ]
    for label, mask in bands:
        if mask.sum():
            print(f"| {label} | {int(mask.sum())} | {spread(table[mask, 1])} | {spread(table[mask, 2])} |")


def _run_of(source: str) -> str | None:
    """The search run a sample came from (``runs/evolution-s0``, ``run:bananas-s3``), or None."""
    if source.startswith("runs/"):
        return source[len("runs/") :]
    if source.startswith("run:"):
        return source[len("run:") :]
    return None


def _searcher_of(run: str) -> str:
    return run.rsplit("-s", 1)[0]


def _fold_plan(split: str, names: list[str], by_arch: dict, folds: int, seed: int) -> list[np.ndarray]:
    """Index arrays of the architectures each fit holds out."""
    rng = np.random.default_rng(seed)
    runs = {i: sorted(r for r in (_run_of(s.source) for s in by_arch[a]) if r) for i, a in enumerate(names)}
    if split == "random":
        return list(np.array_split(rng.permutation(len(names)), folds))
    if split == "searcher":  # one fit per searcher, holding out every architecture any of its runs reached
        searchers = sorted({_searcher_of(r) for rs in runs.values() for r in rs})
        return [
            np.array([i for i, rs in runs.items() if any(_searcher_of(r) == who for r in rs)])
            for who in searchers
        ]
    # grouped: a run's architectures together (an architecture two runs reached goes with the first)
    groups: dict[str, list[int]] = {}
    loose = []
    for i, rs in runs.items():
        if rs:
            groups.setdefault(rs[0], []).append(i)
        else:
            loose.append(i)
    plan: list[list[int]] = [[] for _ in range(folds)]
    for key in rng.permutation(sorted(groups)):
        min(plan, key=len).extend(groups[str(key)])
    for i in rng.permutation(loose):
        min(plan, key=len).append(int(i))
    return [np.array(sorted(f)) for f in plan]


def _fit_args(args, model: str) -> dict:
    return {
        "members": args.members,
        "epochs": args.epochs,
        "seed": args.seed,
        "model": model,
        "blend": args.blend,
    }


def _predict(
    samples, names: list[str], plan: list[np.ndarray], args, which: str
) -> tuple[np.ndarray, np.ndarray]:
    from nas_gym.build.surrogate import fit_surrogate

    predicted = np.full(len(names), np.nan)
    seconds = np.full(len(names), np.nan)
    for fold in plan:
        held = {names[i] for i in fold}
        model, _ = fit_surrogate(samples, holdout=held, **_fit_args(args, which))
        out = model.predict_many([names[i] for i in fold])
        predicted[fold], seconds[fold] = out[:, 0], out[:, 1]
    return predicted, seconds


def _metrics(predicted, measured, p_sec, m_sec, pairs) -> dict[str, str]:
    """One column of the side-by-side table, on the architectures that got a prediction."""
    ok = ~np.isnan(predicted)
    x, y = predicted[ok], measured[ok]
    out = {"architectures": f"{int(ok.sum())}"}
    tau, rho = _taus(x, y)
    out["kendall tau"], out["spearman rho"] = f"{tau:.3f}", f"{rho:.3f}"
    out["sparse kendall tau (0.1 pp)"] = f"{_taus(np.round(x, 3), np.round(y, 3))[0]:.3f}"
    for q, label in ((0.8, "top 20%"), (0.95, "top 5%")):
        top = y >= np.quantile(y, q)
        t = _taus(x[top], y[top])[0]
        index = np.flatnonzero(ok)[top]
        # like with like on the two-seed architectures there: one seed ranking the other, and the
        # surrogate ranking that second seed
        two = [(j, *pairs[int(i)]) for j, i in enumerate(index) if int(i) in pairs]
        seed = mine = float("nan")
        if len(two) >= 3:
            j, first, second = map(np.array, zip(*two, strict=True))
            seed, mine = _taus(first, second)[0], _taus(x[top][j.astype(int)], second)[0]
        out[f"tau, measured {label}"] = (
            f"{t:.3f} ({int(top.sum())}); 2 seeds ({len(two)}): seed-to-seed {seed:.3f}, surrogate-to-seed {mine:.3f}"
        )
    out["mean abs error"] = f"{100 * np.mean(np.abs(x - y)):.2f} pp"
    out["train seconds: tau, MAE"] = (
        f"{_taus(p_sec[ok], m_sec[ok])[0]:.3f}, {np.mean(np.abs(p_sec[ok] - m_sec[ok])):.2f} s"
    )
    return out


def _splits(args, samples, by_arch: dict, names: list[str]) -> None:
    measured = np.array([np.mean([r.accuracy for r in by_arch[a]]) for a in names])
    m_sec = np.array([np.mean([r.train_seconds for r in by_arch[a]]) for a in names])
    pairs = {}  # the first two distinct seeds of an architecture (repeated same-seed trainings left out)
    for i, a in enumerate(names):
        seeds = sorted({r.seed: r.accuracy for r in by_arch[a]}.items())
        if len(seeds) >= 2:
            pairs[i] = (seeds[0][1], seeds[1][1])
    splits = ("random", "grouped", "searcher") if args.split == "all" else (args.split,)
    labels = {"random": "random split", "grouped": "grouped by run", "searcher": "leave one searcher out"}
    for which in args.models:
        columns = {}
        for split in splits:
            started = time.perf_counter()
            plan = _fold_plan(split, names, by_arch, args.folds, args.seed)
            predicted, p_sec = _predict(samples, names, plan, args, which)
            columns[split] = _metrics(predicted, measured, p_sec, m_sec, pairs)
            print(f"{which}, {split}: {len(plan)} fits in {time.perf_counter() - started:.0f} s", flush=True)
        rows = list(next(iter(columns.values())))
        print(f"\nmodel {which}" + (f" (trees' weight {args.blend})" if which == "mlp+trees" else ""))
        print("| | " + " | ".join(labels[s] for s in columns) + " |")
        print("| --- | " + " | ".join("---" for _ in columns) + " |")
        for r in rows:
            print(f"| {r} | " + " | ".join(c[r] for c in columns.values()) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
