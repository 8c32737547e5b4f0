"""Fault injection: many small real searches, each hit by random faults, then resumed to the end.

    python benchmarks/faults.py --faults 100 [--seed 0] [--ray]      (CI runs --faults 4)

Every trial is a ``nas-gym search`` on ``NASFashionMini-v0`` at a tiny configuration (children of
at most 2 layers, half an epoch on 2,000 images: a few tenths of a second each), by a random
agent, in one process, with a pool of 2 workers, or with a pool and prefix inheritance (``--ray``
adds Ray pools). Before the search is let finish, 1 to 3 faults are drawn and applied:

- ``kill9``: SIGKILL at a random moment; ``sigint``: Ctrl-C at a random moment;
- ``second``: a second search started on the same folder while the first runs (it must be refused);
- ``move``: the folder moved elsewhere after a kill, and resumed there.

Then the search is run again until it ends, and the folder is counted: ledger lines (trainings
paid), distinct (architecture, key, seed) among them, store rows, the summary's trainings and
the budget. A trial passes when nothing was paid twice (lines == distinct), nothing is lost (every
line has its row), the search spent exactly its budget and the summary says so. The table of
every trial is printed; the exit status is 1 when any trial failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["max_layers=2", "epochs=0.5", "train_size=2000", "val_size=500", "threads=1"]
FAULTS = ("kill9", "sigint", "second", "move")


def _command(out: Path, budget: int, seed: int, mode: str) -> list[str]:
    cmd = [sys.executable, "-m", "agents.cli", "search", "--env", "NASFashionMini-v0", "--agent", "random"]
    cmd += ["--budget", str(budget), "--seed", str(seed), "--out", str(out)]
    for setting in TINY:
        cmd += ["--set", setting]
    if mode in ("pool", "inherit"):
        cmd += ["--workers", "2"]
    if mode == "inherit":
        cmd += ["--set", "inherit=true"]
    if mode == "ray":
        cmd += ["--backend", "ray", "--workers", "2"]
    return cmd


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _trained(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM trainings").fetchone()[0])
    except sqlite3.Error:
        return 0


def _interrupt(proc: subprocess.Popen, out: Path, sig: int, rng: random.Random, budget: int) -> str:
    """Send ``sig`` once the search has trained a random share of its budget (or it ended)."""
    target = rng.randint(1, budget - 1)
    deadline = time.monotonic() + 120
    while proc.poll() is None and _trained(out) < target and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is not None:
        return "ended first"
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return f"after {_trained(out)} trainings"


def _count(out: Path) -> dict[str, int]:
    with sqlite3.connect(out / "results.sqlite") as conn:
        lines = conn.execute("SELECT arch, budget, seed FROM trainings").fetchall()
        rows = {tuple(r) for r in conn.execute("SELECT arch, budget, seed FROM results")}
    summary = json.loads((out / "summary.json").read_text())
    return {
        "lines": len(lines),
        "distinct": len(set(lines)),
        "lost": sum(1 for key in set(lines) if tuple(key) not in rows),
        "rows": len(rows),
        "summary": int(summary["trainings"]),
    }


def trial(index: int, rng: random.Random, folder: Path, modes: list[str]) -> dict:
    mode = rng.choice(modes)
    budget, seed = rng.randint(6, 12), rng.randint(0, 10_000)
    out = folder / f"t{index}"
    faults, notes = [rng.choice(FAULTS) for _ in range(rng.randint(1, 3))], []
    for fault in faults:
        proc = _start(_command(out, budget, seed, mode))
        if fault in ("kill9", "sigint", "move"):
            notes.append(
                _interrupt(proc, out, signal.SIGKILL if fault != "sigint" else signal.SIGINT, rng, budget)
            )
            if fault == "move" and out.exists():  # resumed from another place
                moved = folder / f"t{index}-moved{len(notes)}"
                shutil.move(out, moved)
                out = moved
        else:  # a second search on the folder while this one runs
            deadline = time.monotonic() + 60
            while not (out / "run.json").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            second = subprocess.run(
                _command(out, budget, seed, mode), env=_env(), capture_output=True, text=True
            )
            refused = second.returncode != 0 and "in use by another search" in second.stderr
            notes.append(
                "refused" if refused else ("ran after" if proc.poll() is not None else "NOT REFUSED")
            )
            proc.wait(timeout=300)
    final = subprocess.run(_command(out, budget, seed, mode), env=_env(), capture_output=True, text=True)
    counts = _count(out) if final.returncode == 0 else {}
    ok = (
        final.returncode == 0
        and counts["lines"] == counts["distinct"] == counts["summary"] == budget
        and counts["lost"] == 0
        and "NOT REFUSED" not in notes
    )
    return {"trial": index, "mode": mode, "budget": budget, "faults": faults, "notes": notes, **counts,
            "ok": ok, "error": "" if final.returncode == 0 else final.stderr.strip()[-300:]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--faults", type=int, default=100, help="faults to inject in all (trials are drawn until then)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ray", action="store_true", help="also Ray pools (needs the ray extra)")
    p.add_argument("--keep", type=Path, default=None, help="keep the trial folders here")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    modes = ["one", "pool", "inherit"] + (["ray"] if args.ray else [])
    results, injected, started = [], 0, time.time()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        while injected < args.faults:
            r = trial(len(results), rng, folder, modes)
            injected += len(r["faults"])
            results.append(r)
            print(json.dumps(r), flush=True)
    by_fault = {f: sum(r["faults"].count(f) for r in results) for f in FAULTS}
    by_mode = {m: sum(r["mode"] == m for r in results) for m in modes}
    failed = [r for r in results if not r["ok"]]
    print(
        f"\n{len(results)} searches, {injected} faults {by_fault}, modes {by_mode}, {time.time() - started:.0f} s"
    )
    print(f"paid twice: {sum(r.get('lines', 0) - r.get('distinct', 0) for r in results)}, "
          f"lost: {sum(r.get('lost', 0) for r in results)}, "
          f"over budget: {sum(r.get('lines', 0) > r['budget'] for r in results)}, "
          f"under budget: {sum(0 < r.get('lines', 0) < r['budget'] for r in results)}, "
          f"failed trials: {len(failed)}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
