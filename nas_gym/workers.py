"""Where a child trains when several envs run at once: one GPU per worker, cores shared out.

Gymnasium's ``AsyncVectorEnv`` (``gym.make_vec(..., vectorization_mode="async")``) starts one
process per env and names it ``Worker<AsyncVectorEnv>-{index}``. An env made in such a process
with ``device=None`` takes GPU ``index % device_count`` (round-robin), and with ``threads=None``
takes its share of the CPU cores for torch (cores // number of workers) instead of every core
each. Outside a vector worker nothing is changed. A :class:`nas_gym.parallel.LocalPool` places its
workers the same way, by their index in the pool. Standard library only at import time.
"""

from __future__ import annotations

import multiprocessing
import os
import re

__all__ = [
    "cpu_share",
    "default_threads",
    "end_with_parent",
    "round_robin_device",
    "sibling_workers",
    "worker_index",
]

_PARENT_POLL = 0.5  # seconds between two looks at whether this worker's parent is still alive

_WORKER_NAME = re.compile(r"^Worker<\w+>-(\d+)$")


def end_with_parent() -> None:
    """End this worker process (at once, mid-training or not) when the process that started it
    ends, however it ends (kill -9 included): a daemon thread watches the parent's pid. For the
    child trainer's worker and the pools' workers, so no child trains on for nobody."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(_PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="nas-gym-end-with-parent", daemon=True).start()


def worker_index() -> int | None:
    """This process's index in a Gymnasium async vector env, or None outside one."""
    match = _WORKER_NAME.match(multiprocessing.current_process().name)
    return int(match.group(1)) if match else None


def _command_line(pid: int | str) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        # spawned workers differ only in the numbers of their pipe handles: compare without digits
        return re.sub(rb"\d+", b"#", f.read()).decode(errors="replace")


def sibling_workers() -> int:
    """How many processes our parent started with our command line (ourselves included).

    The workers of one vector env are such siblings whether they were forked or spawned; a
    resource tracker or any other helper has another command line. 1 where ``/proc`` is missing.
    """
    try:
        parent, mine = os.getppid(), _command_line(os.getpid())
        count = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == parent and _command_line(entry.name) == mine:
                    count += 1
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
        return max(count, 1)
    except OSError:
        return 1


def cpu_share(workers: int | None = None) -> int:
    """torch threads for one of ``workers`` processes sharing this machine's cores (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, workers if workers is not None else sibling_workers()))


def default_threads(workers: int | None = None) -> int:
    """The torch threads of a child whose configuration sets none: its share of the cores in one
    of ``workers`` processes or in a vector env's worker, else torch's own count. The only place
    the count is decided (it is part of a CPU store key)."""
    if workers is not None or worker_index() is not None:
        return cpu_share(workers)
    import torch

    return int(torch.get_num_threads())


def round_robin_device(index: int | None) -> str | None:
    """``cuda:{index % GPUs}`` for a vector worker on a machine with several GPUs, else None."""
    if index is None:
        return None
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{index % count}" if count > 1 else None
