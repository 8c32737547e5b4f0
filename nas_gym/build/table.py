"""Building a table (:mod:`nas_gym.tabular`): every architecture of a space trained for real.

Imports no torch at import time; the workers that train import it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from nas_gym.config import ChildConfig
from nas_gym.store import StoredResult
from nas_gym.tabular import Space, Table, TableEntry, TableError

if TYPE_CHECKING:
    from nas_gym.evaluation import Evaluator

__all__ = ["build_table"]


def build_table(
    config: ChildConfig,
    space: Space,
    seeds: Sequence[int],
    out: str | os.PathLike[str],
    store: str | os.PathLike[str],
    env_id: str,
    workers: int = 1,
    threads: int | None = None,
    command: str = "",
    on_result: Callable[[int, int, str, int, float], None] | None = None,
) -> Table:
    """Train every (architecture, seed) of ``space`` missing from ``store``, then write the table.

    ``workers`` processes (spawned) train at once, each with ``threads`` torch threads (default:
    the cores shared out). ``on_result(done, total, arch, seed, accuracy)`` reports progress.
    Stopping and running again resumes: what is in the store is not trained again.
    """
    from nas_gym.evaluation import Evaluator
    from nas_gym.parallel import train_jobs

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    from nas_gym.workers import default_threads

    threads = threads or config.threads or default_threads(workers)
    # the thread count is in the store key on the CPU: the workers' count, here too
    config = config.replace(threads=threads)
    evaluator = Evaluator(config, store=str(store))  # opens the store; loads no data
    image_size = int(evaluator.image_size)  # type: ignore[arg-type]
    archs = space.architectures(image_size)
    jobs = [(str(a), s) for s in seeds for a in archs]
    started = time.time()
    trained = train_jobs(config, store, jobs, workers, threads, on_result=on_result)
    entries = _table_entries(evaluator, jobs, store)
    table = Table(
        env_id=env_id,
        dataset=evaluator.dataset,
        config=json.loads(evaluator.config_key),
        image_size=image_size,
        space=space,
        seeds=seeds,
        entries=entries,
        build=_build_record(command, started, trained, entries, workers, threads),
    )
    table.save(out)
    return table


def _table_entries(
    evaluator: Evaluator, jobs: Sequence[tuple[str, int]], store: str | os.PathLike[str]
) -> dict[str, TableEntry]:
    """The table's entries, one per architecture, read back from the store (every seed in order)."""
    rows: dict[str, list[StoredResult]] = {}
    for arch, seed in jobs:
        stored = evaluator.lookup(arch, seed)
        if stored is None:
            raise TableError(f"{arch} (seed {seed}) is missing from {store} after the build")
        rows.setdefault(arch, []).append(stored)
    return {
        arch: TableEntry(
            arch,
            found[0].num_params,
            tuple(r.accuracy for r in found),
            tuple(round(r.train_seconds, 3) for r in found),
            tuple(r.status for r in found),
        )
        for arch, found in rows.items()
    }


def _build_record(
    command: str,
    started: float,
    trained: int,
    entries: dict[str, TableEntry],
    workers: int,
    threads: int,
) -> dict[str, object]:
    """How the table was built: command, date, seconds, trainings and the machine."""
    import torch

    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "wall_seconds_last_invocation": round(time.time() - started, 1),
        "trained_in_last_invocation": trained,
        "train_seconds_total": round(sum(sum(e.train_seconds) for e in entries.values()), 1),
        "workers": workers,
        "torch_threads_per_worker": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
