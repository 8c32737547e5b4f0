"""TrackedEnv: the budget of trainings every agent runs under, and the history of its steps.

Almost every test runs on ``NASTabular-v0`` (a step costs microseconds; its result store keeps the
ledger of trainings that pending children are read from). Actions of its space, by index:
C32k3 C64k3 C64k5 R32 R64s2 MP2 AP3 DR HEAD; at most 3 layers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401  (registers the env ids)
from agents.common.history import History, HistoryRow
from agents.common.tracked_env import BudgetExhausted, TrackedEnv
from agents.registry import run_agent
from nas_gym.tabular import load_table

C32K3, C64K3, C64K5, R32, MP2, HEAD = 0, 1, 2, 3, 5, 8


def tabular(store: Path | None = None, **kwargs) -> gym.Env:
    return gym.make("NASTabular-v0", store=None if store is None else str(store), **kwargs)


def table_accuracy(arch: str, seed: int = 0) -> float:
    table = load_table()
    return table.get(arch).accuracy[table.seeds.index(seed)]


# -- counting -----------------------------------------------------------------------------------


def test_a_new_architecture_costs_one_training_and_a_stored_one_is_free():
    env = TrackedEnv(tabular(), budget=3)
    assert (env.spent, env.trainings, env.exhausted) == (0, 0, False)
    env.reset(seed=0)
    *_, info = env.step(C32K3)
    assert info["new_training"] and info["trainings"] == 1 and env.spent == 1
    *_, info = env.step(HEAD)  # closes C32k3, whose accuracy is known: nothing to train
    assert not info["new_training"] and env.spent == 1
    env.reset()
    _, reward, *_, info = env.step(C32K3)  # the same child again: answered by the store
    assert not info["new_training"] and env.spent == 1 and reward == table_accuracy("C32k3")
    env.step(C64K3)
    assert env.spent == 2 and not env.exhausted
    env.step(MP2)  # C32k3-C64k3-MP2: the third training, and the last of the budget
    assert env.spent == env.trainings == 3 and env.exhausted
    assert env.evaluator.trainings == 3  # what the env really trained agrees


def test_a_step_or_evaluate_past_the_budget_raises_and_free_steps_still_work():
    env = TrackedEnv(tabular(), budget=2)
    env.reset(seed=0)
    env.step(C32K3)
    env.step(C64K3)
    assert env.exhausted
    rows = len(env.history)
    with pytest.raises(BudgetExhausted, match="budget of 2 trainings"):
        env.step(MP2)  # C32k3-C64k3-MP2 is new: it would be a third training
    with pytest.raises(BudgetExhausted):
        env.evaluate("R32")
    assert len(env.history) == rows and env.evaluator.trainings == 2  # nothing trained, nothing recorded
    # what the store answers, and what trains nothing, still goes
    env.step(HEAD)
    env.reset()
    assert env.step(C32K3)[4]["new_training"] is False
    assert env.evaluate("C32k3-C64k3") == table_accuracy("C32k3-C64k3")
    env.reset()
    _, reward, terminated, _, info = env.step(HEAD)  # masked on the empty architecture: ends, trains nothing
    assert terminated and reward == 0.0 and info["invalid_action"]
    assert env.trainings == 2 and env.evaluator.trainings == 2
    assert sum(row.new_training for row in env.history) == 2


def test_reward_final_counts_only_the_closed_architecture():
    # reward="final" trains only the architecture an episode ends with: layer steps are free
    env = TrackedEnv(tabular(reward="final"), budget=2)
    env.reset(seed=0)
    env.step(C32K3)
    _, reward, *_, info = env.step(C64K3)
    assert reward == 0.0 and not info["new_training"] and env.spent == 0
    _, reward, terminated, *_ = env.step(HEAD)  # closes C32k3-C64k3: the training
    assert terminated and reward == table_accuracy("C32k3-C64k3") and env.spent == 1
    env.reset()
    for action in (C64K3, C64K3, C64K3):  # the third layer reaches max_layers: it ends and trains
        *_, terminated, _, info = env.step(action)
    assert terminated and info["new_training"] and env.exhausted
    env.reset()
    env.step(C32K3)
    env.step(R32)  # free: nothing is trained before HEAD
    with pytest.raises(BudgetExhausted):
        env.step(HEAD)
    assert env.trainings == 2 == env.evaluator.trainings
    assert [row.training for row in env.history if row.new_training] == [1, 2]


@pytest.mark.parametrize("budget", [0, -1, True, 2.5, "3"])
def test_a_budget_that_is_not_a_positive_whole_number_is_refused(budget):
    with pytest.raises(ValueError, match="budget must be a positive number of trainings"):
        TrackedEnv(tabular(), budget=budget)


@pytest.mark.parametrize("seconds", [0, -1.0, float("inf"), float("nan"), True, "10"])
def test_a_budget_of_seconds_that_is_not_a_positive_number_is_refused(seconds):
    with pytest.raises(ValueError, match="budget_seconds must be a positive number of seconds"):
        TrackedEnv(tabular(), budget=None, budget_seconds=seconds)
    with pytest.raises(ValueError, match="needs a budget"):
        TrackedEnv(tabular(), budget=None)


def _seconds_env(budget=None, budget_seconds=None) -> TrackedEnv:
    from synthetic import function_env, layer_quality

    # the test evaluator charges one second per layer
    return TrackedEnv(function_env(layer_quality), budget=budget, budget_seconds=budget_seconds)


@pytest.mark.parametrize("agent", ["random", "evolution", "local_search", "reinforce"])
def test_a_budget_of_seconds_stops_the_search_once_they_are_spent(agent):
    env = _seconds_env(budget_seconds=60)
    run_agent(agent, env, seed=0)
    rows = [r for r in env.history if r.new_training]
    cost = [len(r.arch.split("-")) for r in rows]
    # each row's seconds are the sum of its and the earlier trainings' costs
    assert [r.seconds for r in rows] == pytest.approx(np.cumsum(cost).tolist())
    # the last training crosses the line, every one before it started below it
    assert rows[-1].seconds >= 60 > rows[-2].seconds
    assert env.exhausted and env.progress == 1.0
    with pytest.raises(BudgetExhausted, match="60 train seconds"):
        env.evaluate("C32k3-C32k3-C32k3-C32k3-C32k3-C32k3-C32k3")


def test_with_both_budgets_the_search_ends_at_the_first_one_reached():
    by_trainings = _seconds_env(budget=5, budget_seconds=10_000)
    run_agent("evolution", by_trainings, seed=1)
    assert by_trainings.trainings == 5 and by_trainings.history.rows[-1].seconds < 10_000
    by_seconds = _seconds_env(budget=10_000, budget_seconds=20)
    run_agent("evolution", by_seconds, seed=1)
    assert by_seconds.trainings < 10_000 and by_seconds.history.rows[-1].seconds >= 20


def test_a_table_search_is_charged_the_seconds_the_table_records():
    table = load_table()
    env = TrackedEnv(tabular(), budget=None, budget_seconds=30)
    run_agent("random", env, seed=2)
    rows = [r for r in env.history if r.new_training]
    recorded = [table.get(r.arch).train_seconds[table.column(env.train_seed)] for r in rows]
    assert [r.seconds for r in rows] == pytest.approx(np.cumsum(recorded).tolist(), abs=1e-6)
    assert rows[-1].seconds >= 30 > rows[-2].seconds


def test_budget_use_counts_complete_architectures_and_prefix_trainings():
    from agents.common.history import prefix_use

    rows = [  # an episode A, A-B, A-B-C (closed), then a direct evaluation of A-D
        HistoryRow(1, "C32k3", 0.5, 1, True, 0),
        HistoryRow(2, "C32k3-MP2", 0.6, 2, True, 0),
        HistoryRow(3, "C32k3-MP2-DR", 0.7, 3, True, 0),
        HistoryRow(4, "C32k3-MP2-DR", 0.7, 3, False, 0),  # HEAD: the same architecture, free
        HistoryRow(5, "C32k3-R64", 0.8, 4, True, 1),
        HistoryRow(6, "C32k3", 0.5, 4, False, 2),  # a free re-evaluation ends its own episode
    ]
    use = prefix_use(rows)
    assert use == {"complete": 3, "trainings": 4, "prefix_trainings": 2, "prefix_share": 0.5}


def test_a_numpy_integer_budget_is_accepted():
    assert TrackedEnv(tabular(), budget=np.int64(4)).budget == 4


def test_an_env_that_is_not_a_nas_env_is_refused():
    with pytest.raises(TypeError, match="needs a NAS env.*CartPoleEnv"):
        TrackedEnv(gym.make("CartPole-v1"), budget=5)


# -- the history --------------------------------------------------------------------------------


def test_every_step_is_one_row_with_its_training_index_and_episode(tmp_path):
    path = tmp_path / "history.jsonl"
    env = TrackedEnv(tabular(), budget=5, history=History.load(path))
    seen = []
    env.listeners.append(seen.append)
    env.reset(seed=1)
    env.step(C32K3)
    env.step(HEAD)
    env.reset()
    env.step(C32K3)  # stored: free
    env.step(R32)
    env.step(HEAD)
    env.evaluate("MP2")  # a direct evaluation is an episode of its own
    env.reset()
    env.step(MP2)  # trained by the evaluate above: free
    want = [
        HistoryRow(1, "C32k3", table_accuracy("C32k3", 1), 1, True, 0),
        HistoryRow(2, "C32k3", table_accuracy("C32k3", 1), 1, False, 0),
        HistoryRow(3, "C32k3", table_accuracy("C32k3", 1), 1, False, 1),
        HistoryRow(4, "C32k3-R32", table_accuracy("C32k3-R32", 1), 2, True, 1),
        HistoryRow(5, "C32k3-R32", table_accuracy("C32k3-R32", 1), 2, False, 1),
        HistoryRow(6, "MP2", table_accuracy("MP2", 1), 3, True, 2),
        HistoryRow(7, "MP2", table_accuracy("MP2", 1), 3, False, 3),
    ]
    # each row carries the train seconds so far: the table's recorded seconds of each training
    table = load_table()
    costs = [table.get(a).train_seconds[table.column(1)] for a in ("C32k3", "C32k3-R32", "MP2")]
    so_far = np.cumsum(costs)[[0, 0, 0, 1, 1, 2, 2]]
    want = [dataclasses.replace(r, seconds=float(t)) for r, t in zip(want, so_far, strict=True)]
    assert env.history.rows == want
    assert seen == want  # listeners see each row as it is recorded
    # the file holds the same rows, one JSON object a line, and loads back to them
    lines = path.read_text().splitlines()
    assert [HistoryRow(**json.loads(line)) for line in lines] == want
    assert History.load(path).rows == want
    assert env.history.best() == max(want, key=lambda r: r.accuracy)


# -- resuming -----------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("agent", ["random", "evolution", "reinforce"])
def test_a_resumed_search_is_answered_from_the_store_and_ends_as_an_uninterrupted_one(agent, tmp_path):
    budget, seed = 12, 3
    (tmp_path / "whole").mkdir()
    (tmp_path / "cut").mkdir()
    whole = TrackedEnv(
        tabular(tmp_path / "whole" / "s.sqlite"), budget, History.load(tmp_path / "whole" / "h")
    )
    run_agent(agent, whole, seed)
    assert whole.trainings == budget

    store, path = tmp_path / "cut" / "s.sqlite", tmp_path / "cut" / "history.jsonl"
    first = TrackedEnv(tabular(store), budget, History.load(path))

    def interrupt(row: HistoryRow) -> None:
        if row.new_training and row.training == 5:
            raise Interrupt

    first.listeners.append(interrupt)
    with pytest.raises(Interrupt):
        run_agent(agent, first, seed)
    assert 5 <= len(History.load(path)) < len(whole.history)

    resumed = TrackedEnv(tabular(store), budget, History.load(path))
    assert resumed.resuming
    run_agent(agent, resumed, seed)
    assert resumed.resume_mismatches == 0
    # the recorded steps were answered by the store: only the rest of the budget was trained
    assert resumed.evaluator.trainings == budget - 5 and resumed.trainings == budget
    assert resumed.history.rows == whole.history.rows  # each step recorded once, none twice
    assert History.load(path).rows == whole.history.rows


# -- pending trainings: trained for this search, not reached by a step yet ------------------------


def test_children_trained_but_not_reached_count_when_the_search_resumes(tmp_path: Path) -> None:
    # a pool trained three children for the search, then the process was stopped before any step
    # reached them: they are in the store's ledger under the search's tag
    store = tmp_path / "s.sqlite"
    history = History.load(tmp_path / "history.jsonl")
    first = TrackedEnv(tabular(store), budget=5, history=history)
    first.reset(seed=0)
    evaluator = first.evaluator
    for arch in ("C32k3", "C64k3", "R32"):
        evaluator.evaluate(arch, 0)  # as a pool worker writes them: not through a step

    resumed = TrackedEnv(tabular(store), budget=5, history=History.load(tmp_path / "history.jsonl"))
    resumed.reset(seed=0)
    assert resumed.spent == 3 and not resumed.exhausted
    resumed.step(0)  # C32k3: trained before, reached now, recorded as this step's training
    assert resumed.history.rows[-1].new_training and resumed.trainings == 1 and resumed.spent == 3


def test_a_history_that_does_not_name_its_fidelity_resumes_without_paying_again(tmp_path: Path) -> None:
    """A history written before rows named the fidelity an episode asked for: its steps at 1
    epoch are matched to the store's 1-epoch trainings, so the resumed search replays them and
    trains nothing again."""
    store, path = tmp_path / "s.sqlite", tmp_path / "history.jsonl"

    def search(history: History) -> TrackedEnv:
        env = TrackedEnv(gym.make("NASSurrogate-v2", store=str(store)), budget=5, history=history)
        env.reset(seed=0, options={"epochs": 1})
        for arch in ("C32k3", "C64k3-MP2", "R32"):
            env.evaluate(arch)
        return env

    first = search(History.load(path))
    assert [r.epochs for r in first.history.rows] == [1.0, 1.0, 1.0] and first.trainings == 3
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "epochs"}) + "\n" for r in rows))
    resumed = search(History.load(path))
    assert resumed.resume_mismatches == 0 and resumed.trainings == 3 == resumed.spent
    assert len(History.load(path)) == 3


def test_a_training_filed_with_other_torch_threads_is_reached_by_its_step(tmp_path: Path) -> None:
    """A pool's worker or an SB3 env copy may train with fewer torch threads than the search's
    own env (a key that names other threads): the step that reaches the child still records it."""
    from nas_gym.store import ResultStore, StoredResult

    store = tmp_path / "s.sqlite"
    env = TrackedEnv(gym.make("NASSurrogate-v2", store=str(store)), budget=3)
    env.reset(seed=0)
    key = json.loads(env.evaluator.key_of(None))
    key["threads"] = key.get("threads", 4) + 1  # as a worker with other threads files it
    row = StoredResult(
        env.evaluator.dataset, json.dumps(key, sort_keys=True), "C32k3", 0, 0.8, None, 1, 2.0, "ok", "", "",
        0.0, 0.0,
    )  # fmt: skip
    ResultStore(store).record_training(row, tag=env.tag)
    env.record_remote("C32k3", 0.8, new=True, episode_end=True)  # the copy's step, reported here
    assert env.history.rows[-1].new_training and env.trainings == 1 == env.spent


def test_a_kill_between_the_store_and_the_history_loses_no_training(tmp_path: Path) -> None:
    store, path = tmp_path / "s.sqlite", tmp_path / "history.jsonl"
    env = TrackedEnv(tabular(store), budget=3, history=History.load(path))
    env.reset(seed=0)
    env.step(0)  # C32k3
    # the next step's child is written to the store, then the process dies before the history
    env.evaluator.evaluate("C32k3-C64k3", env.train_seed)
    resumed = TrackedEnv(tabular(store), budget=3, history=History.load(path))
    resumed.reset(seed=0)
    resumed.step(0)  # replayed
    assert not resumed.resuming and resumed.spent == 2  # the child the history lacks counts
    resumed.step(1)  # C32k3-C64k3: found trained, counted as this step's training
    resumed.step(2)
    assert resumed.exhausted and resumed.spent == 3 == resumed.trainings
    assert [r.training for r in resumed.history] == [1, 2, 3]


def test_pending_children_fill_the_budget_but_can_still_be_reached(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    env = TrackedEnv(tabular(store), budget=2, tag="search")
    env.reset(seed=0)
    for arch in ("MP2", "R32"):
        env.evaluator.evaluate(arch, 0)  # trained for this search by someone else (a pool)
    env = TrackedEnv(tabular(store), budget=2, tag="search")
    env.reset(seed=0)
    assert env.spent == 2 and env.trainings == 0 and not env.exhausted  # two children wait for a step
    with pytest.raises(BudgetExhausted):
        env.step(C32K3)  # a third child: over the budget
    assert env.evaluate("R32") == table_accuracy("R32")  # a pending child: recorded as a training
    env.reset()
    _, _, _, _, info = env.step(MP2)
    assert info["new_training"] and env.trainings == 2 and env.exhausted
    assert [(r.arch, r.training, r.new_training) for r in env.history] == [("R32", 1, True), ("MP2", 2, True)]


def test_children_trained_for_another_search_are_free_store_hits(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    other = TrackedEnv(tabular(store), budget=5, tag="other search")
    other.reset(seed=0)
    other.step(C32K3)
    other.step(C64K3)
    mine = TrackedEnv(tabular(store), budget=5, tag="my search")
    assert mine.spent == 0
    mine.reset(seed=0)
    mine.step(C32K3)
    mine.step(C64K3)
    assert mine.spent == 0 and not any(row.new_training for row in mine.history)


def test_the_tag_defaults_to_the_history_folder(tmp_path: Path) -> None:
    # a resumed search finds its ledger lines because the same folder names the same search
    a = TrackedEnv(tabular(), budget=1, history=History.load(tmp_path / "history.jsonl"))
    assert a.tag == str(tmp_path.resolve()) and a.evaluator.ledger_tag == a.tag
    b, c = TrackedEnv(tabular(), budget=1), TrackedEnv(tabular(), budget=1)
    assert b.tag != c.tag  # no file: a fresh id each


class _EvaluatingPool:
    """A pool that trains what it is handed with the env's own evaluator (as a worker would, into
    the same store and ledger) and remembers what it was handed."""

    def __init__(self, env: TrackedEnv) -> None:
        self.env, self.asked = env, []

    def train(self, archs, seed, tag, epochs=None) -> None:
        self.asked += list(archs)
        for arch in archs:
            self.env.evaluator.evaluate(arch, seed, epochs)


@pytest.mark.parametrize("agent", ["random", "reinforce"])
@pytest.mark.parametrize("reward", ["prefix", "final"])
def test_planners_prefetch_only_what_the_env_reward_mode_evaluates(agent, reward):
    # under reward="final" only the closed architecture of an episode is trained: a planner that
    # prefetched every prefix spent trainings no step reached, then died on BudgetExhausted
    env = TrackedEnv(gym.make("NASTabular-v0", reward=reward), budget=40)
    env.pool = _EvaluatingPool(env)
    run_agent(agent, env, seed=0)
    assert env.trainings == env.spent == 40
    reached = {r.arch for r in env.history if r.new_training}
    assert set(env.pool.asked) <= reached | {arch for arch, _ in env.ledger.pending}
    assert not env.ledger.pending  # nothing trained that no step reached
