"""The ``nas-gym`` command line as a user drives it: search folders, resume, errors, evaluate.

Children are tiny (a few hundred images, a fraction of an epoch, an eighth of the width, at most
3 layers), so a search of a handful of trainings takes about a second. ``main([...])`` runs
in-process where the test is about what the command does; a subprocess is used where the test is
about the process itself (kill and resume, Ctrl-C, exit status, the console script).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_CHILD, cli_sets

from agents.cli import main
from agents.registry import AGENTS

pytestmark = pytest.mark.usefixtures("torch_single_thread")

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "NASFashionMini-v0"
AGENT_NAMES = [
    "reinforce",
    "reinforce_uct",
    "reinforce_tree",
    "random",
    "evolution",
    "local_search",
    "bananas",
    "tpe",
    "ppo",
    "a2c",
    "dqn",
    "maskable_ppo",
    "successive_halving",
    "hyperband",
    "bohb",
]


# the tests' tiny budget, and at most 3 layers so that a search stays short
TINY = cli_sets({**TINY_CHILD, "max_layers": 3})
# about 0.2 s a child, in a watched worker (the default): slow enough that a process can be
# stopped in the middle of a search
SLOWER = cli_sets(dict(train_size=2048, val_size=128, epochs=1.0, batch_size=64, width=0.125, max_layers=3))


# -- helpers ------------------------------------------------------------------------------------


def search_args(out: Path, agent: str = "reinforce", budget: int = 5, seed: int = 0, extra=TINY) -> list[str]:
    """``nas-gym search`` with every option spelled out, as a user would resume it."""
    options = {"--env": ENV_ID, "--agent": agent, "--budget": budget, "--seed": seed, "--out": out}
    return ["search", *(str(x) for pair in options.items() for x in pair), *extra]


def history_rows(folder: Path) -> list[dict]:
    """The rows of DIR/history.jsonl; a torn last line (a process killed mid-write) is skipped."""
    path = folder / "history.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def trained(rows: list[dict]) -> list[str]:
    """Architectures of the rows that trained a child, in order."""
    return [row["arch"] for row in rows if row["new_training"]]


def store_archs(folder: Path) -> list[str]:
    conn = sqlite3.connect(folder / "results.sqlite")
    try:
        return [arch for (arch,) in conn.execute("SELECT arch FROM results")]
    finally:
        conn.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (names and bytes), folders included as names."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(folder.rglob("*"))
    }


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert lines[0].startswith("nas-gym: error: "), lines[0]
    return lines[0]


def process_env() -> dict[str, str]:
    """The child process runs this checkout's code with one torch thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = "1"
    return env


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", *args],
        cwd=cwd,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        cwd=cwd,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_trainings(proc: subprocess.Popen, folder: Path, n: int, timeout: float = 90) -> int:
    """Poll DIR/history.jsonl until it records ``n`` trainings; the process must still run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = len(trained(history_rows(folder)))
        if done >= n:
            assert proc.poll() is None, "the search finished before it could be stopped"
            return done
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the search ended early (exit {proc.returncode}):\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {n} trainings in {timeout} s")


def check_complete_search(folder: Path, budget: int) -> list[dict]:
    """What a finished search folder promises: ``budget`` distinct trainings, each stored once."""
    rows = history_rows(folder)
    archs = trained(rows)
    assert len(archs) == budget
    assert len(set(archs)) == len(archs), "an architecture was trained twice"
    assert rows[-1]["training"] == budget
    assert [row["step"] for row in rows] == list(range(1, len(rows) + 1))
    assert sorted(store_archs(folder)) == sorted(archs)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["trainings"] == budget
    assert summary["budget"] == budget
    return rows


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, torch_single_thread) -> Path:
    """A finished reinforce search (budget 5, seed 0) that the error tests must leave alone."""
    out = tmp_path_factory.mktemp("finished") / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(search_args(out)) == 0
    assert (out / "summary.json").exists()
    return out


def test_a_finished_search_leaves_its_store_closed(finished_run):
    """No WAL journal is left next to the store once ``main`` returns: the folder is complete as
    it is (to copy or commit), and a later reader cannot change it by closing a connection."""
    assert sorted(p.name for p in finished_run.glob("results.sqlite*")) == ["results.sqlite"]


# -- every agent, end to end --------------------------------------------------------------------


def test_agent_names_are_the_documented_ones():
    assert sorted(AGENTS) == sorted(AGENT_NAMES)


@pytest.mark.parametrize(
    "agent", [a for a in AGENT_NAMES if a in ("hyperband", "bohb", "successive_halving")]
)
def test_a_multi_fidelity_search_trains_each_architecture_once_per_fidelity(agent, tmp_path):
    out = tmp_path / "run"
    assert main(search_args(out, agent=agent, budget=5, seed=0)) == 0
    with sqlite3.connect(out / "results.sqlite") as conn:
        ledger = conn.execute("SELECT arch, budget, seed FROM trainings").fetchall()
    assert len(ledger) == len(set(ledger)) == 5  # an architecture again only at another fidelity
    assert json.loads((out / "summary.json").read_text())["trainings"] == 5


@pytest.mark.parametrize("agent", [a for a in AGENT_NAMES if not AGENTS[a].fidelity])
def test_search_writes_the_run_folder(agent, tmp_path, capsys):
    out = tmp_path / "run"
    budget = 5
    assert main(search_args(out, agent=agent, budget=budget, seed=0)) == 0
    printed = capsys.readouterr().out

    rows = check_complete_search(out, budget)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agent"] == agent and summary["wall_seconds"] > 0
    assert summary["env"] == ENV_ID
    assert summary["seed"] == 0
    best = max(rows, key=lambda row: row["accuracy"])
    assert summary["best_accuracy"] == pytest.approx(best["accuracy"])
    assert summary["best_arch"] in trained(rows)
    assert 0 < summary["best_accuracy"] <= 1

    run = json.loads((out / "run.json").read_text())
    assert (run["env"], run["agent"], run["seed"]) == (ENV_ID, agent, 0)
    # the --set overrides reached the env (and so the store key)
    assert run["env_kwargs"]["epochs"] == TINY_CHILD["epochs"]
    assert run["env_kwargs"]["train_size"] == TINY_CHILD["train_size"]
    assert run["env_kwargs"]["max_layers"] == 3

    # the replay tree holds every architecture the run trained, the best included
    tree = json.loads((out / "tree.json").read_text())
    tree_archs = {entry["arch"] for entry in tree["architectures"]}
    assert set(trained(rows)) <= tree_archs
    dot = (out / "tree.dot").read_text()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    for token in summary["best_arch"].split("-"):
        assert f'label="{token}\\n' in dot

    assert (out / "best_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((out / "tb").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)

    # the terminal shows the tree and the best architecture as Layer / Type / Setting
    root = re.search(r"input\s+(\d+) architectures", printed)
    assert root is not None, printed
    assert int(root.group(1)) == len(tree_archs)
    for word in ("Layer", "Type", "Setting", "Linear+Softmax"):
        assert word in printed
    n_layers = len(summary["best_arch"].split("-"))
    assert re.search(rf"\b{n_layers + 1}\s+.\s+Linear\+Softmax", printed), printed
    assert f"{budget} trainings; best {summary['best_arch']}" in " ".join(printed.split())


def test_search_again_with_another_budget_is_refused_and_loses_nothing(finished_run, tmp_path, capsys):
    # agents schedule on the budget (REINFORCE's curriculum): another budget is another search
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = history_rows(out)
    assert main(search_args(out, budget=9)) == 2
    error = capsys.readouterr().err
    assert "--budget 5" in error and "another --out folder" in error
    assert history_rows(out) == before
    assert len(store_archs(out)) == 5


def test_search_again_at_the_same_budget_trains_nothing(finished_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = history_rows(out)
    assert main(search_args(out, budget=5)) == 0
    assert history_rows(out) == before
    assert len(store_archs(out)) == 5


# -- interrupted searches -----------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["reinforce", "evolution"])
def test_resume_after_sigkill(agent, tmp_path, capsys):
    out = tmp_path / "run"
    args = search_args(out, agent=agent, budget=14, extra=SLOWER)
    proc = start_cli(args, tmp_path)
    try:
        done = wait_for_trainings(proc, out, 4)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    killed_at = len(trained(history_rows(out)))
    assert done <= killed_at < 14

    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout
    rows = check_complete_search(out, 14)
    assert (out / "summary.json").exists()

    # the store's ledger holds exactly the budget, the child cut short by the kill not included
    from nas_gym.store import ResultStore

    assert ResultStore(out / "results.sqlite").trainings() == 14
    assert json.loads((out / "summary.json").read_text())["trainings"] == 14
    # and the same command once more trains nothing
    assert main(search_args(out, agent=agent, budget=14, extra=SLOWER)) == 0
    assert "left the recorded path" not in capsys.readouterr().out
    assert history_rows(out) == rows


def test_ctrl_c_exits_130_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    args = search_args(out, budget=12, extra=SLOWER)
    proc = start_cli(args, tmp_path)
    try:
        wait_for_trainings(proc, out, 2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nas-gym: "), err
    assert "resume" in lines[0]
    assert len(trained(history_rows(out))) < 12

    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr
    check_complete_search(out, 12)


# -- bad input ----------------------------------------------------------------------------------


def bad_search_cases(a_file: Path) -> dict[str, list[str]]:
    """Options appended to the finished run's own command (argparse: the last --out wins)."""
    return {
        "unknown env": ["--env", "NASNope-v0"],
        "not a NAS env": ["--env", "CartPole-v1"],
        "unknown agent": ["--agent", "sarsa"],
        "zero budget": ["--budget", "0"],
        "negative budget": ["--budget", "-3"],
        "set without =": ["--set", "epochs"],
        "set rejected by the env": ["--set", "epochs=0"],
        "set of a negative size": ["--set", "train_size=-5"],
        # a folder holding another search; NASMnist-v0 needs data, so this must fail before any is read
        "another env": ["--env", "NASMnist-v0"],
        "another agent": ["--agent", "random"],
        "another seed": ["--seed", "1"],
        "another budget per child": ["--set", "width=0.25"],
        # root ignores permission bits, so the unwritable folder is one under a regular file
        "out under a file": ["--out", str(a_file / "sub")],
        "out is a file": ["--out", str(a_file)],
    }


@pytest.mark.parametrize("case", list(bad_search_cases(Path("a_file"))))
def test_bad_search_is_one_line_and_changes_nothing(case, finished_run, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    before = snapshot(finished_run)
    assert main(search_args(finished_run) + bad_search_cases(a_file)[case]) == 2
    captured = capsys.readouterr()
    one_error_line(captured.err)
    assert captured.out == ""
    assert snapshot(finished_run) == before
    assert a_file.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize(
    "extra",
    [["--env", "NASNope-v0"], ["--budget", "0"], ["--set", "epochs=0"], ["--agent", "sarsa"]],
)
def test_bad_search_creates_no_folder(extra, tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert main(search_args(out) + extra) == 2
    one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()


def test_error_exit_status_and_stderr_of_the_process(finished_run, tmp_path):
    before = snapshot(finished_run)
    result = run_cli(search_args(finished_run, budget=0), tmp_path, timeout=60)
    assert result.returncode == 2
    assert "budget" in one_error_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert snapshot(finished_run) == before


@pytest.mark.parametrize(
    "text",
    ["C32k3-XYZ", "C32k3--MP2", "C0k3", "", "MP2-MP2-MP2-MP2-MP2"],
    ids=["unknown token", "doubled dash", "zero channels", "empty", "shrinks below 1x1"],
)
def test_evaluate_bad_architecture_is_one_line(text, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", text, *TINY]) == 2
    one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_without_architecture_is_one_line(capsys):
    assert main(["evaluate", *TINY]) == 2
    one_error_line(capsys.readouterr().err)


def test_evaluate_run_without_summary_is_one_line(finished_run, tmp_path, capsys):
    folder = tmp_path / "half"
    folder.mkdir()
    for name in ("run.json", "history.jsonl", "results.sqlite"):
        shutil.copy(finished_run / name, folder / name)
    before = snapshot(folder)
    assert main(["evaluate", "--run", str(folder), *TINY]) == 2
    assert "summary.json" in one_error_line(capsys.readouterr().err)
    assert snapshot(folder) == before


# -- evaluate -----------------------------------------------------------------------------------


def _table_value(printed: str, metric: str) -> str:
    match = re.search(rf"{metric}\s*\S\s*([^\s│|]+)", printed)
    assert match is not None, f"no {metric!r} row in:\n{printed}"
    return match.group(1)


def test_evaluate_text_prints_accuracies_parameters_and_time(tmp_path, capsys):
    import gymnasium as gym

    from nas_gym.search_space import Architecture

    text = "C32k3-MP2-R64"
    store = tmp_path / "eval.sqlite"
    assert main(["evaluate", text, "--store", str(store), *TINY]) == 0
    printed = capsys.readouterr().out
    assert 0 <= float(_table_value(printed, "validation accuracy")) <= 1
    assert 0 <= float(_table_value(printed, "test accuracy")) <= 1
    conn = sqlite3.connect(store)
    try:
        ((seconds,),) = conn.execute("SELECT train_seconds FROM results").fetchall()
    finally:
        conn.close()
    assert seconds > 0
    assert _table_value(printed, "train seconds") == f"{seconds:.1f}"
    kwargs = {**gym.spec(ENV_ID).kwargs, **TINY_CHILD}
    env = gym.make(ENV_ID, **kwargs)
    expected = env.unwrapped.evaluator.num_params(Architecture.parse(text))
    env.close()
    assert int(_table_value(printed, "parameters").replace(",", "")) == expected

    # a second time the store answers, without training
    assert main(["evaluate", text, "--store", str(store), *TINY]) == 0
    assert "from the store" in capsys.readouterr().out


def test_evaluate_run_trains_its_best_with_test_accuracy(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    summary = json.loads((run / "summary.json").read_text())
    assert main(["evaluate", "--run", str(run), *TINY]) == 0
    printed = capsys.readouterr().out
    assert summary["best_arch"] in " ".join(printed.split())
    test_accuracy = float(_table_value(printed, "test accuracy"))
    assert 0 <= test_accuracy <= 1
    conn = sqlite3.connect(run / "final.sqlite")
    try:
        stored = conn.execute("SELECT arch, seed, test_accuracy FROM results").fetchall()
    finally:
        conn.close()
    assert len(stored) == 1
    assert stored[0][:2] == (summary["best_arch"], summary["seed"])
    assert stored[0][2] == pytest.approx(test_accuracy, abs=5e-5)


# -- the console script -------------------------------------------------------------------------


def test_console_script_is_installed_and_answers_help(tmp_path):
    script = shutil.which("nas-gym")
    assert script is not None, "the nas-gym console script is not on PATH"
    result = subprocess.run(
        [script, "--help"], cwd=tmp_path, env=process_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "search" in result.stdout and "evaluate" in result.stdout
    result = subprocess.run(
        [script, "search", "--help"],
        cwd=tmp_path,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--set" in result.stdout and "--budget" in result.stdout


# -- samples build (the surrogate's data) -------------------------------------------------------


def test_samples_build_trains_resumes_and_takes_in_a_search(tmp_path, capsys):
    """``nas-gym samples build``: N sampled architectures (every k-th with a second seed) trained
    into its store, a search folder's children added as trajectories, and a larger N trains only
    the new ones (the first N stay the same)."""
    from nas_gym.build.samples import SampleSet

    threads = ["--set", "threads=1"]
    run = tmp_path / "run"
    assert main(search_args(run, agent="random", budget=3, extra=TINY + threads)) == 0
    out, store = tmp_path / "samples.json", tmp_path / "samples.sqlite"
    args = ["samples", "build", "--env", ENV_ID, "--second-seed-every", "2", "--threads", "1", "--run", str(run),
            "--out", str(out), "--store", str(store), *cli_sets(TINY_CHILD)]  # fmt: skip
    assert main([*args, "--n", "3"]) == 0
    first = SampleSet.load(out)
    random_rows = [(s.arch, s.seed) for s in first.samples if s.source == "random"]
    archs = list(dict.fromkeys(a for a, _ in random_rows))
    assert len(archs) == 3 and sorted(random_rows) == sorted(
        [(a, 0) for a in archs] + [(archs[0], 1), (archs[2], 1)]
    )
    assert sorted(s.arch for s in first.samples if s.source == str(run)) == sorted(store_archs(run))
    assert all(s.status == "ok" and 0.0 <= s.accuracy <= 1.0 for s in first.samples)
    build = first.build
    assert (
        build["sampled"] == 3
        and build["torch_threads_per_worker"] == 1
        and build["trained_in_last_invocation"] == 5
    )
    assert (
        build["command"].startswith("nas-gym samples build")
        and build["first_trained"] <= build["last_trained"]
    )

    from nas_gym.evaluation import Evaluator
    from nas_gym.registration import ENV_IDS

    # a training put into the same store by other means (as surrogate_check.py does) is not "random"
    Evaluator(ENV_IDS[ENV_ID], store=str(store), **TINY_CHILD, threads=1).evaluate("C32k3-MP2", 0)
    assert main([*args, "--n", "4"]) == 0  # one more architecture: one training, the first three kept
    grown = SampleSet.load(out)
    assert [(s.arch, s.seed) for s in grown.samples if s.source == "store"] == [("C32k3-MP2", 0)]
    assert grown.build["trained_in_last_invocation"] == 1
    assert [r for r in grown.samples if r.source == "random"][: len(random_rows)] == [
        r for r in first.samples if r.source == "random"
    ]
    assert len([r for r in grown.samples if r.source == "random"]) == 6
    assert "trained samples" in capsys.readouterr().out


def test_search_with_a_budget_of_seconds_reports_both_counts_and_resumes_only_with_it(tmp_path, capsys):
    out = tmp_path / "seconds"
    args = [
        "search",
        "--env",
        "NASTabular-v0",
        "--agent",
        "random",
        "--budget-seconds",
        "25",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [r for r in history_rows(out) if r["new_training"]]
    assert summary["budget"] is None and summary["budget_left"] is None and summary["budget_seconds"] == 25
    assert summary["train_seconds"] == pytest.approx(rows[-1]["seconds"], abs=1e-3)
    assert rows[-1]["seconds"] >= 25 > rows[-2]["seconds"]  # the last training crosses the line
    assert summary["trainings"] == len(rows) and 0 < summary["complete"] <= len(rows)
    assert 0.0 <= summary["prefix_share"] <= 1.0
    printed = capsys.readouterr().out
    assert "train s" in printed and "complete architectures" in printed and "budget use:" in printed
    assert main([*args[:-4], "--budget-seconds", "30", "--out", str(out)]) == 2
    assert "--budget-seconds 25.0, not 30.0" in capsys.readouterr().err
    assert main(args) == 0  # the same search resumes: nothing more to train
    assert len([r for r in history_rows(out) if r["new_training"]]) == len(rows)


@pytest.mark.parametrize("env_id", ["NASTabular-v0", "NASSurrogate-v0"])
def test_evaluate_on_a_table_or_a_surrogate_prints_its_answer(env_id, capsys):
    # these envs have no trainer: evaluate used to end in AttributeError ('epochs')
    assert main(["evaluate", "C32k3-MP2", "--env", env_id]) == 0
    printed = capsys.readouterr().out
    assert "validation accuracy" in printed and ("read from the table" in printed or "predicted" in printed)
    assert main(["evaluate", "C32k1-C32k1-C32k1-C32k1", "--env", "NASTabular-v0"]) == 2
    assert "not in NASTabular-v0's space" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["table", "build", "--space", "C32k3,MP2:2"], ["samples", "build", "--n", "2"]]
)
def test_tables_and_samples_refuse_an_env_that_trains_nothing(command, tmp_path, capsys):
    # table build on the surrogate used to end in a TypeError traceback
    for env_id in ("NASSurrogate-v0", "NASTabular-v0"):
        assert main([*command, "--env", env_id, "--out", str(tmp_path / "x.json")]) == 2
        assert "trains children (NASCifar10-v0" in capsys.readouterr().err


def test_set_reads_python_and_json_constants_alike() -> None:
    # "--set isolate=False" used to reach the env as the text 'False', which is true
    from agents.cli import parse_pairs

    got = parse_pairs(["isolate=False", "inherit=true", "time_limit=None", "threads=2", "dataset=mnist"])
    assert got == {"isolate": False, "inherit": True, "time_limit": None, "threads": 2, "dataset": "mnist"}


def test_a_text_where_a_switch_belongs_is_refused_by_name(capsys) -> None:
    assert main(["evaluate", "C32k3", "--env", ENV_ID, "--set", "isolate=maybe"]) == 2
    assert "isolate must be true or false, got 'maybe'" in capsys.readouterr().err


def test_search_help_lists_every_registered_agent_and_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: reinforce)" in help_text
    assert all(f"{name}:" in help_text for name in AGENTS) and "tpe: Optuna's TPE [tpe extra]" in help_text
