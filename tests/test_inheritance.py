"""Prefix weight inheritance: a child starts from its trained prefix and trains briefly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY_CHILD, cli_sets

from nas_gym.evaluation import Evaluator, ResultStore
from nas_gym.models import build_model, inherit_from
from nas_gym.search_space import Architecture

pytestmark = pytest.mark.usefixtures("torch_single_thread")

KWARGS = dict(dataset="fashion_mini", image_size=14, device="cpu", threads=1, **TINY_CHILD)


def inheriting(**overrides) -> Evaluator:
    return Evaluator(**{**KWARGS, "inherit": True, "inherit_epochs": 0.25, **overrides})


def test_the_child_copies_its_trained_prefix_and_starts_as_its_function() -> None:
    evaluator = inheriting()
    evaluator.evaluate("C32k3", 0)
    parent = torch.load(evaluator.inheritance.file("C32k3", 0), weights_only=True)
    child = build_model(Architecture.parse("C32k3-R32"), 1, 14, 10, TINY_CHILD["width"])
    inherit_from(child, parent)
    state = child.state_dict()
    for key, value in parent.items():
        i, _, rest = key.partition(".")
        target = key if i == "0" else f"4.{rest}" if i == "3" else None  # layer 0; the head moves on
        if target is not None:
            assert torch.equal(state[target], value), key
    # a shape-keeping residual block starts as the identity: the child computes its parent's function
    before = build_model(Architecture.parse("C32k3"), 1, 14, 10, TINY_CHILD["width"])
    before.load_state_dict(parent)
    x = torch.rand(8, 1, 14, 14)
    before.eval(), child.eval()
    assert torch.allclose(before(x), child(x), atol=1e-6)


def test_inherited_results_are_deterministic_on_the_cpu() -> None:
    a = inheriting().evaluate("C32k3-R32-MP2", 0)
    b = inheriting().evaluate("C32k3-R32-MP2", 0)
    assert a.status == b.status == "ok" and a.accuracy == b.accuracy


def test_a_missing_parent_is_trained_first_and_counted(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    evaluator = inheriting(store=store)
    evaluator.evaluate("C32k3-MP2-R32", 0)  # its prefixes were never trained: they are now
    assert evaluator.trainings == 3 and ResultStore(store).trainings() == 3
    assert {r.arch for r in ResultStore(store).rows()} == {"C32k3", "C32k3-MP2", "C32k3-MP2-R32"}
    evaluator.inheritance.file("C32k3-MP2-R32", 0).unlink()  # lost (a pruned cache, another machine)
    again = inheriting(store=store)
    again.evaluate("C32k3-MP2-R32-DR", 0)  # the parent is re-trained for its weights, and counted
    assert again.trainings == 2 and ResultStore(store).trainings() == 5
    shutil.rmtree(evaluator.inheritance.weights.folder)  # every weight gone: the whole chain is trained again
    third = inheriting(store=store)
    third.evaluate("C32k3-MP2-R32-DR-AP2", 0)
    assert third.trainings == 5 and ResultStore(store).trainings() == 10
    # the re-trained parent gives the same weights, so its stored row stands unchanged
    assert again.stored("C32k3-MP2-R32", 0).attempts == 1


def test_inheritance_is_cheaper_than_training_from_scratch() -> None:
    scratch = Evaluator(**KWARGS)
    inherit = inheriting()
    for arch in ("C32k3", "C32k3-C32k3", "C32k3-C32k3-MP2", "C32k3-C32k3-MP2-R64"):
        scratch.evaluate(arch, 0)
        inherit.evaluate(arch, 0)
    # 0.25 of the epochs per child past the first: the optimizer steps, counted by the store key
    steps = [r for r in inherit.result_store.rows()]
    assert len(steps) == 4 and inherit.trainings == scratch.trainings == 4


def test_the_store_never_mixes_inherited_and_from_scratch_results(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    inherit = inheriting(store=store)
    inherit.evaluate("C32k3-R32", 0)
    scratch = Evaluator(**KWARGS, store=store)
    assert scratch.lookup("C32k3-R32", 0) is None and scratch.lookup("C32k3", 0) is None
    assert inherit.config_key != scratch.config_key
    assert inheriting(store=store, inherit_epochs=0.5).lookup("C32k3-R32", 0) is None


def test_a_resumed_search_with_inheritance_replays_without_training(tmp_path: Path) -> None:
    import json

    from agents.cli import main

    out = tmp_path / "run"
    sets = cli_sets({**TINY_CHILD, "threads": 1, "inherit": True})
    args = ["search", "--agent", "random", "--budget", "6", "--out", str(out), *sets]
    assert main(args) == 0
    history = (out / "history.jsonl").read_text()
    ledger = ResultStore(out / "results.sqlite").trainings()
    assert ledger == 6 and json.loads((out / "summary.json").read_text())["trainings"] == 6
    assert main(args) == 0
    assert (out / "history.jsonl").read_text() == history
    assert ResultStore(out / "results.sqlite").trainings() == ledger
    assert '"inherit_epochs"' in next(ResultStore(out / "results.sqlite").rows()).config


def test_a_remote_worker_trains_one_child_from_the_weights_it_is_sent() -> None:
    """A Ray task trains only the child it is given, from the prefix weights the driver sends (no
    shared disk), and sends its own back: the same child as one process trains."""
    import platform

    from nas_gym.config import ChildConfig
    from nas_gym.parallel import train_child

    kwargs = ChildConfig(**KWARGS, inherit=True, inherit_epochs=0.25)
    parent = train_child(kwargs, "C32k3-MP2", 0, 1)
    assert parent["status"] == "ok" and parent["weights"] and parent["host"] == platform.node()
    child = train_child(kwargs, "C32k3-MP2-R32", 0, 1, parent_weights=parent["weights"])
    scratch = train_child(kwargs, "C32k3-MP2-R32", 0, 1)  # nothing sent: from scratch, full epochs
    local = inheriting()
    local.evaluate("C32k3-MP2-R32", 0)  # trains C32k3, C32k3-MP2, then the child from its prefix
    assert local.trainings == 3
    assert child["accuracy"] == local.stored("C32k3-MP2-R32", 0).accuracy
    assert scratch["accuracy"] == Evaluator(**KWARGS).evaluate("C32k3-MP2-R32", 0).accuracy


def test_the_training_plan_lists_the_prefixes_an_inheriting_child_trains_first() -> None:
    evaluator = inheriting()
    assert evaluator.training_plan("C32k3-MP2-R32", 0) == ["C32k3", "C32k3-MP2", "C32k3-MP2-R32"]
    evaluator.evaluate("C32k3-MP2", 0)
    assert evaluator.training_plan("C32k3-MP2-R32", 0) == ["C32k3-MP2-R32"]
    assert evaluator.training_plan("C32k3-MP2", 0) == []
    assert Evaluator(**KWARGS).training_plan("C32k3-MP2-R32", 0) == ["C32k3-MP2-R32"]


def test_evolution_with_inheritance_never_trains_past_its_budget() -> None:
    """A direct evaluation whose missing prefixes would train past the budget is refused before it
    trains (it used to overshoot: 58-69 trainings for a budget of 56); the search ends there."""
    import gymnasium as gym

    from agents.common.tracked_env import TrackedEnv
    from agents.registry import run_agent

    env = gym.make("NASFashionMini-v0", store=None, **{**KWARGS, "inherit": True, "inherit_epochs": 0.25})
    tracked = TrackedEnv(env, 12)
    run_agent("evolution", tracked, 0)
    ledger = env.unwrapped.evaluator.result_store.trainings()
    assert tracked.exhausted and tracked.trainings == tracked.spent == ledger <= 12
    assert ledger >= 12 - env.unwrapped.vocabulary.max_layers  # it stopped only for want of room
