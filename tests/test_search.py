"""One search runner (agents.search): what the command line, compare_agents.py and the GPU check
run, so a search's resume, pool, budget and outputs are written once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agents.search import Search, SearchError

ROOT = Path(__file__).resolve().parents[1]


def test_a_search_with_a_folder_writes_its_outputs_and_resumes_without_training(tmp_path: Path) -> None:
    search = Search("NASTabular-v0", "evolution", seed=3, budget=30, out=tmp_path / "run")
    first = search.start().run()
    assert first.summary is not None and first.summary["trainings"] == 30
    assert {"run.json", "history.jsonl", "results.sqlite", "summary.json"} <= {
        p.name for p in (tmp_path / "run").iterdir()
    }
    again = search.start()
    assert len(again.history) == len(first.history)  # the folder's history, to be replayed
    second = again.run()
    assert second.evaluator.trainings == 0  # every step answered by the store
    assert [(r.arch, r.accuracy) for r in second.history] == [(r.arch, r.accuracy) for r in first.history]


def test_a_search_without_a_folder_keeps_nothing_and_matches_one_with(tmp_path: Path) -> None:
    kept = Search("NASSurrogate-v1", "local_search", seed=1, budget=25, out=tmp_path / "run").start().run()
    free = Search("NASSurrogate-v1", "local_search", seed=1, budget=25).start().run()
    assert free.summary is None and free.wall > 0
    assert [(r.arch, r.accuracy, r.training) for r in free.history] == [
        (r.arch, r.accuracy, r.training) for r in kept.history
    ]


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(agent="nope"), "unknown agent 'nope'"),
        (dict(budget=None), "needs a budget"),
        (dict(budget=0), "--budget must be a positive number"),
        (dict(budget_seconds=-1.0), "--budget-seconds must be a positive number"),
        (dict(workers=0), "--workers must be >= 1"),
        (dict(backend="mpi"), "--backend must be one of local, ray"),
        (dict(agent="ppo", backend="ray"), "use --backend local"),
        (dict(ray_address="auto"), "--ray-address needs --backend ray"),
        (dict(env_id="CartPole-v1"), "unknown env id 'CartPole-v1'"),
        (dict(overrides={"epochs": 2.0}), "NASTabular-v0 does not take that option"),
    ],
)
def test_bad_settings_are_refused_by_name_before_anything_is_written(tmp_path, settings, message) -> None:
    base = dict(env_id="NASTabular-v0", agent="random", seed=0, budget=5, out=tmp_path / "run")
    with pytest.raises(SearchError, match=message.replace("(", r"\(")):
        Search(**{**base, **settings}).start()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", ["agents/cli.py", "benchmarks/compare_agents.py", "benchmarks/gpu_check.py"])
def test_the_command_line_and_the_benchmarks_run_searches_through_the_runner(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "agents.search" in imported
    assert not {"TrackedEnv", "run_agent", "LocalPool", "RayPool"} & called, path
