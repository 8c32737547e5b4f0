"""The benchmark scripts run end to end at tiny budgets (their figures are not checked here)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THROUGHPUT = ROOT / "benchmarks" / "trainer_throughput.py"
ROW = re.compile(r"^(ours \(device-resident\)|dataloader workers=\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _accuracies(stdout: str) -> dict[str, float]:
    return {m[1]: float(m[4]) for line in stdout.splitlines() if (m := ROW.match(line.strip()))}


def test_trainer_throughput_runs() -> None:
    # 1024 images, 0.1 epoch: 2 steps of each loop, well under 30 s even on a loaded 2-core box
    tiny = "--epochs 0.1 --workers 0 --device cpu --train-size 1024 --val-size 512".split()
    out = _run(THROUGHPUT.name, *tiny)
    lines = out.strip().splitlines()
    assert re.fullmatch(r"speedup_vs_dataloader: \d+\.\d\d", lines[-1]), lines[-1]
    accuracies = _accuracies(out)
    assert set(accuracies) == {"ours (device-resident)", "dataloader workers=0"}, out
    assert all(0.0 <= a <= 1.0 for a in accuracies.values())


def test_trainer_throughput_cifar_path_imported(data_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Importable, and the CIFAR-10 path (crop + flip on both sides) runs on the fixture batches."""
    spec = importlib.util.spec_from_file_location("trainer_throughput", THROUGHPUT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    args = "--env NASCifar10-v0 --no-download --device cpu --train-size 256 --val-size 64 --epochs 1"
    speedup = module.main(
        [*args.split(), "--arch", "C32k3-AP2", "--workers", "0", "--data-dir", str(data_root)]
    )
    out = capsys.readouterr().out
    assert speedup > 0
    assert "augment=True" in out and "batch 256, 1 steps" in out
    assert len(_accuracies(out)) == 2
    assert out.strip().splitlines()[-1] == f"speedup_vs_dataloader: {speedup:.2f}"


@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path: Path) -> None:
    """The GPU check's code paths at a tiny budget on the CPU (needs the full Fashion-MNIST locally)."""
    from nas_gym.training.datasets import DatasetError, load_dataset

    try:
        load_dataset("fashion_mnist", download=False)
    except DatasetError:
        pytest.skip("the full Fashion-MNIST is not installed here")
    env = _env() | {"OUT": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = (tmp_path / "gpu_check.txt").read_text()
    assert "final_result: s_per_epoch=" in report
    assert report.count("speedup_vs_dataloader:") >= 4  # two runs + their two summary rows


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_compare_agents_statistics() -> None:
    cmp = _load("compare_agents")
    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 100.0]  # the IQM ignores the outlier
    point, lo, hi = cmp.iqm_ci(x)
    assert point == pytest.approx(0.45) and lo <= point <= hi
    assert cmp.iqm_ci([0.7] * 5) == pytest.approx((0.7, 0.7, 0.7))
    assert cmp.probability_of_improvement([2, 2], [1, 2]) == 0.75
    run = cmp.Run("random", 0, [1, 2, 4], ["a", "b", "c"], [0.5, 0.4, 0.9], 0.1, 9, 3.0, 0.9, 0.8)
    assert run.best_so_far == [0.5, 0.5, 0.9] and run.final_best == 0.9
    assert run.curve(5).tolist() == [0.5, 0.5, 0.5, 0.9, 0.9]  # training 3 was a store hit: carried
    assert run.trainings_to(0.8) == 4 and run.trainings_to(0.95) == float("inf")


def test_compare_agents_reads_agent_settings() -> None:
    cmp = _load("compare_agents")
    assert cmp.parse_agent("reinforce") == ("reinforce", {})
    assert cmp.parse_agent("reinforce:replay_p=0/replay_temperature=null/return_mode=poster") == (
        "reinforce",
        {"replay_p": 0, "replay_temperature": None, "return_mode": "poster"},
    )
    with pytest.raises(ValueError, match="KEY=VALUE"):
        cmp.parse_agent("reinforce:replay_p")


def test_a_v2_comparison_scores_at_9_epochs_and_rank_agents_reads_the_same_values(tmp_path: Path) -> None:
    """On NASSurrogate-v2 the multi-fidelity agents run, each run's pick is scored by the
    noiseless 9-epoch prediction after every training, and rank_agents.py, reading results.csv
    alone, finds the IQMs the summary prints."""
    import csv

    pytest.importorskip("optuna")
    out = tmp_path / "v2"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_agents.py"), "--env", "NASSurrogate-v2",
         "--set", "noise=true", "--agents", "random,hyperband", "--seeds", "2", "--budget-seconds", "150",
         "--workers", "1", "--out", str(out)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    assert "returned architectures scored at 9 epochs" in summary
    import gymnasium as gym

    import nas_gym  # noqa: F401

    nine = gym.make("NASSurrogate-v2").unwrapped.evaluator.fidelities.at(9)
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for agent, seed in {(r["agent"], r["seed"]) for r in rows}:
        mine = [r for r in rows if r["agent"] == agent and r["seed"] == seed]
        best = max(mine, key=lambda r: float(r["accuracy"]))  # the first of the highest
        assert float(mine[-1]["pick_true_value"]) == pytest.approx(nine.predict(best["arch"])[0], abs=1e-6)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rank_agents.py"), str(out)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for agent in ("random", "hyperband"):
        line = next(x for x in summary.splitlines() if x.startswith(f"| `{agent}`"))
        value = line.split(" | ")[3]  # the returned architecture's true value, IQM [CI]
        assert value in proc.stdout, (value, proc.stdout)


def test_compare_agents_writes_its_three_outputs(tmp_path: Path) -> None:
    """Every agent that a table can answer (all but the multi-fidelity ones), 2 seeds, a budget of 8
    on the shipped table: the outputs and their content."""
    import csv

    from agents.registry import AGENTS as REGISTERED

    AGENTS = [name for name, agent in REGISTERED.items() if not agent.fidelity]

    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_agents.py"), "--agents", "all", "--seeds", "2",
         "--budget", "8", "--workers", "2", "--out", str(out)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["agent"], r["seed"]) for r in rows} == {(a, s) for a in AGENTS for s in ("0", "1")}
    for agent in AGENTS:
        for seed in ("0", "1"):
            mine = [r for r in rows if r["agent"] == agent and r["seed"] == seed]
            trainings = [int(r["training"]) for r in mine]
            assert trainings == list(range(1, len(mine) + 1)) and len(mine) <= 8
            best = [float(r["best_so_far"]) for r in mine]
            assert best == sorted(best) and best[-1] == max(float(r["accuracy"]) for r in mine)
    summary = (out / "summary.md").read_text()
    assert all(f"`{a}`" in summary for a in AGENTS)
    assert "Where the poster's agent stands" in summary and "regret to optimum" in summary
    assert "returned architecture's true value" in summary  # the table's mean over its seeds
    assert (out / "best_so_far.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_agents_at_equal_train_seconds(tmp_path: Path) -> None:
    """A budget of seconds on the table: every run stops once its recorded seconds reach it, and
    the summary reports budget use."""
    import csv

    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_agents.py"), "--agents", "random,evolution,local_search",
         "--seeds", "2", "--budget-seconds", "40", "--workers", "2", "--out", str(out)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for agent in ("random", "evolution", "local_search"):
        for seed in ("0", "1"):
            seconds = [float(r["train_seconds"]) for r in rows if r["agent"] == agent and r["seed"] == seed]
            assert seconds == sorted(seconds) and seconds[-1] >= 40 > seconds[-2]
    summary = (out / "summary.md").read_text()
    assert "40 train seconds" in summary and "prefix share of trainings" in summary
    assert "P(X > evolution)" in summary and "complete archs" in summary


def test_tabular_steps_benchmark_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tabular_steps.py"), "--steps", "500"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.fullmatch(r"seconds_for_10000_steps: \d+\.\d{3}", proc.stdout.strip().splitlines()[-1])


def _run(script: str, *args: str, cwd: Path = ROOT) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_isolation_benchmark_trains_the_same_children_both_ways() -> None:
    out = _run("isolation.py", "--children", "3", "--epochs", "0.1", "--threads", "1")
    assert "same accuracies in both modes: yes" in out
    assert re.search(r"^ratio: \d+\.\d{3}$", out, re.M) and re.search(r"^overhead_per_child_s: ", out, re.M)


def test_surrogate_benchmark_ranks_held_out_architectures(tmp_path: Path) -> None:
    from nas_gym.build.samples import SampleSet
    from nas_gym.tabular import load_table

    samples = tmp_path / "samples.json"
    SampleSet.from_table(load_table()).save(samples)  # the shipped table's real trainings
    model = tmp_path / "s.npz"
    out = _run(
        "surrogate.py", "--samples", str(samples), "--epochs", "60", "--members", "1", "--out", str(model)
    )
    tau = float(re.search(r"^kendall_tau: (\S+)$", out, re.M).group(1))
    assert tau > 0.5, out  # each architecture predicted by a model fitted without it
    seed_tau = float(re.search(r"^seed_tau: (\S+)$", out, re.M).group(1))
    mine = float(re.search(r"^surrogate_seed_tau: (\S+)$", out, re.M).group(1))
    assert 0.5 < seed_tau < 1 and 0.3 < mine < 1, out  # every table architecture has two seeds
    assert "583 architectures, 583 with 2 seeds" in out
    assert model.exists()


def test_surrogate_validation_grouped_and_leave_one_searcher_out() -> None:
    """The three hold-outs side by side on the shipped samples: random and grouped predict every
    architecture, leave-one-searcher-out exactly those the searches reached."""
    from nas_gym.build.samples import SampleSet

    shipped = (
        Path(__file__).resolve().parents[1] / "nas_gym" / "data" / "surrogate" / "fashion_mini_samples.json"
    )
    samples = SampleSet.load(shipped)
    ok = {a for a, rows in samples.by_arch().items() if all(r.status == "ok" for r in rows)}
    searched = {s.arch for s in samples.samples if s.source.startswith("runs/") and s.arch in ok}
    out = _run(
        "surrogate.py", "--samples", str(shipped), "--split", "all", "--members", "1", "--epochs", "20"
    )
    assert "| | random split | grouped by run | leave one searcher out |" in out, out
    assert f"| architectures | {len(ok)} | {len(ok)} | {len(searched)} |" in out, out
    taus = re.search(r"^\| kendall tau \| (\S+) \| (\S+) \| (\S+) \|$", out, re.M)
    assert taus is not None and all(0.3 < float(t) < 1 for t in taus.groups()), out
    assert "searcher: 2 fits" in out  # evolution and REINFORCE, each held out whole


def test_surrogate_ceiling_finds_at_least_what_a_search_found(tmp_path: Path) -> None:
    """The ceiling is the best of its climbs, so no search on the same env finds more; and it stays
    inside the surrogate's bound on what the data supports."""
    import gymnasium as gym

    from agents.common.tracked_env import TrackedEnv
    from agents.registry import run_agent
    from nas_gym.surrogate import load_surrogate

    ceiling = _load("surrogate_ceiling").main(
        ["--env", "NASSurrogate-v1", "--starts", "2", "--evolution", "1", "--evolution-budget", "40"]
    )
    env = TrackedEnv(gym.make("NASSurrogate-v1"), 200)
    run_agent("evolution", env, 0)
    assert max(r.accuracy for r in env.history) <= ceiling + 1e-12
    assert ceiling <= load_surrogate("v1").accuracy_bounds[1]


def test_fault_injection_counts_every_search_and_finds_nothing_paid_twice() -> None:
    """The short version of benchmarks/faults.py: a few faults over real pooled searches."""
    import json as _json

    out = _run("faults.py", "--faults", "3", "--seed", "7")
    trials = [_json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert trials and sum(len(t["faults"]) for t in trials) >= 3
    assert all(t["ok"] and t["lines"] == t["distinct"] == t["budget"] and t["lost"] == 0 for t in trials)
    assert re.search(
        r"^paid twice: 0, lost: 0, over budget: 0, under budget: 0, failed trials: 0$", out, re.M
    )


def test_scoring_the_shipped_v2_file_reads_only_the_trainings_added_after_its_fit() -> None:
    """``surrogate_v2.py --score``: the rows v2 was fitted on are found as a first part of each
    export, agreeing with what its file records independently of that rule (its two-seed pairs per
    fidelity); the tables score exactly the other architectures, and fit nothing. An export whose
    order no longer matches is refused, not mis-scored."""
    import json
    import random

    import numpy as np

    from benchmarks.surrogate_v2 import fitted_rows, seen_by
    from nas_gym.build.samples import SampleSet

    v2 = ROOT / "nas_gym" / "data" / "surrogate" / "fashion_mini_surrogate_v2.npz"
    meta = json.loads(bytes(np.load(v2)["meta"]).decode())
    unseen = {}
    for e in (1, 9):
        export = SampleSet.load(ROOT / "benchmarks" / "data" / "fidelity" / f"samples_e{e}.json")
        seen = seen_by(meta, export.samples, float(e), str(v2))
        rows = export.samples[: fitted_rows(meta, export.samples, float(e), str(v2))]
        seeds: dict[str, set[int]] = {}
        for r in rows:
            seeds.setdefault(r.arch, set()).add(r.seed)
        assert sum(len(s) >= 2 for s in seeds.values()) == meta["seed_pairs"][f"acc_e{e}"]
        ok = {a for a, rows in export.by_arch().items() if all(r.status == "ok" for r in rows)}
        unseen[e] = len(ok - seen)
        shuffled = list(export.samples)
        random.Random(0).shuffle(shuffled)
        with pytest.raises(SystemExit, match=f"cannot tell which {e}-epoch rows"):
            seen_by(meta, shuffled, float(e), str(v2))
    out = _run("surrogate_v2.py", "--score", str(v2))
    table = out.split("| epochs | architectures | tau |")[1].split("\n\n")[0]
    for e in (1, 9):
        assert re.search(rf"^\| {e} \| {unseen[e]} \| ", table, re.M), out
    assert not re.search(r"^\| 3 \|", table, re.M), out  # every 3-epoch row was in its fit
    assert "fold " not in out


def test_the_fidelity_build_is_its_plan_with_a_curve_in_every_training() -> None:
    """The committed 1- and 9-epoch trainings: each is a job of the committed plan (same group), at
    the configuration the plan names, trained once, with a curve of one point per epoch whose last
    point is the training's own accuracy and seconds; ``fidelity.py`` counts exactly these rows."""
    import json

    from nas_gym.build.samples import SampleSet

    folder = ROOT / "benchmarks" / "data" / "fidelity"
    plan = json.loads((folder / "jobs.json").read_text())
    source = {(j["arch"], j["seed"], float(j["epochs"])): j["source"] for j in plan["jobs"]}
    counts = {}
    for e in (1, 9):
        export = SampleSet.load(folder / f"samples_e{e}.json")
        assert export.env_id == "NASFashionMini-v0"
        assert export.config["epochs"] == float(e) and export.config["threads"] == 1
        keys = [(s.arch, s.seed) for s in export.samples]
        assert len(keys) == len(set(keys)), "a job trained twice"
        for s in export.samples:
            assert source[(s.arch, s.seed, float(e))] == s.source, s
            if s.status != "ok":
                continue
            assert [p[0] for p in s.curve] == [float(k) for k in range(1, e + 1)], s
            assert s.curve[-1][1] == s.accuracy, s
            assert abs(s.curve[-1][2] - s.train_seconds) < 1e-3, s
            assert all(a[2] < b[2] for a, b in zip(s.curve, s.curve[1:], strict=False)), s
        for g in ("random", "top"):
            counts[e, g] = sum(s.source == g for s in export.samples)
    out = _run("fidelity.py")
    for (e, g), n in counts.items():
        name = "1 epoch" if e == 1 else "9 epochs"
        assert re.search(rf"^\s*{name}\s+{g}: {n} trainings, ", out, re.M), out
    assert "| top 20% at 9 epochs |" in out
    assert re.search(r"^\d+ runs: regret mean ", out, re.M), out


def test_score_real_trains_each_returned_architecture_once_and_reads_the_build_first(tmp_path: Path) -> None:
    """``score_real.py``: the architecture each run returned (its first best observed) is trained
    for real once, at the asked epochs, unless the fidelity build measured it; a second call
    trains nothing; an agent the comparison lacks is refused by name."""
    import csv as csv_module

    from nas_gym.build.samples import SampleSet

    export = SampleSet.load(ROOT / "benchmarks" / "data" / "fidelity" / "samples_e1.json").samples
    built = [s for s in export if s.seed == 0][:2]
    runs = {  # agent -> seed -> (arch, observed accuracy) rows; the best observed is returned
        "a": {0: [("C32k3-C32k3", 0.5), (built[0].arch, 0.9)], 1: [(built[1].arch, 0.8), ("R32-C32k1", 0.8)]},
        "b": {0: [("R32-C32k1", 0.7)], 1: [("C32k1-C32k1", 0.6), ("R32-R32", 0.6)]},
    }
    assert not {"R32-C32k1", "C32k1-C32k1"} & {s.arch for s in export}  # the two to train
    folder = tmp_path / "comparison"
    folder.mkdir()
    with open(folder / "results.csv", "w", newline="") as f:
        w = csv_module.writer(f)
        w.writerow(["agent", "seed", "training", "arch", "accuracy"])
        for agent, by_seed in runs.items():
            for seed, rows in by_seed.items():
                for i, (arch, accuracy) in enumerate(rows):
                    w.writerow([agent, seed, i + 1, arch, accuracy])
    out = _run("score_real.py", str(folder), "--epochs", "1", "--out", str(tmp_path / "real"))
    assert "4 distinct returned architectures, 2 measured before" in out, out
    assert "trained 2 now, 0 read from store.sqlite; 0 failed" in out, out
    with open(tmp_path / "real" / "real_scores.csv") as f:
        scored = {(r["agent"], int(r["seed"])): r for r in csv_module.DictReader(f)}
    assert {k: r["arch"] for k, r in scored.items()} == {
        ("a", 0): built[0].arch,
        ("a", 1): built[1].arch,
        ("b", 0): "R32-C32k1",
        ("b", 1): "C32k1-C32k1",
    }
    assert float(scored["a", 0]["measured"]) == built[0].accuracy
    assert scored["a", 1]["measured"] == str(built[1].accuracy)
    assert re.search(r"^\| `a` \| 2 \| ", out, re.M) and re.search(r"^\| `b` \| 2 \| ", out, re.M), out
    again = _run("score_real.py", str(folder), "--epochs", "1", "--out", str(tmp_path / "real"))
    assert "trained 0 now, 2 read from store.sqlite; 0 failed" in again, again
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "score_real.py"), str(folder), "--agents", "a,zzz",
         "--out", str(tmp_path / "x")],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "zzz" in proc.stderr, proc.stderr
