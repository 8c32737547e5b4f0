"""Recording a curve changes no result: stored trainings trained again, with their curves.

    python benchmarks/curve_check.py [--n 10] [--seed 0]

Takes ``--n`` random architectures of the shipped samples (``NASFashionMini-v0``'s configuration,
1 torch thread, seed 0, trained before curves were recorded), trains each again through the
evaluator (which now records the validation curve after every epoch) and prints, per
architecture, the stored accuracy, the new one and its curve, then how many are identical. The
samples were trained on an AMD EPYC (AVX2); on another instruction set the sums may differ in the
last bits, which says nothing about the curve (``tests/test_trainer.py`` compares the two ways
in one process).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "nas_gym" / "data" / "surrogate" / "fashion_mini_samples.json"


def main(argv: list[str] | None = None) -> int:
    import nas_gym
    from nas_gym.build.samples import SampleSet
    from nas_gym.evaluation import Evaluator

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    samples = SampleSet.load(SHIPPED)
    rows = [s for s in samples.samples if s.source == "random" and s.seed == 0 and s.status == "ok"]
    picks = [rows[i] for i in np.random.default_rng(args.seed).choice(len(rows), args.n, replace=False)]
    same = 0
    with tempfile.TemporaryDirectory() as folder:
        evaluator = Evaluator(
            nas_gym.ENV_IDS["NASFashionMini-v0"].replace(threads=1), store=f"{folder}/s.sqlite"
        )
        assert json.loads(evaluator.config_key) == samples.config, "not the samples' configuration"
        for s in picks:
            result = evaluator.evaluate(s.arch, 0)
            curve = evaluator.stored(s.arch, 0).curve_points()  # type: ignore[union-attr]
            same += result.accuracy == s.accuracy
            points = " ".join(f"{a:.4f}" for _, a, _ in curve)
            print(f"{s.arch}: stored {s.accuracy:.4f}, now {result.accuracy:.4f}, curve {points}")
        evaluator.close()
    print(f"identical final accuracies: {same} of {len(picks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
