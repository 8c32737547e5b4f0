"""A search run folder: what ``nas-gym search`` writes, and what it resumes from.

DIR/run.json        env id, env kwargs, agent, seed (checked on resume); the run's id
DIR/.lock           held (an OS lock) while a search runs in the folder
DIR/history.jsonl   one row per step (agents.common.history.HistoryRow)
DIR/results.sqlite  the result store: every trained child
DIR/summary.json    best_arch, best_accuracy, trainings, agent, env, seed, budget
DIR/tree.json, DIR/tree.dot   the replay tree of the run
DIR/best_accuracy.png         best accuracy against trainings
DIR/tb/             TensorBoard scalars
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from agents.common.history import History, HistoryRow
from agents.common.replay_tree import ReplayTree
from nas_gym.search_space import Architecture

FINAL_EPOCHS_FACTOR = (
    3.0  # ``nas-gym evaluate --run``: the final training is this much longer than a search's
)

__all__ = [
    "FINAL_EPOCHS_FACTOR",
    "RunSpec",
    "best_of_run",
    "layer_table",
    "tree_from_history",
    "write_outputs",
]


class RunError(ValueError):
    """A run folder that cannot be used for this command."""


def write_file(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file, then a rename); a failure (a full
    disk, no permission, a read-only folder) is a :class:`RunError` naming the file and the cause,
    with nothing half-written left behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise RunError(f"cannot write {path}: {e.strerror or e}") from None


class RunLock:
    """One live search per run folder: an exclusive OS lock on ``DIR/.lock``, which the OS drops
    when the process ends however it ends (a killed search never blocks its own resume)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self._file: Any = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no POSIX locks here (Windows): one search per folder is the user's care
            return self
        try:
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while the search runs
        except OSError as e:
            raise RunError(f"cannot write {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise RunError(
                f"{self.path.parent} is in use by another search ({holder}): wait for it to end, or use another --out folder"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()}")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # the OS lock goes with it
            self._file = None


@dataclass(frozen=True)
class RunSpec:
    env: str
    agent: str
    seed: int
    env_kwargs: dict[str, Any]
    budget: int | None = None  # trainings; None in run folders of earlier versions, or seconds only
    budget_seconds: float | None = None  # train seconds; None: no budget of seconds
    # the search's id in the store's ledger (its tag); None in folders of earlier versions, whose
    # tag was the folder's absolute path (kept as their id when they are resumed)
    run_id: str | None = None

    def save(self, folder: Path) -> None:
        write_file(folder / "run.json", json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> RunSpec | None:
        path = folder / "run.json"
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise RunError(f"{path} is not a run description ({e})") from e

    def check_same_search(self, other: RunSpec, folder: Path) -> None:
        """A folder may only be resumed by the same search, budget included: agents schedule on
        the budget (REINFORCE's curriculum, DQN's exploration), so another budget is another search."""
        for name in ("env", "agent", "seed", "env_kwargs"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise RunError(
                    f"{folder} holds a search with {name}={theirs!r}, not {mine!r}; use another --out folder"
                )
        if other.budget_seconds != self.budget_seconds:
            raise RunError(
                f"{folder} holds a search with --budget-seconds {other.budget_seconds}, not "
                f"{self.budget_seconds}; resume it with the same budget, or use another --out folder"
            )
        if other.budget is not None and self.budget != other.budget:
            raise RunError(
                f"{folder} holds a search with --budget {other.budget}, not {self.budget}: resume it with "
                f"--budget {other.budget}, or start a search with --budget {self.budget} in another --out folder"
            )


def tree_from_history(history: History) -> ReplayTree:
    """Every architecture a run scored, once per step (a HEAD step repeats its architecture)."""
    tree = ReplayTree()
    previous: HistoryRow | None = None
    for row in history:
        repeat = previous is not None and previous.episode == row.episode and previous.arch == row.arch
        if row.arch and not repeat:
            tree.insert(row.arch, row.accuracy)
        previous = row
    return tree


def layer_table(arch: str, accuracy: float | None = None) -> Table:
    """The best architecture as the poster shows it: Layer / Type / Setting."""
    parsed = Architecture.parse(arch)
    title = "Best architecture" + (f" ({accuracy:.2%} validation accuracy)" if accuracy is not None else "")
    table = Table(title=title)
    for column in ("Layer", "Type", "Setting"):
        table.add_column(column)
    for i, layer in enumerate(parsed, start=1):
        table.add_row(str(i), *layer.describe())
    table.add_row(str(len(parsed) + 1), "Linear+Softmax", "-")
    return table


def write_outputs(
    folder: Path,
    spec: RunSpec,
    history: History,
    tree: ReplayTree,
    budget: int | None,
    spent: int | None = None,
    budget_seconds: float | None = None,
    wall_seconds: float | None = None,
) -> dict[str, Any]:
    """summary.json, tree.json, tree.dot and the PNG; returns the summary. ``spent``: the
    trainings the store's ledger holds for the search (default: those the history records).
    ``budget_left``: trainings left (None under a budget of seconds alone)."""
    best = history.best()
    trainings = history.trainings if spent is None else spent
    seconds = history.rows[-1].seconds if history.rows else 0.0
    summary = {
        "best_arch": best.arch if best else None,
        "best_accuracy": best.accuracy if best else None,
        "trainings": trainings,
        "budget_left": None if budget is None else budget - trainings,
        "budget": budget,
        "train_seconds": round(seconds, 3),
        "budget_seconds": budget_seconds,
        **{
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in history.budget_use().items()
            if k != "trainings"
        },
        "steps": len(history),
        # the wall-clock seconds of the invocation that finished the search (a resumed search's
        # earlier invocations are not in it)
        "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1),
        "agent": spec.agent,
        "env": spec.env,
        "seed": spec.seed,
    }
    write_file(folder / "summary.json", json.dumps(summary, indent=2))
    write_file(folder / "tree.dot", tree.to_dot())
    for name, write in (("tree.json", tree.save), ("best_accuracy.png", lambda p: _plot(p, history, spec))):
        try:
            write(folder / name)
        except OSError as e:
            raise RunError(f"cannot write {folder / name}: {e.strerror or e}") from None
    return summary


def _plot(path: Path, history: History, spec: RunSpec) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = history.best_so_far()
    fig, ax = plt.subplots(figsize=(6, 4))
    if points:
        xs, ys = zip(*points, strict=True)
        ax.step(xs, [100 * y for y in ys], where="post")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trainings are whole
    ax.set_xlabel("child trainings")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.set_title(f"{spec.agent} on {spec.env} (seed {spec.seed})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def best_of_run(folder: Path) -> tuple[str, str, int]:
    """(best architecture, env id, seed) of a finished run folder."""
    path = Path(folder) / "summary.json"
    if not path.exists():
        raise RunError(f"{folder} has no summary.json: not a finished search folder")
    summary = json.loads(path.read_text())
    if not summary.get("best_arch"):
        raise RunError(f"{path} names no best architecture")
    return summary["best_arch"], summary["env"], int(summary["seed"])
