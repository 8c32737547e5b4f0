"""Samples of the full search space trained for real: the data a surrogate benchmark is fitted to.

The 24-action, 15-layer space cannot be tabulated, so, as NAS-Bench-301 did for the DARTS space,
architectures are sampled across it and trained from scratch at an env's configuration through the normal
evaluator and result store (resumable), and exported to a compact file:

- random architectures with their *depth* drawn uniformly from 1..15 (a uniform random policy
  would mostly stop early: HEAD is one action of 24), each layer uniform among those that fit;
- every ``second_seed_every``-th of them also with a second seed: the noise between seeds;
- the trajectories of real searches, by exporting their run folders' stores (same key) too.

Imports no torch at import time.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.config import ChildConfig
from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture, Vocabulary
from nas_gym.store import ResultStore

__all__ = ["FORMAT", "Sample", "SampleSet", "build_samples", "sample_architectures"]

FORMAT = "nas-gym-samples/1"
# the same with an eighth column, ``curve`` ([[epoch, accuracy, seconds], ...] or []): written when
# any sample has a curve, so files without curves stay byte for byte as they were
FORMAT_CURVES = "nas-gym-samples/2"
_COLUMNS = ["arch", "seed", "accuracy", "train_seconds", "num_params", "status", "source"]


def sample_architectures(
    n: int, rng: np.random.Generator, image_size: int, vocabulary: Vocabulary = DEFAULT_VOCABULARY
) -> list[Architecture]:
    """``n`` architectures: depth uniform in 1..max_layers, then each layer uniform among the
    layers that keep the feature map at least 1x1 (the env's mask without HEAD)."""
    out = []
    layer_actions = np.arange(vocabulary.num_actions) != vocabulary.head_action
    for _ in range(n):
        depth = int(rng.integers(1, vocabulary.max_layers + 1))
        arch = Architecture()
        for _ in range(depth):
            allowed = np.flatnonzero(vocabulary.action_mask(arch, image_size) & layer_actions)
            if len(allowed) == 0:
                break
            arch = arch.append(vocabulary.layer_of(int(rng.choice(allowed))))
        out.append(arch)
    return out


@dataclass(frozen=True)
class Sample:
    arch: str
    seed: int
    accuracy: float
    train_seconds: float
    num_params: int
    status: str
    # "random" (one of the sampled architectures), the run folder a search trajectory came from, or
    # "store": another training in the samples' store (benchmarks/surrogate_check.py trains the
    # searches' picks there)
    source: str
    # the validation curve of the training: (epoch, accuracy, seconds so far) after every whole
    # epoch and at the end; () where it was not recorded
    curve: tuple[tuple[float, float, float], ...] = ()

    @classmethod
    def from_row(cls, row: Any, source: str) -> Sample:
        """A store row (:class:`~nas_gym.store.StoredResult`) as a sample."""
        return cls(row.arch, row.seed, row.accuracy, row.train_seconds, row.num_params, row.status, source,
                   tuple(row.curve_points()))  # fmt: skip


@dataclass
class SampleSet:
    """Trained samples of one env at one training configuration (``config``; ``"budget"`` in the file)."""

    env_id: str
    dataset: str
    config: dict[str, Any]
    image_size: int
    samples: list[Sample]
    build: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> None:
        curves = any(s.curve for s in self.samples)
        head = {
            "format": FORMAT_CURVES if curves else FORMAT,
            "env_id": self.env_id,
            "dataset": self.dataset,
            "budget": self.config,  # the field keeps its first name: files written before read unchanged
            "image_size": self.image_size,
            "build": self.build,
            "columns": _COLUMNS + ["curve"] if curves else _COLUMNS,
        }
        lines = [json.dumps(head, separators=(",", ":"))[:-1] + ',"rows":[']
        rows = [
            json.dumps([s.arch, s.seed, round(s.accuracy, 5), round(s.train_seconds, 3), s.num_params,
                        s.status, s.source] + ([_curve_json(s.curve)] if curves else []), separators=(",", ":"))
            for s in self.samples
        ]  # fmt: skip
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n" + ",\n".join(rows) + "\n]}\n", encoding="utf-8")
        os.replace(tmp, p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SampleSet:
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"samples file {p} cannot be read: {e}") from None
        if doc.get("format") not in (FORMAT, FORMAT_CURVES):
            raise ValueError(f"{p} is not a nas-gym samples file ({FORMAT} or {FORMAT_CURVES})")
        samples = [
            Sample(r[0], int(r[1]), float(r[2]), float(r[3]), int(r[4]), r[5], r[6],
                   tuple((float(e), float(a), float(t)) for e, a, t in (r[7] if len(r) > 7 else ())))
            for r in doc["rows"]
        ]  # fmt: skip
        return cls(
            doc["env_id"],
            doc["dataset"],
            doc["budget"],
            int(doc["image_size"]),
            samples,
            doc.get("build", {}),
        )

    @classmethod
    def from_table(cls, table: Any) -> SampleSet:
        """The rows of a :class:`~nas_gym.tabular.Table` as samples (source ``"table"``)."""
        samples = [
            Sample(e.arch, seed, e.accuracy[i], e.train_seconds[i], e.num_params, e.status[i], "table")
            for e in table
            for i, seed in enumerate(table.seeds)
        ]
        return cls(
            table.env_id, table.dataset, dict(table.config), table.image_size, samples, dict(table.build)
        )

    def merged(self, other: SampleSet) -> SampleSet:
        """Both sets' samples; they must share the env's data and training configuration."""
        if (self.dataset, self.config, self.image_size) != (other.dataset, other.config, other.image_size):
            raise ValueError("samples of different data or training configurations cannot be merged")
        return SampleSet(self.env_id, self.dataset, self.config, self.image_size, self.samples + other.samples,
                         {**self.build, "merged_with": other.build.get("command", "")})  # fmt: skip

    def by_arch(self) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = {}
        for s in self.samples:
            out.setdefault(s.arch, []).append(s)
        return out


def build_samples(
    config: ChildConfig,
    env_id: str,
    n: int,
    out: str | os.PathLike[str],
    store: str | os.PathLike[str],
    seed: int = 0,
    second_seed_every: int = 8,
    runs: Sequence[str | os.PathLike[str]] = (),
    workers: int = 1,
    threads: int | None = None,
    command: str = "",
    on_result: Callable[[int, int, str, int, float], None] | None = None,
) -> SampleSet:
    """Train ``n`` sampled architectures (seed 0; every ``second_seed_every``-th also seed 1)
    into ``store`` in sample order, then write every row of ``store`` and of the runs' stores
    (``RUN/results.sqlite``, search trajectories) that has this training configuration to ``out``.
    Stopping and running again resumes; ``n`` may grow between invocations (same ``seed``: the
    first architectures stay the same)."""
    from nas_gym.evaluation import Evaluator
    from nas_gym.parallel import train_jobs

    if n < 0 or second_seed_every < 1:
        raise ValueError("n must be >= 0 and second_seed_every >= 1")
    from nas_gym.workers import default_threads

    threads = threads or config.threads or default_threads(workers)
    config = config.replace(threads=threads)
    evaluator = Evaluator(config, store=str(store))
    image_size = int(evaluator.image_size)  # type: ignore[arg-type]
    archs = sample_architectures(n, np.random.default_rng(seed), image_size)
    jobs = _sample_jobs(archs, second_seed_every)
    started = time.time()
    trained = train_jobs(
        config, store, jobs, workers, threads, tag="random", on_result=on_result, longest_first=False
    )
    key = evaluator.config_key
    samples, stamps = _stored_samples(store, runs, evaluator.dataset, key, set(jobs))
    build = _build_record(
        command, n, seed, second_seed_every, started, trained, samples, stamps, workers, threads
    )
    result = SampleSet(env_id, evaluator.dataset, json.loads(key), image_size, samples, build)
    result.save(out)
    return result


def _sample_jobs(archs: Sequence[Architecture], second_seed_every: int) -> list[tuple[str, int]]:
    """The samples' (architecture, seed) trainings: seed 0, every ``second_seed_every``-th also seed 1."""
    jobs: list[tuple[str, int]] = []
    for i, arch in enumerate(archs):
        jobs.append((str(arch), 0))
        if i % second_seed_every == 0:
            jobs.append((str(arch), 1))
    return jobs


def _stored_samples(
    store: str | os.PathLike[str],
    runs: Sequence[str | os.PathLike[str]],
    dataset: str,
    key: str,
    sampled: set[tuple[str, int]],
) -> tuple[list[Sample], list[float]]:
    """The rows of ``store`` and of the runs' stores under ``key`` as samples, and when each was trained."""
    rows = list(ResultStore(store).rows(dataset, key))
    samples = [Sample.from_row(r, "random" if (r.arch, r.seed) in sampled else "store") for r in rows]
    stamps = [r.created_at for r in rows]
    for run in runs:
        rows = list(ResultStore(Path(run) / "results.sqlite").rows(dataset, key))
        samples += [Sample.from_row(r, str(run)) for r in rows]
        stamps += [r.created_at for r in rows]
    return samples, stamps


def _build_record(
    command: str,
    n: int,
    seed: int,
    second_seed_every: int,
    started: float,
    trained: int,
    samples: list[Sample],
    stamps: list[float],
    workers: int,
    threads: int,
) -> dict[str, Any]:
    """How the samples were built: command, sampling, seconds, trainings and the machine."""
    import torch

    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "sampled": n,
        "sample_seed": seed,
        "second_seed_every": second_seed_every,
        "wall_seconds_last_invocation": round(time.time() - started, 1),
        "trained_in_last_invocation": trained,
        "train_seconds_total": round(sum(s.train_seconds for s in samples), 1),
        # when the first and the last of these rows were trained (UTC): the build's wall-clock span
        "first_trained": _utc(min(stamps)) if stamps else None,
        "last_trained": _utc(max(stamps)) if stamps else None,
        "workers": workers,
        "torch_threads_per_worker": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_name()}",
    }


def _curve_json(curve: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[float(e), round(float(a), 5), round(float(t), 3)] for e, a, t in curve]


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
