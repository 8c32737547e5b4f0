"""Nothing paid twice under any fault: one search per folder, a folder that moves, a failed write,
settings checked before anything is written, and worker processes that end with their parent."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import TINY_CHILD
from test_cli import one_error_line, process_env, run_cli

from agents.search import Search

SMALL = dict(TINY_CHILD, threads=1)
ENV_ID = "NASFashionMini-v0"


def _ledger(folder: Path) -> list[tuple]:
    with sqlite3.connect(folder / "results.sqlite") as conn:
        return conn.execute("SELECT arch, budget, seed FROM trainings").fetchall()


def test_a_second_search_on_a_folder_in_use_is_refused_by_name(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = Search("NASTabular-v0", "random", seed=1, budget=8, out=out).start()
    with pytest.raises(ValueError, match=f"{out} is in use by another search \\(process {os.getpid()}\\)"):
        Search("NASTabular-v0", "random", seed=1, budget=8, out=out).start()
    first.run()  # the lock goes when the search ends
    again = Search("NASTabular-v0", "random", seed=1, budget=8, out=out).start()
    assert again.run().evaluator.trainings == 0
    assert len(_ledger(out)) == 8


def test_a_killed_search_never_blocks_its_own_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    script = (
        "import sys, time; from pathlib import Path; from agents.search import Search\n"
        "running = Search('NASTabular-v0', 'random', seed=2, budget=8, out=Path(sys.argv[1])).start()\n"
        "print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True, env=process_env()
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    with pytest.raises(ValueError, match="in use by another search"):
        Search("NASTabular-v0", "random", seed=2, budget=8, out=out).start()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (
        Search("NASTabular-v0", "random", seed=2, budget=8, out=out).start().run().summary["trainings"] == 8
    )


def test_two_cli_searches_on_one_folder_the_second_is_refused(tmp_path: Path) -> None:
    args = ["search", "--env", "NASTabular-v0", "--agent", "random", "--budget", "8", "--out", "run"]
    from test_cli import start_cli

    first = start_cli([*args[:6], "400", *args[7:]], tmp_path)  # long enough to be running
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if first.poll() is not None:
        pytest.skip("the first search ended before the second started")  # a very fast machine
    second = run_cli([*args[:6], "400", *args[7:]], tmp_path)
    first.wait(timeout=120)
    assert second.returncode != 0
    assert "is in use by another search" in one_error_line(second.stderr)


def test_a_moved_folder_keeps_its_pending_trainings(tmp_path: Path) -> None:
    """Children trained for a search but not yet reached by a step (a pooled batch cut short by a
    kill) count after the folder is moved: the run's id lives in run.json, not in its path."""
    first = tmp_path / "a"
    Search(ENV_ID, "random", seed=4, budget=8, out=first, overrides=SMALL).start().run()
    rows = (first / "history.jsonl").read_text().splitlines()
    (first / "history.jsonl").write_text("\n".join(rows[:2]) + "\n")  # killed before the steps were written
    moved = tmp_path / "elsewhere" / "b"
    moved.parent.mkdir()
    shutil.move(first, moved)
    outcome = Search(ENV_ID, "random", seed=4, budget=8, out=moved, overrides=SMALL).start().run()
    ledger = _ledger(moved)
    assert len(ledger) == len(set(ledger)) == 8 and outcome.summary["trainings"] == 8
    assert outcome.summary["budget_left"] == 0 and outcome.evaluator.trainings == 0


def test_a_folder_of_an_earlier_version_keeps_its_ledger_tag(tmp_path: Path) -> None:
    """A run.json without a run id (written before ids existed) keeps the tag it had, the folder's
    absolute path, so its ledger lines still count when it is resumed where it lies."""
    out = tmp_path / "old"
    Search(ENV_ID, "random", seed=5, budget=4, out=out, overrides=SMALL).start().run()
    spec = json.loads((out / "run.json").read_text())
    with sqlite3.connect(out / "results.sqlite") as conn:
        conn.execute("UPDATE trainings SET tag=?", (str(out.resolve()),))
    del spec["run_id"]
    (out / "run.json").write_text(json.dumps(spec))
    outcome = Search(ENV_ID, "random", seed=5, budget=4, out=out, overrides=SMALL).start().run()
    assert outcome.evaluator.trainings == 0 and outcome.summary["trainings"] == 4
    assert json.loads((out / "run.json").read_text())["run_id"] == str(out.resolve())


@pytest.mark.parametrize("target", ["run.json", "summary.json", "history.jsonl", "best_accuracy.png"])
def test_a_failed_write_is_one_line_naming_the_file_and_the_search_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """A full disk: the message names the file and the cause, the store stays whole, and once
    there is space the same command resumes to the end without paying anything twice."""
    import builtins

    out = tmp_path / "run"
    real_open, real_write = builtins.open, Path.write_text

    def full(path) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if str(file).endswith(target) and ("a" in mode or "w" in mode):
            raise full(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_write(self, *args, **kwargs):
        if self.name.startswith(target):
            raise full(self)
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(Path, "write_text", fake_write)
    if target == "best_accuracy.png":
        import matplotlib.figure

        monkeypatch.setattr(
            matplotlib.figure.Figure, "savefig", lambda self, p, **k: (_ for _ in ()).throw(full(p))
        )
    search = Search("NASTabular-v0", "random", seed=3, budget=6, out=out)
    with pytest.raises(ValueError) as failure:
        search.start().run()
    message = str(failure.value)
    assert "\n" not in message and f"cannot write {out / target}" in message and "No space left" in message
    assert not list(out.glob("*.tmp"))  # nothing half-written left behind
    monkeypatch.undo()
    outcome = Search("NASTabular-v0", "random", seed=3, budget=6, out=out).start().run()
    ledger = _ledger(out)
    assert len(ledger) == len(set(ledger)) == 6 == outcome.summary["trainings"]


def test_a_failed_commit_is_reported_as_itself(tmp_path: Path) -> None:
    """A COMMIT that fails rolls back by itself; the error says why, not 'no transaction is active'."""
    from nas_gym.store import KeyedStore, ResultStore, StoreError

    store = ResultStore(tmp_path / "s.sqlite")
    conn = store._connect()
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON trainings BEGIN SELECT RAISE(ABORT, 'disk is full'); END"
    )
    with pytest.raises(StoreError, match="disk is full") as failure:
        KeyedStore(store, "d", "k").record("C32k3", 0, 0.5, 1, 0.1, "ok", tag="t", device="cpu")
    assert "no transaction" not in str(failure.value) and len(store) == 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["--budget-seconds", "inf"], "--budget-seconds must be a positive number"),
        (["--budget-seconds", "nan"], "--budget-seconds must be a positive number"),
    ],
)
def test_settings_are_checked_before_anything_is_written(tmp_path: Path, args: list[str], words: str) -> None:
    result = run_cli(
        ["search", "--env", "NASTabular-v0", "--agent", "random", "--out", "run", *args], tmp_path
    )
    assert result.returncode != 0 and words in one_error_line(result.stderr)
    assert not (tmp_path / "run").exists()


def test_an_empty_out_is_refused(tmp_path: Path) -> None:
    result = run_cli(["search", "--env", "NASTabular-v0", "--out", ""], tmp_path)
    assert result.returncode != 0 and "empty folder name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_run_json_is_written_beside_a_corrupt_store(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ValueError, match="results.sqlite"):
        Search("NASTabular-v0", "random", seed=0, budget=4, out=out).start()
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"]


def test_an_env_refuses_what_it_cannot_do_when_made() -> None:
    with pytest.raises(ValueError, match="max_layers must be an int in 1..15"):
        gym.make("NASSurrogate-v1", max_layers=16)
    with pytest.raises(ValueError, match="is not a device torch knows"):
        gym.make(ENV_ID, device="tpu", **TINY_CHILD)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            gym.make(ENV_ID, device="cuda", **TINY_CHILD)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"  # a zombie has ended


def test_a_child_worker_ends_with_the_search_that_started_it(tmp_path: Path) -> None:
    """kill -9 of a search mid-training: its child trainer process ends within seconds."""
    script = (
        "import os, sys\n"
        "from nas_gym.evaluation import Evaluator\n"
        "ev = Evaluator(dataset='fashion_mini', train_size=8000, val_size=2000, image_size=14, epochs=50.0,\n"
        "               batch_size=64, width=0.25, device='cpu', threads=1, download=False)\n"
        "runner = ev._runner_for_children()\n"
        "import threading\n"
        "threading.Thread(target=lambda: ev.evaluate('C32k3-C32k3-C32k3', 0), daemon=True).start()\n"
        "import time\n"
        "while runner._proc is None: time.sleep(0.01)\n"
        "print(runner._proc.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=process_env()
    )
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    time.sleep(1.0)
    assert _alive(child)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the child trainer outlived its search"
