"""Does the answer hold at a longer budget? Rank transfer between 1, 3 and 9 epochs, measured.

    python benchmarks/fidelity.py [--data benchmarks/data/fidelity] [--bootstrap 1000]

Reads the real trainings of ``benchmarks/fidelity_data.py`` (1 and 9 epochs, with curves) beside
the 3-epoch samples they were planned from (the shipped samples and the top-region data), all at
``NASFashionMini-v0``'s configuration with 1 torch thread, and prints from what is there now:

- counts per fidelity and group, train seconds, histograms of the accuracies;
- Kendall tau between fidelities on the same architectures (seed 0; at 3 epochs the mean of the
  seeds measured where seed 0 is not, as for a search's children): 1->9, 3->9, over all and in
  the top 20% at 9 epochs, each beside the seed-to-seed tau at 9 epochs (seeds 0 and 1);
- the curve's epoch k of a 9-epoch training against a fresh k-epoch training (k = 1, 3) and
  against the 9-epoch result;
- the regret of choosing by 3 (or 1) epochs: the 9-epoch accuracy of the best-at-3 of a set of
  architectures against the best-at-9 of the same set, over all the 9-epoch architectures of each
  group and over random subsets of 100 (a search's worth of picks), with a bootstrap 95% interval;
- per search run of the 3-epoch data: the 9-epoch accuracy of the architecture it returned (its best
  measured at 3 epochs) against the best at 9 of its children trained at 9 (only its upper part is,
  so this regret is a lower bound).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "nas_gym" / "data" / "surrogate" / "fashion_mini_samples.json"
TOP = ROOT / "benchmarks" / "data" / "surrogate_top" / "samples.json"


def _seed_values(samples, seed: int) -> dict[str, float]:
    return {s.arch: s.accuracy for s in samples if s.seed == seed and s.status == "ok"}


def _tau(a: dict[str, float], b: dict[str, float], archs: list[str]) -> tuple[float, int]:
    common = [x for x in archs if x in a and x in b]
    if len(common) < 5:
        return float("nan"), len(common)
    return float(kendalltau([a[x] for x in common], [b[x] for x in common]).statistic), len(common)


def _top(values: dict[str, float], share: float = 0.2) -> list[str]:
    ranked = sorted(values, key=lambda a: -values[a])
    return ranked[: max(1, int(round(share * len(ranked))))]


def _histogram(values: list[float], lo: float = 0.5, hi: float = 0.95, step: float = 0.05) -> str:
    edges = np.arange(lo, hi + 1e-9, step)
    counts = np.histogram(np.clip(values, lo, hi - 1e-9), edges)[0]
    return "  ".join(
        f"{100 * e:.0f}-{100 * (e + step):.0f}%: {c}" for e, c in zip(edges[:-1], counts, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    from nas_gym.build.samples import SampleSet

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "fidelity")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument(
        "--subset", type=int, default=100, help="architectures in a random subset (a search's picks)"
    )
    args = p.parse_args(argv)

    e1 = SampleSet.load(args.data / "samples_e1.json").samples
    e9 = SampleSet.load(args.data / "samples_e9.json").samples
    e3 = SampleSet.load(SHIPPED).samples + SampleSet.load(TOP).samples
    group = {s.arch: s.source for s in e1 + e9}
    # at 3 epochs a search's children were trained with the search's seed: where seed 0 is not
    # measured, the mean of the seeds that are stands in for it
    three: dict[str, list[float]] = {}
    for s in e3:
        if s.status == "ok":
            three.setdefault(s.arch, []).append(s.accuracy)
    at = {1: _seed_values(e1, 0), 3: {a: float(np.mean(v)) for a, v in three.items()}, 9: _seed_values(e9, 0)}
    at[3].update(_seed_values(e3, 0))
    nine_1 = _seed_values(e9, 1)
    curve = {k: {s.arch: p[1] for s in e9 if s.seed == 0 and s.status == "ok" for p in s.curve if p[0] == k}
             for k in (1.0, 3.0)}  # fmt: skip

    print("## Data")
    for name, samples in (("1 epoch", e1), ("9 epochs", e9)):
        for g in ("random", "top"):
            part = [s for s in samples if s.source == g]
            two = len({s.arch for s in part if s.seed == 1})
            secs = sum(s.train_seconds for s in part)
            print(f"{name:>9} {g:>6}: {len(part)} trainings, {len({s.arch for s in part})} architectures, "
                  f"{two} with two seeds, {secs / 3600:.2f} train hours, {sum(s.status != 'ok' for s in part)} failed")  # fmt: skip
    for k, values in at.items():
        archs = [a for a in values if a in group]
        print(f"accuracy at {k} epoch(s), the {len(archs)} architectures of this build: "
              + _histogram([values[a] for a in archs]))  # fmt: skip

    print("\n## Rank transfer (Kendall tau, seed 0; n in brackets)")
    print("| set | 1 -> 9 | 3 -> 9 | curve@1 -> 9 | curve@3 -> 9 | seed 0 vs 1 at 9 |")
    print("|---|---|---|---|---|---|")
    nine = at[9]
    for name, archs in (
        ("all", list(nine)),
        ("random", [a for a in nine if group.get(a) == "random"]),
        ("where searches end", [a for a in nine if group.get(a) == "top"]),
        ("top 20% at 9 epochs", _top(nine)),
    ):
        cells = [_tau(at[1], nine, archs), _tau(at[3], nine, archs), _tau(curve[1.0], nine, archs),
                 _tau(curve[3.0], nine, archs), _tau(nine_1, nine, archs)]  # fmt: skip
        print(f"| {name} | " + " | ".join(f"{t:.2f} ({n})" for t, n in cells) + " |")
    for k in (1, 3):
        t, n = _tau(curve[float(k)], at[k], list(nine))
        diff = [curve[float(k)][a] - at[k][a] for a in nine if a in curve[float(k)] and a in at[k]]
        print(f"curve@{k} of a 9-epoch training vs a fresh {k}-epoch training: tau {t:.2f} ({n}), "
              f"mean difference {100 * float(np.mean(diff)) if diff else float('nan'):+.2f} pp")  # fmt: skip

    print("\n## Regret of choosing at a lower fidelity (9-epoch accuracy, pp)")
    rng = np.random.default_rng(0)
    for low in (1, 3):
        for name in ("random", "top"):
            archs = [a for a in nine if group.get(a) == name and a in at[low]]
            if len(archs) < 5:
                continue
            pick = max(archs, key=lambda a: at[low][a])
            best = max(archs, key=lambda a: nine[a])
            size = min(args.subset, len(archs))
            regrets = []
            for _ in range(args.bootstrap):
                sub = list(rng.choice(archs, size=size, replace=False))
                regrets.append(100 * (max(nine[a] for a in sub) - nine[max(sub, key=lambda a: at[low][a])]))
            lo, hi = np.percentile(regrets, [2.5, 97.5])
            print(f"best at {low} of {len(archs)} '{name}' architectures: {pick} ({100 * nine[pick]:.2f}% at 9) "
                  f"vs best at 9 {best} ({100 * nine[best]:.2f}%): regret {100 * (nine[best] - nine[pick]):.2f}; "
                  f"subsets of {size}: mean {np.mean(regrets):.2f} [{lo:.2f}, {hi:.2f}]")  # fmt: skip

    print("\n## Regret of a search's own pick (9-epoch accuracy, pp; its children trained at 9 only)")
    children: dict[str, dict[str, float]] = {}
    for s in e3:
        if s.source.startswith(("runs/", "run:")) and s.status == "ok":
            children.setdefault(s.source, {}).setdefault(s.arch, s.accuracy)  # its first measurement
    per_run = []
    for run, measured in sorted(children.items()):
        pick = max(measured, key=lambda a: measured[a])  # what the search returned
        known = [a for a in measured if a in nine]
        if pick not in nine or len(known) < 2:
            continue
        best = max(known, key=lambda a: nine[a])
        per_run.append(100 * (nine[best] - nine[pick]))
        print(f"{run}: {len(measured)} children, {len(known)} at 9; returned {pick} "
              f"({100 * nine[pick]:.2f}% at 9), best at 9 {100 * nine[best]:.2f}%: regret {per_run[-1]:.2f}")  # fmt: skip
    if per_run:
        print(f"{len(per_run)} runs: regret mean {np.mean(per_run):.2f}, median {np.median(per_run):.2f}, "
              f"max {max(per_run):.2f}, zero in {sum(r == 0 for r in per_run)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
