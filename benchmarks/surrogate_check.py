"""Train for real the architectures searches found on ``NASSurrogate-v0``, and compare with the surrogate.

    python benchmarks/surrogate_check.py --results benchmarks/results/compare_surrogate_437/results.csv \
        [--seed-of-run 0] [--store samples.sqlite] [--threads 1] [--train-seeds 0]

A search drives towards the architectures the surrogate rates highest, which is where an error of
the surrogate matters most. For each agent, the best architecture of its run with ``--seed-of-run``
is trained from scratch at ``NASFashionMini-v0``'s budget (seed 0, ``--threads`` torch threads: the
shipped samples' configuration), and its measured validation accuracy is printed beside the
prediction. ``--train-seeds 0,1,2``: each is trained with every one of these seeds and the mean of
the trainings is compared (one training carries its seed's noise; the mean of k carries 1/sqrt(k)
of it). ``--store``: a result store to train into (the samples' store adds these trainings to the
surrogate's data; a stored architecture is not trained again). Ends with
``mean_overrating_pp: X`` (predicted minus measured, averaged over the distinct architectures).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> float:

    import nas_gym  # noqa: F401
    from nas_gym.evaluation import Evaluator
    from nas_gym.surrogate import load_surrogate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", required=True, help="a compare_agents.py results.csv on NASSurrogate-v0")
    p.add_argument("--seed-of-run", default="0")
    p.add_argument("--store", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--surrogate", default=None, help="default: the shipped one")
    p.add_argument("--train-seeds", default="0", help="comma-separated training seeds, averaged")
    args = p.parse_args(argv)

    best: dict[str, tuple[str, float]] = {}
    with open(args.results, newline="") as f:
        for row in csv.DictReader(f):
            if row["seed"] != args.seed_of_run:
                continue
            if row["agent"] not in best or float(row["accuracy"]) > best[row["agent"]][1]:
                best[row["agent"]] = (row["arch"], float(row["accuracy"]))
    model = load_surrogate(args.surrogate)
    evaluator = Evaluator(
        nas_gym.ENV_IDS["NASFashionMini-v0"],
        store=args.store,
        ledger_tag="surrogate_check",
        threads=args.threads,
    )
    seeds = [int(s) for s in args.train_seeds.split(",") if s.strip()]
    if not seeds:
        raise SystemExit("--train-seeds needs at least one seed")
    print(f"{'agent':14} {'architecture':48} {'predicted':>9} {'measured':>9} {'diff pp':>8}")
    diffs: dict[str, float] = {}
    for agent, (arch, _) in best.items():
        predicted = model.predict(arch)[0]
        measured = sum(evaluator.evaluate(arch, s).accuracy for s in seeds) / len(seeds)
        diffs[arch] = 100 * (predicted - measured)
        print(f"{agent:14} {arch:48} {100 * predicted:9.2f} {100 * measured:9.2f} {diffs[arch]:8.2f}")
    evaluator.close()
    mean = sum(diffs.values()) / max(1, len(diffs))
    print(f"distinct architectures: {len(diffs)}")
    print(f"mean_overrating_pp: {mean:.2f}")
    return mean


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
