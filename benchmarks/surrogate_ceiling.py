"""The highest accuracy a surrogate predicts anywhere we can find, and how far searches stop below it.

    python benchmarks/surrogate_ceiling.py --env NASSurrogate-v1 [--starts 25] [--evolution 5] \
        [--evolution-budget 5000] [--results benchmarks/results/.../results.csv]

A benchmark is saturated when the searchers it compares all reach its ceiling: it can then no longer
tell a better searcher from a good one. This finds a ceiling from below, three ways:

- **steepest ascent** over every one-edit neighbour (``agents.common.edits.neighbours``: replace,
  insert or remove a layer), one batched prediction per step, until no neighbour predicts more;
  started from the ``--starts`` best measured architectures of ``--samples`` (default: the shipped
  samples and the top-region data), and from as many uniform random ones;
- **long regularized evolution** runs (``--evolution`` seeds of ``--evolution-budget`` trainings,
  seeds from 1000 up so none is a compared run's), each best then climbed as above.

Printed: the highest prediction of each way, the best overall, and, with ``--results`` (a
``compare_agents.py`` results.csv on the same env), each agent's IQM of best accuracy and its gap
to that ceiling in pp.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # compare_agents.py, beside this file
from compare_agents import iqm_ci  # noqa: E402


def main(argv: Sequence[str] | None = None) -> float:
    import gymnasium as gym
    import numpy as np

    import nas_gym  # noqa: F401
    from agents.common.edits import neighbours
    from agents.common.tracked_env import TrackedEnv
    from agents.registry import run_agent
    from nas_gym.build.samples import SampleSet, sample_architectures
    from nas_gym.search_space import Architecture, Vocabulary
    from nas_gym.surrogate import SHIPPED_SURROGATE

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="NASSurrogate-v1")
    p.add_argument("--starts", type=int, default=25, help="climbs from the data's best, and from random")
    p.add_argument("--evolution", type=int, default=5, help="long evolution runs, each climbed after")
    p.add_argument("--evolution-budget", type=int, default=5000)
    p.add_argument("--results", default=None, help="a compare_agents.py results.csv on --env")
    p.add_argument("--samples", action="append", default=None, help="measured starts (repeatable)")
    args = p.parse_args(argv)

    env = gym.make(args.env)
    model = env.unwrapped.surrogate
    vocabulary, size = Vocabulary(), model.image_size

    def climb(start: Architecture) -> tuple[str, float]:
        arch, value = start, float(model.predict_many([start])[0, 0])
        while True:
            around = neighbours(arch, vocabulary, size)
            scores = model.predict_many(around)[:, 0]
            best = int(np.argmax(scores))
            if scores[best] <= value:
                return str(arch), value
            arch, value = around[best], float(scores[best])

    found: dict[str, tuple[str, float]] = {}
    t0 = time.perf_counter()
    files = args.samples or [
        str(SHIPPED_SURROGATE.with_name("fashion_mini_samples.json")),
        "benchmarks/data/surrogate_top/samples.json",
    ]
    measured: dict[str, float] = {}
    for path in files:
        for arch, rows in SampleSet.load(path).by_arch().items():
            ok = [r.accuracy for r in rows if r.status == "ok"]
            if ok:
                measured[arch] = max(measured.get(arch, 0.0), float(np.mean(ok)))
    data = sorted(measured, key=measured.__getitem__, reverse=True)
    randoms = sample_architectures(args.starts, np.random.default_rng(0), size)
    for label, starts in (
        ("data's best", [Architecture.parse(a) for a in data[: args.starts]]),
        ("random", randoms),
    ):
        if starts:
            found[label] = max((climb(a) for a in starts), key=lambda r: r[1])
    for seed in range(1000, 1000 + args.evolution):
        run = TrackedEnv(gym.make(args.env), args.evolution_budget)
        run_agent("evolution", run, seed)
        best = max(run.history, key=lambda r: r.accuracy)
        climbed = climb(Architecture.parse(best.arch))
        label = f"evolution x{args.evolution_budget}"
        if label not in found or climbed[1] > found[label][1]:
            found[label] = climbed
    ceiling = max(v for _, v in found.values())
    print(f"{args.env}, surrogate {model.digest}, searched in {time.perf_counter() - t0:.0f} s")
    print("| start | highest prediction | architecture |\n| --- | --- | --- |")
    for label, (arch, value) in found.items():
        print(f"| {label} | {100 * value:.2f}% | `{arch}` |")
    print(f"ceiling_pct: {100 * ceiling:.2f}")
    if args.results:
        with open(args.results, newline="") as f:
            rows = list(csv.DictReader(f))
        best_of: dict[tuple[str, str], float] = {}
        for row in rows:
            key = (row["agent"], row["seed"])
            best_of[key] = max(best_of.get(key, 0.0), float(row["accuracy"]))
        by: dict[str, list[float]] = {}
        for (agent, _), value in best_of.items():
            by.setdefault(agent, []).append(value)
        print("| agent | runs | IQM best | below the ceiling |\n| --- | --- | --- | --- |")
        for agent, values in sorted(by.items(), key=lambda kv: -iqm_ci(kv[1])[0]):
            point = iqm_ci(values)[0]
            print(f"| {agent} | {len(values)} | {100 * point:.2f}% | {100 * (ceiling - point):.2f} pp |")
    return ceiling


if __name__ == "__main__":
    main(sys.argv[1:])
