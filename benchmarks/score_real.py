"""Score a comparison by real trainings of the architectures its searches returned.

    python benchmarks/score_real.py benchmarks/results/compare_v2_3500s_300 \
        --agents bohb,evolution,reinforce --epochs 9 --workers 2 --out DIR

A comparison on ``NASSurrogate-v2`` scores each run by the surrogate's noiseless prediction for the
architecture it returned (its first best observed, as ``rank_agents.py`` reads it). This script
trains those architectures for real instead: once each, from scratch, at ``NASFashionMini-v0``'s
registered configuration with ``--epochs`` epochs, seed 0 and 1 torch thread (the configuration of
``benchmarks/fidelity_data.py``, whose committed trainings are read first and not trained again),
into ``DIR/store.sqlite`` (resumable). It prints, per agent, the IQM [95% CI] of the measured
accuracy beside the surrogate's value, the best other agent by the measured IQM, P(X > it) over
pairs of runs and whether the two intervals are apart; then how well the surrogate's value ranks
the measured one (Kendall tau over the distinct architectures). ``DIR/real_scores.csv`` keeps one
row per run. One training per architecture carries that seed's noise (about 0.5 pp at 9 epochs).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))
FIDELITY = ROOT / "benchmarks" / "data" / "fidelity"


def main(argv: Sequence[str] | None = None) -> str:
    import gymnasium as gym
    import numpy as np
    from scipy.stats import kendalltau

    import nas_gym
    from benchmarks.compare_agents import _split_agents, _true_value, iqm_ci, probability_of_improvement
    from benchmarks.rank_agents import returned_architectures
    from nas_gym.build.samples import SampleSet
    from nas_gym.evaluation import Evaluator
    from nas_gym.parallel import train_jobs

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, help="a compare_agents.py output folder")
    p.add_argument("--agents", default=None, help="comma-separated agents (default: every agent there)")
    p.add_argument("--epochs", type=float, default=9.0)
    p.add_argument("--out", type=Path, required=True, help="folder for the store and real_scores.csv")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--env", default="NASSurrogate-v2", help="the env whose values are shown beside")
    p.add_argument(
        "--known",
        type=Path,
        default=None,
        help="trainings to read first (default: the fidelity build's export at --epochs, if any)",
    )
    args = p.parse_args(argv)
    found = [f for f in (args.folder / "results.csv", args.folder / "results.csv.gz") if f.exists()]
    if not found:
        p.error(f"{args.folder} has no results.csv (or results.csv.gz)")
    runs = returned_architectures(found[0])
    if args.agents:
        wanted = _split_agents(args.agents)
        missing = [a for a in wanted if a not in runs]
        if missing:
            p.error(f"not in {found[0]}: {', '.join(missing)} (there: {', '.join(sorted(runs))})")
        runs = {a: runs[a] for a in wanted}
    if args.epochs <= 0:
        p.error("--epochs must be positive")

    child = nas_gym.ENV_IDS["NASFashionMini-v0"].replace(threads=1, epochs=args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "store.sqlite"
    evaluator = Evaluator(child, store=str(store))
    measured: dict[str, float] = {}
    if args.known is not None and not args.known.exists():
        p.error(f"--known {args.known}: no such file")
    known = args.known or FIDELITY / f"samples_e{args.epochs:g}.json"
    if known.exists():
        samples = SampleSet.load(known)
        if samples.config != json.loads(evaluator.config_key):
            p.error(f"{known} was trained at another configuration than --epochs {args.epochs:g} asks for")
        measured = {s.arch: s.accuracy for s in samples.samples if s.seed == 0 and s.status == "ok"}
    archs = list(dict.fromkeys(a for by in runs.values() for _, a in sorted(by.items())))
    todo = [(a, 0) for a in archs if a not in measured]
    started = time.time()
    print(f"{len(archs)} distinct returned architectures, {len(archs) - len(todo)} measured before; "
          f"training the rest at {args.epochs:g} epochs on {args.workers} worker(s)", flush=True)  # fmt: skip
    trained = train_jobs(child, store, todo, args.workers, 1, tag="score_real", longest_first=False,
               on_result=lambda d, n, a, s, acc: a and print(f"  {d}/{n} {a}: {100 * acc:.2f}%", flush=True))  # fmt: skip
    failed = []
    for arch, _ in todo:
        row = evaluator.lookup(arch, 0)
        if row is not None and row.status == "ok":
            measured[arch] = row.accuracy
        else:
            failed.append(arch)
    evaluator.close()
    surrogate = gym.make(args.env).unwrapped.evaluator
    predicted = {a: float(_true_value(surrogate, a, args.epochs) or float("nan")) for a in archs}

    real = {
        agent: [measured.get(a, float("nan")) for _, a in sorted(by.items())] for agent, by in runs.items()
    }
    with open(args.out / "real_scores.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["agent", "seed", "arch", "measured", f"{args.env}_value"])
        for agent, by in runs.items():
            for seed, a in sorted(by.items()):
                w.writerow([agent, seed, a, measured.get(a, ""), round(predicted[a], 6)])
    usable = {agent: [v for v in values if v == v] for agent, values in real.items()}
    stats = {agent: iqm_ci(v) for agent, v in usable.items() if v}
    pred = {agent: iqm_ci([predicted[a] for _, a in sorted(by.items())]) for agent, by in runs.items()}
    lines = [
        f"| agent | runs | measured at {args.epochs:g} epochs, IQM [95% CI] (%) | {args.env}'s value, IQM [95% CI] (%) "
        "| best other (measured) | P(X > best other) | intervals |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for agent in sorted(stats, key=lambda a: -stats[a][0]):
        others = [a for a in stats if a != agent]
        (point, lo, hi), (pp, plo, phi) = stats[agent], pred[agent]
        if others:
            other = max(others, key=lambda a: stats[a][0])
            _, olo, ohi = stats[other]
            apart = "ahead" if lo > ohi else "behind" if hi < olo else "overlap"
            vs = f"`{other}` | {probability_of_improvement(usable[agent], usable[other]):.2f} | {apart}"
        else:
            vs = "- | - | -"
        lines.append(f"| `{agent}` | {len(usable[agent])} | {100 * point:.2f} [{100 * lo:.2f}, {100 * hi:.2f}] | "
                     f"{100 * pp:.2f} [{100 * plo:.2f}, {100 * phi:.2f}] | {vs} |")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    both = [a for a in archs if a in measured and predicted[a] == predicted[a]]
    if len(both) >= 5:
        x, y = np.array([predicted[a] for a in both]), np.array([measured[a] for a in both])
        print(f"{args.env}'s value against the measured accuracy over {len(both)} architectures: "
              f"Kendall tau {kendalltau(x, y).statistic:.3f}, mean difference {100 * float(np.mean(x - y)):+.2f} pp")  # fmt: skip
    print(
        f"trained {trained} now, {len(todo) - trained} read from {store.name}; {len(failed)} failed; "
        f"{time.time() - started:.0f} s"
    )
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
