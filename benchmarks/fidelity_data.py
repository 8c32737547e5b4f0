"""Real trainings at 1 and 9 epochs beside the 3-epoch samples: the fidelity data, built resumably.

    python benchmarks/fidelity_data.py --out benchmarks/data/fidelity [--workers 1] [--limit N]

Every job trains at ``NASFashionMini-v0``'s registered configuration with 1 torch thread (the
shipped samples' configuration, checked) and ``epochs`` 1 or 9, and records its validation curve
(the accuracy after every epoch). The architectures are ones already trained at 3 epochs, so all
three fidelities are measured on the same architectures:

- ``random``: the shipped samples' random architectures of the full space, in their sample order
  (depth uniform in 1..15);
- ``top``: where searches end: the architecture each search of the 3-epoch data returned (its
  best), then the best measured at 3 epochs of the top-region data
  (``benchmarks/data/surrogate_top``: the searches' children, the best architectures' one- and
  two-edit neighbours), best first.

The plan, written once to ``OUT/jobs.json``: the first ``--nine`` architectures of each group at 9
epochs (seed 0; every ``--second-seed-every``-th also seed 1) and at 1 epoch, then the next
``--one - --nine`` of each group at 1 epoch only. Jobs are interleaved (random and top in turn,
cheap before dear within a pair), so a build stopped early is still spread over both. Trainings go
to ``OUT/store.sqlite``; after every chunk everything planned and trained is exported to
``OUT/samples_e1.json`` and ``OUT/samples_e9.json`` (the samples format with curves, source
``random`` or ``top``). A job already in an export is not trained again, so a fresh clone resumes
from the committed exports. ``--first-seeds-only`` puts the second seeds off and ``--only-epochs``
the other fidelity: they train the jobs still planned that they keep, in plan order, and leave
the rest planned.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "nas_gym" / "data" / "surrogate" / "fashion_mini_samples.json"
TOP = ROOT / "benchmarks" / "data" / "surrogate_top" / "samples.json"
ENV_ID = "NASFashionMini-v0"
FIDELITIES = (1.0, 9.0)


def _search_picks(samples) -> list[str]:
    """The architecture each search of ``samples`` returned: the best it measured (first seen wins)."""
    best: dict[str, tuple[float, str]] = {}
    for s in samples:
        if s.source.startswith(("runs/", "run:")) and s.status == "ok":
            if s.source not in best or s.accuracy > best[s.source][0]:
                best[s.source] = (s.accuracy, s.arch)
    return list(dict.fromkeys(arch for _, arch in best.values()))


def plan(args: argparse.Namespace) -> dict:
    from nas_gym.build.samples import SampleSet

    shipped, top = SampleSet.load(args.samples), SampleSet.load(args.top_samples)
    random = list(dict.fromkeys(s.arch for s in shipped.samples if s.source == "random"))
    region = [s for s in shipped.samples + top.samples if s.source != "random" and s.status == "ok"]
    by: dict[str, list[float]] = {}
    for s in region:
        by.setdefault(s.arch, []).append(s.accuracy)
    ranked = sorted(by, key=lambda a: (-float(np.mean(by[a])), a))
    best = list(dict.fromkeys(_search_picks(shipped.samples + top.samples) + ranked))
    random = [a for a in random if a not in set(best[: args.one])]  # each architecture in one group
    jobs: list[dict] = []
    for i in range(args.one):
        for group, archs in (("random", random), ("top", best)):
            if i >= len(archs):
                continue
            jobs.append({"arch": archs[i], "seed": 0, "epochs": 1.0, "source": group})
            if i < args.nine:
                jobs.append({"arch": archs[i], "seed": 0, "epochs": 9.0, "source": group})
                if i % args.second_seed_every == 0:
                    jobs.append({"arch": archs[i], "seed": 1, "epochs": 9.0, "source": group})

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    return {
        "format": "nas-gym-fidelity-plan/1",
        "from": {Path(args.samples).name: digest(args.samples), Path(args.top_samples).name: digest(args.top_samples)},
        "settings": {"one": args.one, "nine": args.nine, "second_seed_every": args.second_seed_every},
        "jobs": jobs,
    }  # fmt: skip


def _with_one_epoch_second_seeds(doc: dict, every: int) -> dict:
    """``doc`` with seed 1 at 1 epoch for every ``every``-th architecture of each group planned at 1
    epoch, each job right after its seed 0 (so a build that has passed them trains them next)."""
    if every < 1:
        raise SystemExit("--one-second-seed-every must be >= 1")
    jobs, seen = [], {"random": 0, "top": 0}
    for job in doc["jobs"]:
        jobs.append(job)
        if float(job["epochs"]) == 1.0 and job["seed"] == 0:
            if seen[job["source"]] % every == 0:
                jobs.append({**job, "seed": 1})
            seen[job["source"]] += 1
    return {**doc, "settings": {**doc["settings"], "one_second_seed_every": every}, "jobs": jobs}


def main(argv: Sequence[str] | None = None) -> int:
    import nas_gym
    from nas_gym.build.samples import Sample, SampleSet
    from nas_gym.evaluation import Evaluator
    from nas_gym.parallel import train_jobs
    from nas_gym.store import ResultStore

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the build's folder (plan, store, exports)")
    p.add_argument(
        "--samples", default=str(SHIPPED), help="the shipped 3-epoch samples (random architectures)"
    )
    p.add_argument("--top-samples", default=str(TOP), help="the 3-epoch top-region samples")
    p.add_argument("--one", type=int, default=1000, help="architectures of each group at 1 epoch")
    p.add_argument("--nine", type=int, default=500, help="architectures of each group at 9 epochs")
    p.add_argument("--second-seed-every", type=int, default=3, help="every k-th 9-epoch one with seed 1 too")
    p.add_argument(
        "--one-second-seed-every",
        type=int,
        default=None,
        help="extend the plan once: every k-th 1-epoch architecture with seed 1 too, each right after its seed 0",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--chunk", type=int, default=8, help="jobs between exports")
    p.add_argument("--limit", type=int, default=None, help="stop after this many new trainings")
    p.add_argument("--plan-only", action="store_true", help="write the plan and stop")
    p.add_argument(
        "--first-seeds-only",
        action="store_true",
        help="train only the planned seed-0 jobs now; the second seeds stay planned for a later run",
    )
    p.add_argument(
        "--only-epochs",
        type=float,
        choices=FIDELITIES,
        default=None,
        help="train only the planned jobs at this fidelity now (1 or 9); the others stay planned",
    )
    args = p.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    plan_file, store_file = args.out / "jobs.json", args.out / "store.sqlite"
    if plan_file.exists():
        doc = json.loads(plan_file.read_text())
    else:
        doc = plan(args)
        plan_file.write_text(json.dumps(doc, indent=0) + "\n")
        print(f"planned {len(doc['jobs'])} jobs -> {plan_file}")
    if args.one_second_seed_every and "one_second_seed_every" not in doc["settings"]:
        doc = _with_one_epoch_second_seeds(doc, args.one_second_seed_every)
        plan_file.write_text(json.dumps(doc, indent=0) + "\n")
        print(f"plan extended: {len(doc['jobs'])} jobs -> {plan_file}")
    if args.plan_only:
        return 0

    base = nas_gym.ENV_IDS[ENV_ID].replace(threads=1)
    shipped = SampleSet.load(args.samples)
    children = {e: base.replace(epochs=e) for e in FIDELITIES}
    evaluators = {e: Evaluator(c, store=str(store_file), ledger_tag="fidelity") for e, c in children.items()}
    keys = {e: ev.config_key for e, ev in evaluators.items()}
    three = json.loads(Evaluator(base, store=None).config_key)
    if three != shipped.config:
        raise SystemExit(f"{ENV_ID}'s training configuration differs from the samples': {three}")
    exports = {e: args.out / f"samples_e{int(e)}.json" for e in FIDELITIES}
    source = {(j["arch"], j["seed"], float(j["epochs"])): j["source"] for j in doc["jobs"]}
    started, trained = time.time(), 0
    trained_at = dict.fromkeys(FIDELITIES, 0)  # this invocation's trainings per fidelity
    command = "python benchmarks/fidelity_data.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def exported(e: float) -> dict[tuple[str, int], Sample]:
        return (
            {(s.arch, s.seed): s for s in SampleSet.load(exports[e]).samples} if exports[e].exists() else {}
        )

    def export() -> None:
        import torch

        for e, ev in evaluators.items():
            samples = exported(e)  # what is on disk now: a fresh clone's committed rows included
            rows = [
                r for r in ResultStore(store_file).rows(ev.dataset, keys[e]) if (r.arch, r.seed, e) in source
            ]
            if exports[e].exists() and all((r.arch, r.seed) in samples for r in rows):
                continue  # nothing new at this fidelity: its export and its build record stay
            for r in rows:
                samples[(r.arch, r.seed)] = Sample.from_row(r, source[(r.arch, r.seed, e)])
            result = SampleSet(ENV_ID, ev.dataset, json.loads(keys[e]), shipped.image_size, list(samples.values()), {
                "command": command,
                "date": time.strftime("%Y-%m-%d", time.gmtime()),
                "plan": plan_file.name,
                "plan_settings": doc["settings"],
                "from": doc["from"],
                "trainings_this_invocation": trained_at[e],
                "wall_seconds_this_invocation": round(time.time() - started, 1),
                "train_seconds_total": round(sum(s.train_seconds for s in samples.values()), 1),
                "workers": args.workers,
                "torch_threads_per_worker": 1,
                "torch": torch.__version__,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            })  # fmt: skip
            result.save(exports[e])

    def todo() -> list[dict]:
        done = {e: set(exported(e)) for e in FIDELITIES}
        for e, ev in evaluators.items():
            done[e] |= {(r.arch, r.seed) for r in ResultStore(store_file).rows(ev.dataset, keys[e])}
        return [
            j
            for j in doc["jobs"]
            if (j["arch"], j["seed"]) not in done[float(j["epochs"])]
            and not (args.first_seeds_only and j["seed"])
            and args.only_epochs in (None, float(j["epochs"]))
        ]

    while (jobs := todo()) and (args.limit is None or trained < args.limit):
        size = args.chunk if args.limit is None else min(args.chunk, args.limit - trained)
        chunk = jobs[:size]
        for e in FIDELITIES:  # in plan order within a fidelity; the chunk is small
            part = [(j["arch"], j["seed"]) for j in chunk if float(j["epochs"]) == e]
            if part and args.workers > 1:
                trained_at[e] += train_jobs(
                    children[e], store_file, part, args.workers, 1, tag="fidelity", longest_first=False
                )
            for arch, seed in part if args.workers == 1 else ():  # one worker process per fidelity, kept
                trained_at[e] += evaluators[e].evaluate(arch, seed).trainings
        trained = sum(trained_at.values())
        export()
        print(
            f"{time.strftime('%H:%M:%S')} trained {trained}, {len(jobs) - len(chunk)} left of the jobs"
            " this run trains",
            flush=True,
        )
    export()
    for ev in evaluators.values():
        ev.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
