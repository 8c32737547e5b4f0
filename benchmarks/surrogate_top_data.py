"""Real trainings where searches end: the surrogate's top-region data, built resumably.

    python benchmarks/surrogate_top_data.py --out benchmarks/data/surrogate_top [--workers 1] \
        [--top 120] [--one-edit 6] [--two-edit 4] [--run RUN ...]

The shipped samples (``nas_gym/data/surrogate/fashion_mini_samples.json``) cover the full space
well and its top sparsely: about 300 architectures at or above the measured 90th percentile, 9 of
them with two seeds. This script plans, once, a list of (architecture, seed) jobs from that file
and writes it to ``OUT/jobs.json`` (with the file's digest and the plan's settings); later runs
read the plan and go on where they stopped:

- ``second_seed``: every top-decile architecture measured with one seed only, with another seed
  (0, or 1 where 0 is measured): the seed-to-seed noise where searches end, measured;
- ``edit1`` / ``edit2``: for each of the ``--top`` best measured architectures, distinct one- and
  two-edit neighbours that are not in the data (the edits of regularized evolution's mutation:
  replace, insert or remove one layer), seed 0: what a search probes around the best;
- ``second_seed_new``: once a neighbour has trained into the top decile, a second seed for it
  (planned after the neighbours, so the plan grows by these).

Jobs are interleaved by rank (the best architecture's jobs first), so a build stopped early is
still spread over the top. Everything trains at ``NASFashionMini-v0``'s configuration with 1 torch
thread (the shipped samples' configuration, checked) into ``OUT/store.sqlite``; after every chunk
of ``--chunk`` trainings every row the plan asked for, and every child of the ``--run`` search
folders, is exported to ``OUT/samples.json`` (the samples format, sources as above). A job already
in that export is not trained again either, so a fresh clone resumes from the committed export.
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

SHIPPED = Path(__file__).resolve().parents[1] / "nas_gym" / "data" / "surrogate" / "fashion_mini_samples.json"
ENV_ID = "NASFashionMini-v0"


def _mean_accuracy(samples) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for s in samples:
        if s.status == "ok":
            by.setdefault(s.arch, []).append(s.accuracy)
    return {a: float(np.mean(v)) for a, v in by.items()}


def _neighbours(arch, edits: int, want: int, known: set[str], rng, vocabulary, image_size) -> list[str]:
    """Up to ``want`` distinct architectures exactly ``edits`` mutations from ``arch``, not in ``known``."""
    from agents.common.edits import mutate

    out: list[str] = []
    for _ in range(200 * want):
        child = arch
        for _ in range(edits):
            child = mutate(child, vocabulary, image_size, rng) or child
        text = str(child)
        if text != str(arch) and text not in known and text not in out:
            if edits == 2 and _one_edit_apart(str(arch), text):
                continue  # two edits that undo to one
            out.append(text)
            if len(out) == want:
                break
    return out


def _one_edit_apart(a: str, b: str) -> bool:
    x, y = a.split("-"), b.split("-")
    if len(x) == len(y):
        return sum(p != q for p, q in zip(x, y, strict=True)) == 1
    if abs(len(x) - len(y)) != 1:
        return False
    long, short = (x, y) if len(x) > len(y) else (y, x)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def plan(args: argparse.Namespace) -> dict:
    from nas_gym.build.samples import SampleSet
    from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture

    shipped = SampleSet.load(args.samples)
    full = [s for s in shipped.samples if s.source != "table"]
    means = _mean_accuracy(full)
    threshold = float(np.quantile([s.accuracy for s in full if s.status == "ok"], 0.9))
    seeds: dict[str, set[int]] = {}
    for s in full:
        seeds.setdefault(s.arch, set()).add(s.seed)
    ranked = sorted(means, key=lambda a: (-means[a], a))
    rng = np.random.default_rng(args.seed)
    known = set(means)
    jobs: list[dict] = []
    for rank, arch in enumerate(ranked):
        if means[arch] < threshold:
            break
        if len(seeds[arch]) == 1:
            other = 0 if 0 not in seeds[arch] else 1
            jobs.append({"arch": arch, "seed": other, "source": "second_seed", "parent": arch})
        if rank < args.top:
            parent = Architecture.parse(arch)
            for edits, want in ((1, args.one_edit), (2, args.two_edit)):
                for child in _neighbours(
                    parent, edits, want, known, rng, DEFAULT_VOCABULARY, shipped.image_size
                ):
                    known.add(child)
                    jobs.append({"arch": child, "seed": 0, "source": f"edit{edits}", "parent": arch})
    digest = hashlib.sha256(Path(args.samples).read_bytes()).hexdigest()[:16]
    return {
        "format": "nas-gym-top-plan/1",
        "from_samples": str(Path(args.samples).name),
        "from_samples_sha256_16": digest,
        "top_decile_threshold": threshold,
        "settings": {
            "top": args.top,
            "one_edit": args.one_edit,
            "two_edit": args.two_edit,
            "seed": args.seed,
        },
        "jobs": jobs,
    }


def main(argv: Sequence[str] | None = None) -> int:

    import nas_gym  # noqa: F401  registers the ids
    from nas_gym.build.samples import Sample, SampleSet
    from nas_gym.evaluation import Evaluator
    from nas_gym.parallel import train_jobs
    from nas_gym.store import ResultStore

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the build's folder (plan, store, export)")
    p.add_argument("--samples", default=str(SHIPPED), help="the samples the plan starts from")
    p.add_argument(
        "--top", type=int, default=120, help="best measured architectures whose neighbours to train"
    )
    p.add_argument("--one-edit", type=int, default=6, help="one-edit neighbours per top architecture")
    p.add_argument("--two-edit", type=int, default=4, help="two-edit neighbours per top architecture")
    p.add_argument("--seed", type=int, default=0, help="seed of the neighbour draws")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--chunk", type=int, default=20, help="trainings between exports")
    p.add_argument("--limit", type=int, default=None, help="stop after this many new trainings")
    p.add_argument("--run", action="append", default=[], help="a search folder whose children to export")
    p.add_argument("--plan-only", action="store_true", help="write the plan and stop")
    args = p.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    plan_file, export_file, store_file = (
        args.out / "jobs.json",
        args.out / "samples.json",
        args.out / "store.sqlite",
    )
    if plan_file.exists():
        doc = json.loads(plan_file.read_text())
    else:
        doc = plan(args)
        plan_file.write_text(json.dumps(doc, indent=0) + "\n")
        print(f"planned {len(doc['jobs'])} jobs -> {plan_file}")
    if args.plan_only:
        return 0

    child = nas_gym.ENV_IDS[ENV_ID].replace(threads=1)
    evaluator = Evaluator(child, store=str(store_file))
    config = evaluator.config_key
    shipped = SampleSet.load(args.samples)
    if json.loads(config) != shipped.config:
        raise SystemExit(f"{ENV_ID}'s training configuration differs from the samples': {config}")
    previous = (
        {(s.arch, s.seed): s for s in SampleSet.load(export_file).samples} if export_file.exists() else {}
    )
    started, trained = time.time(), 0

    def export() -> SampleSet:
        source = {(j["arch"], j["seed"]): j["source"] for j in doc["jobs"]}
        rows = {(r.arch, r.seed): r for r in ResultStore(store_file).rows(evaluator.dataset, config)}
        # what is on disk now, not what was at the start: another invocation may have exported more
        on_disk = SampleSet.load(export_file).samples if export_file.exists() else previous.values()
        samples = {(s.arch, s.seed): s for s in on_disk}
        for key, r in rows.items():
            if key in source:
                samples[key] = Sample(
                    r.arch, r.seed, r.accuracy, r.train_seconds, r.num_params, r.status, source[key]
                )
        for run in args.run:
            for r in ResultStore(Path(run) / "results.sqlite").rows(evaluator.dataset, config):
                samples.setdefault(
                    (r.arch, r.seed),
                    Sample(
                        r.arch,
                        r.seed,
                        r.accuracy,
                        r.train_seconds,
                        r.num_params,
                        r.status,
                        f"run:{Path(run).name}",
                    ),
                )
        stamps = [r.created_at for k, r in rows.items() if k in source]
        import torch

        result = SampleSet(ENV_ID, evaluator.dataset, json.loads(config), shipped.image_size, list(samples.values()), {
            "command": "python benchmarks/surrogate_top_data.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "plan": plan_file.name,
            "plan_settings": doc["settings"],
            "from_samples_sha256_16": doc["from_samples_sha256_16"],
            "trainings_this_invocation": trained,
            "wall_seconds_this_invocation": round(time.time() - started, 1),
            "train_seconds_total": round(sum(s.train_seconds for s in samples.values()), 1),
            "last_trained_here": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(stamps))) if stamps else None,
            "workers": args.workers,
            "torch_threads_per_worker": 1,
            "torch": torch.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        })  # fmt: skip
        result.save(export_file)
        return result

    def todo() -> list[tuple[str, int]]:
        stored = {(r.arch, r.seed) for r in ResultStore(store_file).rows(evaluator.dataset, config)}
        return [
            (j["arch"], j["seed"])
            for j in doc["jobs"]
            if (j["arch"], j["seed"]) not in stored | set(previous)
        ]

    for stage in (1, 2):
        while (jobs := todo()) and (args.limit is None or trained < args.limit):
            chunk = jobs[: args.chunk if args.limit is None else min(args.chunk, args.limit - trained)]
            trained += train_jobs(
                child, store_file, chunk, args.workers, 1, tag="surrogate_top", longest_first=False
            )
            export()
            print(
                f"{time.strftime('%H:%M:%S')} trained {trained}, {len(jobs) - len(chunk)} planned left",
                flush=True,
            )
        if stage == 1:  # a second seed for every neighbour that trained into the top decile
            have = {(s.arch, s.seed): s for s in export().samples}
            planned = {(j["arch"], j["seed"]) for j in doc["jobs"]}
            new = []
            for j in doc["jobs"]:
                s = have.get((j["arch"], j["seed"]))
                if j["source"].startswith("edit") and s and s.accuracy >= doc["top_decile_threshold"]:
                    if (j["arch"], 1) not in planned:
                        new.append(
                            {"arch": j["arch"], "seed": 1, "source": "second_seed_new", "parent": j["parent"]}
                        )
            if new and (args.limit is None or trained < args.limit) and not todo():
                doc["jobs"] += new
                plan_file.write_text(json.dumps(doc, indent=0) + "\n")
                print(f"planned {len(new)} second seeds of new top-decile architectures")
    export()
    evaluator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
