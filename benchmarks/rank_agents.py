"""Rank the agents of one or more comparisons by the true value of the architectures they return,
each beside the best other agent.

    python benchmarks/rank_agents.py DIR [DIR ...] [--env NASSurrogate-v2] [--score-epochs 9]

Reads each ``DIR/results.csv`` that ``compare_agents.py`` wrote (or its gzip, ``results.csv.gz``,
as the committed comparisons keep it) and pools their runs: a later
comparison can add agents, or seeds (a run of one agent and seed found in several folders is
taken from the first one given). A
run returns its best observed architecture (the first one to reach its highest accuracy); its
true value is the noiseless prediction of the env's surrogate at ``--score-epochs`` (a table: the
mean over its seeds), computed here again from the architecture. Per agent: the IQM [95% CI] of
those values, the best other agent by IQM, P(X > that agent) over pairs of runs, and whether the
two intervals are apart. Ends with ``best: NAME``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


def returned_architectures(path: Path) -> dict[str, dict[int, str]]:
    """agent -> seed -> the architecture the run returns (its first best observed)."""
    best: dict[tuple[str, int], tuple[float, str]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key, accuracy = (row["agent"], int(row["seed"])), float(row["accuracy"])
            if key not in best or accuracy > best[key][0]:
                best[key] = (accuracy, row["arch"])
    out: dict[str, dict[int, str]] = {}
    for (agent, seed), (_, arch) in best.items():
        out.setdefault(agent, {})[seed] = arch
    return out


def main(argv: Sequence[str] | None = None) -> str:
    import gymnasium as gym

    import nas_gym  # noqa: F401
    from benchmarks.compare_agents import _true_value, iqm_ci, probability_of_improvement

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="compare_agents.py output folders")
    p.add_argument("--env", default="NASSurrogate-v2")
    p.add_argument("--score-epochs", type=float, default=None, help="default: the highest the env knows")
    args = p.parse_args(argv)
    evaluator = gym.make(args.env).unwrapped.evaluator
    runs: dict[str, dict[int, str]] = {}
    source: dict[str, list[str]] = {}
    for folder in args.folders:
        found = [f for f in (folder / "results.csv", folder / "results.csv.gz") if f.exists()]
        if not found:
            p.error(f"{folder} has no results.csv (or results.csv.gz)")
        for agent, by_seed in returned_architectures(found[0]).items():
            new = {seed: arch for seed, arch in by_seed.items() if seed not in runs.get(agent, {})}
            if new:
                runs.setdefault(agent, {}).update(new)
                source.setdefault(agent, []).append(folder.name)
    values = {
        agent: [
            float(_true_value(evaluator, arch, args.score_epochs) or 0.0)
            for _, arch in sorted(by_seed.items())
        ]
        for agent, by_seed in runs.items()
    }
    stats = {agent: iqm_ci(v) for agent, v in values.items()}
    lines = [
        "| agent | runs (seeds) | returned architecture's true value, IQM [95% CI] (%) | best other agent | "
        "P(X > best other) | intervals |",
        "|---|---|---|---|---|---|",
    ]
    for agent in sorted(stats, key=lambda a: -stats[a][0]):
        other = max((a for a in stats if a != agent), key=lambda a: stats[a][0])
        (point, lo, hi), (_, other_lo, other_hi) = stats[agent], stats[other]
        apart = "ahead" if lo > other_hi else "behind" if hi < other_lo else "overlap"
        seeds = sorted(runs[agent])
        lines.append(
            f"| `{agent}` | {len(seeds)} ({seeds[0]}..{seeds[-1]}, {' + '.join(source[agent])}) | {100 * point:.2f} "
            f"[{100 * lo:.2f}, {100 * hi:.2f}] | `{other}` | "
            f"{probability_of_improvement(values[agent], values[other]):.2f} | {apart} |"
        )
    best = max(stats, key=lambda a: stats[a][0])
    text = "\n".join(lines)
    print(text)
    print(f"best: {best}")
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
