"""Fit the surrogate over fidelities (``NASSurrogate-v2``) and measure it on architectures it never saw.

    python benchmarks/surrogate_v2.py [--folds 5] [--members 5] [--out nas_gym/data/surrogate/fashion_mini_surrogate_v2.npz]

The data: the 3-epoch samples of v1 (the shipped full-space samples and
``benchmarks/data/surrogate_top``) and the real 1- and 9-epoch trainings of
``benchmarks/data/fidelity`` (with their curves). Grouped cross-validation as for v1
(``benchmarks/surrogate.py --split grouped``): every search run's architectures stay in one fold.
Per fidelity (1, 3, 9 epochs): Kendall tau of the held-out predictions against the measured
accuracy (mean over seeds), over all and within the measured top 20%, each beside the seed-to-seed
tau of the two-seed architectures there and the surrogate's tau against their second seed; the
mean absolute error. Then the 9-epoch ranking predicted by v2 beside the one the 3-epoch
measurement gives, on the same architectures; the curve's error after each epoch k of the 9-epoch
trainings; the seconds' relative error. ``--out`` writes the surrogate fitted on everything.
Ends with ``tau_9: X`` (the held-out tau at 9 epochs).

    python benchmarks/surrogate_v2.py --score nas_gym/data/surrogate/fashion_mini_surrogate_v2.npz

scores a fitted file, without fitting, on the 1- and 9-epoch trainings the build added after its
fit. An export keeps its rows in the order they were trained, so the rows the file saw are a first
part of it: as many rows as its meta's ``samples_rows`` records, or (files fitted before it did)
the first rows whose train seconds add up to its ``samples_builds`` total, checked against the
architectures it counts (``rows_per_head``); the script stops if no such part exists. An
architecture is scored at a fidelity only if the file saw none of its rows there. Those
architectures were in its fit at 3 epochs (every architecture of the build was trained at 3 epochs
first), and a few of the 9-epoch ones at 1 epoch, so this checks what the 1- and 9-epoch heads and
the curve learnt, on the same tables, then the 9-epoch ranking per group (random, where searches
end).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_3 = [
    ROOT / "nas_gym" / "data" / "surrogate" / "fashion_mini_samples.json",
    ROOT / "benchmarks" / "data" / "surrogate_top" / "samples.json",
]
FIDELITY = ROOT / "benchmarks" / "data" / "fidelity"
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(x, y).statistic) if len(x) >= 3 else float("nan")


def load_sets() -> dict[float, object]:
    """The data of v2: epochs -> SampleSet."""
    from nas_gym.build.samples import SampleSet

    three = SampleSet.load(SAMPLES_3[0]).merged(SampleSet.load(SAMPLES_3[1]))
    return {
        1.0: SampleSet.load(FIDELITY / "samples_e1.json"),
        3.0: three,
        9.0: SampleSet.load(FIDELITY / "samples_e9.json"),
    }


def _folds(sets: dict, names: list[str], folds: int, seed: int) -> list[np.ndarray]:
    """Grouped folds: the 3-epoch samples' search runs kept together (benchmarks/surrogate.py)."""
    from benchmarks.surrogate import _fold_plan

    by_arch = sets[3.0].by_arch()
    for e in (1.0, 9.0):
        for a, rows in sets[e].by_arch().items():
            by_arch.setdefault(a, rows)
    return _fold_plan("grouped", names, by_arch, folds, seed)


def _held_out(sets: dict, data, plan: list[np.ndarray], args) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every head's accuracy predicted by a fit that did not see the architecture; seconds too."""
    from nas_gym.build.fidelity_surrogate import fit_fidelity_surrogate
    from nas_gym.search_space import Architecture
    from nas_gym.surrogate import features

    n = len(data.names)
    heads = [h for h in data.heads if not h.startswith("sec_")]
    predicted = {h: np.full(n, np.nan) for h in heads}
    seconds = np.full((n, len(data.fresh)), np.nan)
    for i, fold in enumerate(plan):
        started = time.perf_counter()
        held = {data.names[j] for j in fold}
        model, _ = fit_fidelity_surrogate(
            sets, members=args.members, epochs=args.epochs, seed=args.seed, holdout=held
        )
        x = np.stack([features(Architecture.parse(data.names[j]), model.image_size) for j in fold])
        y = model.outputs(x.astype(np.float64))
        for h in heads:
            predicted[h][fold] = model.accuracy(y, h)
        for c, e in enumerate(data.fresh):
            seconds[fold, c] = model.seconds(y, e)
        print(
            f"fold {i + 1}/{len(plan)}: {len(fold)} held out, {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return predicted, seconds


def _seed_columns(sets: dict, data, e: float) -> dict[int, tuple[float, float]]:
    """Index -> (first seed, second seed) accuracy of the architectures trained with two at ``e``."""
    from nas_gym.build.surrogate import first_two_seeds

    index = {a: i for i, a in enumerate(data.names)}
    out = {}
    for a, rows in sets[e].by_arch().items():
        two = first_two_seeds(rows)
        if two is not None:
            out[index[a]] = (two[0][1], two[1][1])
    return out


def seen_by(meta: dict, samples: list, e: float, path: str) -> set[str]:
    """The architectures of an export (``samples``, in file order) whose ``e``-epoch rows the fitted
    file with ``meta`` saw (see ``--score``)."""
    return {s.arch for s in samples[: fitted_rows(meta, samples, e, path)]}


def fitted_rows(meta: dict, samples: list, e: float, path: str) -> int:
    """How many first rows of an export (``samples``, in file order) the fitted file with ``meta``
    saw at ``e`` epochs, or SystemExit where no first part matches it."""
    n_rows = meta.get("samples_rows", {}).get(f"{e:g}")
    want = meta["rows_per_head"][f"acc_e{e:g}"]
    if n_rows is None and _ok_archs(samples) == want:  # nothing added since (the 3-epoch files)
        n_rows = len(samples)
    if n_rows is None:  # a file that did not record its rows: the prefix with its train seconds
        total, seconds = 0.0, meta["samples_builds"][f"{e:g}"]["train_seconds_total"]
        for k, row in enumerate(samples, 1):
            total += row.train_seconds
            if abs(total - seconds) <= 0.05 and _ok_archs(samples[:k]) == want:
                n_rows = k
                break
    if n_rows is None or n_rows > len(samples) or _ok_archs(samples[:n_rows]) != want:
        raise SystemExit(
            f"cannot tell which {e:g}-epoch rows {path} was fitted on: no first part of the export "
            f"matches the {want} architectures it counts"
        )
    return n_rows


def _ok_archs(rows: list) -> int:
    """Architectures whose rows are all ``ok`` (those a fit reads)."""
    ok: dict[str, bool] = {}
    for r in rows:
        ok[r.arch] = ok.get(r.arch, True) and r.status == "ok"
    return sum(ok.values())


def _scored(sets: dict, data, path: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A fitted file's predictions, NaN wherever the file saw the measurement (see ``--score``)."""
    from nas_gym.search_space import Architecture
    from nas_gym.surrogate import FidelitySurrogate, features

    model = FidelitySurrogate.load(path)
    x = np.stack([features(Architecture.parse(a), model.image_size) for a in data.names])
    y = model.outputs(x.astype(np.float64))
    seen = {e: seen_by(model.meta, sets[e].samples, e, path) for e in data.fresh}
    predicted, seconds = {}, np.full((len(data.names), len(data.fresh)), np.nan)
    for h in data.heads:
        if h.startswith("sec_"):
            continue
        e = float(h[len("acc_e") :]) if h.startswith("acc_e") else float(data.curve_of)
        mask = np.array([a in seen[e] for a in data.names])
        predicted[h] = np.where(mask, np.nan, model.accuracy(y, h))
    for c, e in enumerate(data.fresh):
        mask = np.array([a in seen[e] for a in data.names])
        seconds[:, c] = np.where(mask, np.nan, model.seconds(y, e))
    print(f"scored {path}: the architectures it did not see at 1 and 9 epochs", flush=True)
    return predicted, seconds


def _fidelity_table(sets: dict, data, predicted: dict[str, np.ndarray]) -> dict[float, float]:
    print(
        "\n| epochs | architectures | tau | tau, measured top 20% | seed-to-seed tau (pairs) | v2-to-second-seed tau | seed tau, top 20% (pairs) | v2-to-seed, top 20% | MAE |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    taus = {}
    for e in data.fresh:
        measured = data.column(f"acc_e{e:g}")
        pred = predicted[f"acc_e{e:g}"]
        ok = np.flatnonzero(~np.isnan(measured) & ~np.isnan(pred))
        if len(ok) < 3:
            continue
        top = ok[measured[ok] >= np.quantile(measured[ok], 0.8)]
        pairs = _seed_columns(sets, data, e)
        cells = []
        for group in (ok, top):
            two = [i for i in group if i in pairs]
            first = np.array([pairs[i][0] for i in two])
            second = np.array([pairs[i][1] for i in two])
            cells.append((f"{_tau(first, second):.3f} ({len(two)})", f"{_tau(pred[two], second):.3f}"))
        taus[e] = _tau(pred[ok], measured[ok])
        print(
            f"| {e:g} | {len(ok)} | {taus[e]:.3f} | {_tau(pred[top], measured[top]):.3f} | {cells[0][0]} | "
            f"{cells[0][1]} | {cells[1][0]} | {cells[1][1]} | {100 * np.mean(np.abs(pred[ok] - measured[ok])):.2f} pp |"
        )
    return taus


def _transfer_table(
    data, predicted: dict[str, np.ndarray], how: str, only: np.ndarray | None = None, of: str = ""
) -> None:
    nine, three = data.column(f"acc_e{data.fresh[-1]:g}"), data.column("acc_e3")
    pred = predicted[f"acc_e{data.fresh[-1]:g}"]
    ok = np.flatnonzero(
        ~np.isnan(nine) & ~np.isnan(three) & ~np.isnan(pred) & (True if only is None else only)
    )
    if len(ok) < 3:
        return
    top = ok[nine[ok] >= np.quantile(nine[ok], 0.8)]
    print(f"\nRanking the 9-epoch accuracy{of}, on the architectures measured at 3 and 9 epochs:\n")
    print("| ranked by | tau (all) | tau (measured top 20% at 9) |")
    print("| --- | --- | --- |")
    for label, x in (("the 3-epoch measurement", three), (f"v2 at 9 epochs, {how}", pred)):
        print(
            f"| {label} | {_tau(x[ok], nine[ok]):.3f} ({len(ok)}) | {_tau(x[top], nine[top]):.3f} ({len(top)}) |"
        )


def _curve_table(data, predicted: dict[str, np.ndarray], how: str) -> None:
    print(f"\nThe curve of a 9-epoch training after each epoch k, {how} (mean over seeds):\n")
    print("| k | architectures | MAE | tau |")
    print("| --- | --- | --- | --- |")
    for k in range(1, data.curve_of + 1):
        head = f"curve_{k}" if k < data.curve_of else f"acc_e{data.curve_of:g}"
        measured, pred = data.column(head), predicted[head]
        ok = ~np.isnan(measured) & ~np.isnan(pred)
        if ok.sum() < 3:
            continue
        mae = 100 * np.mean(np.abs(pred[ok] - measured[ok]))
        print(f"| {k} | {int(ok.sum())} | {mae:.2f} pp | {_tau(pred[ok], measured[ok]):.3f} |")


def _seconds_table(data, seconds: np.ndarray) -> None:
    print("\n| epochs | train seconds: mean relative error | tau |")
    print("| --- | --- | --- |")
    for c, e in enumerate(data.fresh):
        measured = np.exp(data.column(f"sec_e{e:g}"))
        ok = ~np.isnan(measured) & ~np.isnan(seconds[:, c])
        if not ok.any():
            continue
        rel = np.mean(np.abs(seconds[ok, c] - measured[ok]) / measured[ok])
        print(f"| {e:g} | {100 * rel:.1f}% | {_tau(seconds[ok, c], measured[ok]):.3f} |")


def main(argv: Sequence[str] | None = None) -> dict[float, float]:
    from nas_gym.build.fidelity_surrogate import fidelity_data, fit_fidelity_surrogate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds, grouped by search run (>= 2)"
    )
    p.add_argument("--members", type=int, default=5, help="MLPs in the ensemble")
    p.add_argument("--epochs", type=int, default=100, help="training epochs of each member")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the surrogate fitted on every architecture here")
    p.add_argument(
        "--score",
        default=None,
        help="score this fitted file on the trainings added after its fit; no fitting",
    )
    args = p.parse_args(argv)
    if args.folds < 2:
        p.error("--folds must be at least 2")
    if args.score and args.out:
        p.error("--score fits nothing, so it writes no --out")
    sets = load_sets()
    data = fidelity_data(sets)
    counts = {h: int((~np.isnan(data.column(h))).sum()) for h in data.heads if h.startswith("acc_")}
    print(f"architectures: {len(data.names)}; measured per fidelity: {counts}", flush=True)
    if args.score:
        predicted, seconds = _scored(sets, data, args.score)
    else:
        predicted, seconds = _held_out(sets, data, _folds(sets, data.names, args.folds, args.seed), args)
    how = "not seen" if args.score else "held out"
    taus = _fidelity_table(sets, data, predicted)
    _transfer_table(data, predicted, how)
    if args.score:
        source = {s.arch: s.source for s in sets[data.fresh[-1]].samples}
        for group, label in (("random", ", random ones only"), ("top", ", where searches end only")):
            only = np.array([source.get(a) == group for a in data.names])
            _transfer_table(data, predicted, how, only, label)
    _curve_table(data, predicted, how)
    _seconds_table(data, seconds)
    if args.out and not args.score:
        model, arrays = fit_fidelity_surrogate(sets, members=args.members, epochs=args.epochs, seed=args.seed)
        model.meta["cross_validation"] = {f"tau_{e:g}": round(t, 4) for e, t in taus.items()}
        model.save(args.out, arrays)
        print(f"\nwrote {args.out} (fitted on {model.meta['fitted_on']} architectures)")
    print(f"tau_9: {taus.get(data.fresh[-1], float('nan')):.3f}")
    return taus


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
