"""Tests of the experience replay tree (agents/replay_tree.py): invariants, sampling, persistence,
rendering, validation, and hypothesis properties over random episodes."""

from __future__ import annotations

import ast
import io
import json
import math
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

import agents.common.replay_tree as replay_tree_module
from agents.common.replay_tree import ReplayTree, TreeNode
from nas_gym import DEFAULT_VOCABULARY
from nas_gym.search_space import Architecture, ArchitectureSyntaxError

LAYER_TOKENS = [layer.token for layer in DEFAULT_VOCABULARY.layers]


def tree_of(*pairs: tuple[str, float]) -> ReplayTree:
    tree = ReplayTree()
    for arch, acc in pairs:
        tree.insert(arch, acc)
    return tree


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


# --------------------------------------------------------------------------------------- invariants


def test_repeated_inserts_keep_running_mean_and_count():
    tree = ReplayTree()
    assert tree.insert("R128-C32k3", 0.2) == (0.2, 1)
    tree.insert("R128-C32k3", 0.4)
    mean, count = tree.insert("R128-C32k3", 0.9)
    assert count == 3
    assert math.isclose(mean, 0.5)
    assert tree.get("R128-C32k3") == (mean, 3)
    assert len(tree) == 1
    assert tree.total_count == 3


def test_nested_inserts_keep_each_architecture_separate():
    tree = tree_of(("R128", 0.5), ("R128-C32k3", 0.7), ("R128-C32k3", 0.8), ("R128-C32k3-AP2", 0.1))
    assert tree.get("R128") == (0.5, 1)  # the children's scores did not touch the parent
    mean, count = tree.get("R128-C32k3")
    assert count == 2 and math.isclose(mean, 0.75)
    assert tree.get("R128-C32k3-AP2") == (0.1, 1)
    assert len(tree) == 3
    assert tree.total_count == 4
    assert tree.num_nodes == 3


def test_inner_prefixes_exist_but_are_not_scored():
    tree = tree_of(("R128-C32k3-AP2", 0.6))
    assert len(tree) == 1
    assert tree.num_nodes == 3
    for prefix in ("R128", "R128-C32k3"):
        node = tree.node(prefix)
        assert isinstance(node, TreeNode)
        assert node.count == 0 and not node.scored
        assert tree.get(prefix) is None
        assert prefix not in tree
    assert "R128-C32k3-AP2" in tree
    assert tree.node("R128-C32k3-AP2").token == "AP2"
    assert tree.node("C32k3") is None
    # scoring the prefix later makes it count, without changing its child
    tree.insert("R128", 0.3)
    assert len(tree) == 2
    assert tree.get("R128") == (0.3, 1)
    assert tree.get("R128-C32k3-AP2") == (0.6, 1)


def test_len_counts_distinct_scored_architectures():
    tree = ReplayTree()
    assert len(tree) == 0 and tree.total_count == 0 and tree.num_nodes == 0
    tree.insert("C32k3", 0.1)
    tree.insert("C32k3", 0.2)
    tree.insert("C64k3", 0.3)
    tree.insert("C64k3-MP2-DR", 0.4)
    assert len(tree) == 3
    assert tree.total_count == 4
    assert tree.num_nodes == 4  # C32k3, C64k3, MP2 (unscored), DR


def test_text_and_architecture_objects_reach_the_same_node():
    tree = ReplayTree()
    tree.insert(" R64s2-MP2 ", 0.5)
    tree.insert(Architecture.parse("R64s2-MP2"), 0.7)
    tree.insert(
        DEFAULT_VOCABULARY.architecture(DEFAULT_VOCABULARY.actions_of(Architecture.parse("R64s2-MP2"))), 0.6
    )
    assert len(tree) == 1
    mean, count = tree.get(Architecture.parse("R64s2-MP2"))
    assert count == 3 and math.isclose(mean, 0.6)
    assert list(a for a, _, _ in tree.architectures()) == ["R64s2-MP2"]


# ---------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), -float("inf"), -0.01, 1.0001, 2, "0.5", None, True]
)
def test_insert_rejects_accuracies_outside_0_1(bad):
    tree = ReplayTree()
    with pytest.raises(ValueError, match="accuracy") as info:
        tree.insert("C32k3", bad)
    assert repr(bad) in str(info.value)
    assert "C32k3" in str(info.value)
    assert len(tree) == 0 and tree.num_nodes == 0  # nothing was created


@pytest.mark.parametrize("good", [0, 1, 0.0, 1.0, np.float32(0.25), np.float64(0.75)])
def test_insert_accepts_numbers_in_0_1(good):
    tree = ReplayTree()
    mean, count = tree.insert("C32k3", good)
    assert count == 1 and mean == float(good) and type(mean) is float


def test_bad_architecture_text_raises_syntax_error_naming_the_token():
    tree = ReplayTree()
    with pytest.raises(ArchitectureSyntaxError, match="C32k"):
        tree.insert("R128-C32k", 0.5)
    with pytest.raises(ArchitectureSyntaxError):
        tree.get("nope")
    assert tree.num_nodes == 0


@pytest.mark.parametrize("empty", ["", "   ", Architecture()])
def test_empty_architecture_is_rejected(empty):
    tree = ReplayTree()
    with pytest.raises(ValueError, match="empty"):
        tree.insert(empty, 0.5)
    with pytest.raises(ValueError, match="empty"):
        tree.get(empty)
    assert empty not in tree


def test_non_text_architecture_is_a_type_error():
    with pytest.raises(TypeError):
        ReplayTree().insert(["C32k3"], 0.5)  # type: ignore[arg-type]


def test_contains_is_false_for_malformed_or_foreign_items():
    tree = tree_of(("C32k3", 0.5))
    assert "C32k3" in tree
    assert Architecture.parse("C32k3") in tree
    assert "C32k" not in tree
    assert 42 not in tree
    assert None not in tree


# ------------------------------------------------------------------------------------------ sampling


def test_uniform_sampling_frequencies():
    # one architecture has many observations and inner prefixes exist: neither changes uniformity
    tree = ReplayTree()
    for _ in range(50):
        tree.insert("R128", 0.9)
    tree.insert("C32k3-AP2", 0.1)  # creates the unscored prefix C32k3
    tree.insert("R64-R64-MP2", 0.5)
    rng = np.random.default_rng(1234)
    draws = tree.sample(rng, k=6000)
    assert len(draws) == 6000
    counts = Counter(arch for arch, _ in draws)
    assert set(counts) == {"R128", "C32k3-AP2", "R64-R64-MP2"}
    for arch in counts:  # expected 2000 each, sd ~37
        assert abs(counts[arch] - 2000) < 150, counts
    assert all(mean == tree.get(arch)[0] for arch, mean in draws)


def test_temperature_sampling_prefers_the_better_architecture():
    tree = tree_of(("C32k3", 0.9), ("C64k3", 0.5), ("C128k3", 0.7))
    rng = np.random.default_rng(7)
    draws = Counter(arch for arch, _ in tree.sample(rng, k=6000, temperature=0.1))
    weights = {a: math.exp(m / 0.1) for a, m, _ in tree.architectures()}
    total = sum(weights.values())
    for arch, w in weights.items():
        assert abs(draws[arch] / 6000 - w / total) < 0.02, draws
    assert draws["C32k3"] > draws["C128k3"] > draws["C64k3"]
    # a huge temperature is close to uniform, a tiny one always replays the best
    near_uniform = Counter(a for a, _ in tree.sample(rng, k=6000, temperature=1e6))
    assert all(abs(near_uniform[a] - 2000) < 150 for a in weights), near_uniform
    assert {a for a, _ in tree.sample(rng, k=200, temperature=1e-6)} == {"C32k3"}


def test_sampling_is_reproducible_with_the_same_seed():
    tree = tree_of(*((tok, i / 30) for i, tok in enumerate(LAYER_TOKENS)))
    for temperature in (None, 0.05):
        a = tree.sample(np.random.default_rng(3), k=50, temperature=temperature)
        b = tree.sample(np.random.default_rng(3), k=50, temperature=temperature)
        assert a == b


def test_sample_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="empty"):
        ReplayTree().sample(rng)
    tree = tree_of(("C32k3", 0.5))
    for bad_t in (0, 0.0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="temperature"):
            tree.sample(rng, temperature=bad_t)
    with pytest.raises(ValueError, match="k must"):
        tree.sample(rng, k=-1)
    with pytest.raises(TypeError, match="Generator"):
        tree.sample(np.random.RandomState(0))  # type: ignore[arg-type]
    assert tree.sample(rng, k=0) == []
    assert tree.sample(rng) == [("C32k3", 0.5)]


# ----------------------------------------------------------------------------------------------- best


def test_best_is_the_highest_mean():
    tree = tree_of(("R128", 0.5), ("R128-C32k3", 0.8), ("C64k3-AP2", 0.7), ("R128-C32k3-AP2", 0.6))
    assert tree.best() == ("R128-C32k3", 0.8, 1)


def test_best_ties_go_to_the_shorter_then_the_earlier():
    tree = tree_of(("C32k3-C32k3", 0.8), ("C64k3", 0.8), ("C128k3", 0.8), ("C32k3", 0.2))
    assert tree.best() == ("C64k3", 0.8, 1)
    tree = tree_of(("C128k3-MP2", 0.8), ("C64k3-MP2", 0.8))
    assert tree.best() == ("C128k3-MP2", 0.8, 1)


def test_best_min_count_ignores_lucky_single_trainings():
    tree = tree_of(("C32k3", 0.95), ("C64k3", 0.8), ("C64k3", 0.9), ("C128k3", 0.7), ("C128k3", 0.7))
    assert tree.best()[0] == "C32k3"
    assert tree.best(min_count=2) == ("C64k3", pytest.approx(0.85), 2)
    assert tree.best(min_count=3) is None
    assert ReplayTree().best() is None
    with pytest.raises(ValueError, match="min_count"):
        tree.best(min_count=0)


# ---------------------------------------------------------------------------------------- persistence


def sample_tree() -> ReplayTree:
    tree = ReplayTree()
    for arch, accuracy in [
        ("R128", 0.1),
        ("R128-C32k3", 0.2),
        ("R128-C32k3-C32k3", 0.3),
        ("R128", 0.2),
        ("R128-C32k3", 1 / 3),
    ]:
        tree.insert(arch, accuracy)
    tree.insert("C64k3-AP2-DR", 0.1 + 0.2)  # 0.30000000000000004 must survive
    tree.insert("R128", 2 / 7)
    return tree


def test_save_load_round_trip_is_equal(tmp_path: Path):
    tree = sample_tree()
    path = tmp_path / "tree.json"
    tree.save(path)
    loaded = ReplayTree.load(path)
    assert loaded == tree
    assert list(loaded.architectures()) == list(tree.architectures())  # bit-exact floats
    assert loaded.total_count == tree.total_count
    assert loaded.num_nodes == tree.num_nodes
    assert loaded.best() == tree.best()
    assert loaded.root == tree.root  # the whole node structure, unscored prefixes included
    assert loaded.sample(np.random.default_rng(1), 20) == tree.sample(np.random.default_rng(1), 20)
    assert [p.name for p in tmp_path.iterdir()] == ["tree.json"]  # no temp file left behind


def test_saved_json_content(tmp_path: Path):
    tree = sample_tree()
    path = tmp_path / "tree.json"
    tree.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "nas_gym.replay_tree" and data["version"] == 1
    entries = {e["arch"]: e for e in data["architectures"]}
    assert set(entries) == {a for a, _, _ in tree.architectures()}
    assert "C64k3" not in entries  # an unscored prefix is implied, not stored
    assert entries["C64k3-AP2-DR"] == {"arch": "C64k3-AP2-DR", "mean": 0.1 + 0.2, "count": 1}
    assert entries["R128"]["count"] == 3
    assert entries["R128"]["mean"] == tree.get("R128")[0]


def test_equality_sees_means_counts_and_order():
    assert ReplayTree() == ReplayTree()
    a, b = sample_tree(), sample_tree()
    assert a == b and not (a != b)
    b.insert("R128", 0.5)
    assert a != b
    assert tree_of(("C32k3", 0.5), ("C64k3", 0.5)) != tree_of(("C64k3", 0.5), ("C32k3", 0.5))
    assert tree_of(("C32k3", 0.5)) != tree_of(("C32k3", 0.5000000000000001))
    assert ReplayTree() != "a tree"


def test_save_overwrites_and_a_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "tree.json"
    tree_of(("C32k3", 0.5)).save(path)
    sample_tree().save(path)
    assert ReplayTree.load(path) == sample_tree()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(replay_tree_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        tree_of(("DR", 0.1)).save(path)
    monkeypatch.undo()
    assert ReplayTree.load(path) == sample_tree()
    assert [p.name for p in tmp_path.iterdir()] == ["tree.json"]


def document(entries) -> dict:
    return {"format": "nas_gym.replay_tree", "version": 1, "architectures": entries}


@pytest.mark.parametrize(
    "data, match",
    [
        ({}, "not a replay tree"),
        ({**document([]), "version": 99}, "version"),
        (document({}), "list"),
        (document([{"arch": "C32k3"}]), "keys"),
        (document([{"arch": "C32k3", "mean": 0.5, "count": 1}] * 2), "twice"),
        (document([{"arch": "C32k3", "mean": 1.5, "count": 1}]), "accuracy"),
        (document([{"arch": "C32k3", "mean": 0.5, "count": 0}]), "count"),
        (document([{"arch": "", "mean": 0.5, "count": 1}]), "empty"),
    ],
)
def test_from_dict_rejects_malformed_data(data, match):
    with pytest.raises(ValueError, match=match):
        ReplayTree.from_dict(data)


# ------------------------------------------------------------------------------------------ rendering


_NODE_LINE = re.compile(r'^  n(\d+) \[label="((?:[^"\\]|\\.)*)"(?:, [a-z]+=[a-z]+)*\];$')
_EDGE_LINE = re.compile(r"^  n(\d+) -> n(\d+);$")


def check_dot(dot: str, tree: ReplayTree) -> dict[int, str]:
    """Structural checks of the DOT text; returns {node id: label}."""
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph replay_tree {" and lines[-1] == "}"
    assert dot.count("{") == dot.count("}") == 1
    assert dot.count('"') % 2 == 0
    labels: dict[int, str] = {}
    parents: dict[int, int] = {}
    for line in lines[1:-1]:
        if m := _NODE_LINE.match(line):
            node_id = int(m[1])
            assert node_id not in labels, f"duplicate node id {node_id}"
            labels[node_id] = m[2]
        elif m := _EDGE_LINE.match(line):
            parent, child = int(m[1]), int(m[2])
            assert child not in parents, "a tree node has one parent"
            parents[child] = parent
        else:
            assert line in ("  rankdir=LR;", '  node [shape=box, fontname="monospace"];'), line
    assert len(labels) == tree.num_nodes + 1  # one line per node, the root included
    assert labels[0] == "input"
    assert set(parents) == set(labels) - {0}
    assert set(parents.values()) <= set(labels)
    # the edges rebuild the tree: each node's path of tokens is a stored prefix, with its own label
    paths: dict[int, str] = {}
    for node_id in labels:
        tokens, cursor = [], node_id
        while cursor != 0:
            tokens.append(labels[cursor].split("\\n")[0])
            cursor = parents[cursor]
        paths[node_id] = "-".join(reversed(tokens))
    del paths[0]
    assert len(set(paths.values())) == len(paths)
    for node_id, path in paths.items():
        assert tree.node(path) is not None
        stats = tree.get(path)
        expected = "not scored" if stats is None else f"{stats[0]:.2%}\\nn={stats[1]}"
        assert labels[node_id].endswith(expected), (path, labels[node_id])
    return labels


def test_dot_has_every_token_and_is_well_formed():
    tree = sample_tree()
    dot = tree.to_dot()
    labels = check_dot(dot, tree)
    tokens_in_labels = Counter(label.split("\\n")[0] for i, label in labels.items() if i != 0)
    # R128, C32k3, C32k3, C64k3, AP2, DR: C32k3 appears twice (R128-C32k3-C32k3)
    assert tokens_in_labels == Counter(["R128", "C32k3", "C32k3", "C64k3", "AP2", "DR"])
    assert "R128\\n" + f"{tree.get('R128')[0]:.2%}" + "\\nn=3" in dot
    assert 'C64k3\\nnot scored", style=dashed' in dot
    assert tree.to_dot() == dot  # deterministic


def test_dot_of_an_empty_tree():
    tree = ReplayTree()
    check_dot(tree.to_dot(), tree)


def test_rich_rendering_shows_tokens_means_and_counts():
    tree = sample_tree()
    text = render(tree.to_rich())
    for token in ("input", "R128", "C32k3", "C64k3", "AP2", "DR"):
        assert token in text
    mean, count = tree.get("R128")
    assert f"{mean:.2%}" in text and f"n={count}" in text
    assert "not scored" in text  # C64k3
    assert "more nodes" not in text


def test_rich_children_are_sorted_best_first_and_can_be_cut():
    tree = tree_of(("C32k3", 0.3), ("C64k3", 0.9), ("C128k3", 0.6), ("C64k3-MP2", 0.8), ("C64k3-MP2-DR", 0.7))
    text = render(tree.to_rich())
    assert text.index("C64k3") < text.index("C128k3") < text.index("C32k3")
    top = render(tree.to_rich(top_k=1))
    assert "C64k3" in top and "C128k3" not in top and "C32k3" not in top
    assert "… 2 more nodes" in top
    shallow = render(tree.to_rich(max_depth=1))
    assert "C128k3" in shallow and "MP2" not in shallow and "DR" not in shallow
    assert "… 2 more nodes" in shallow
    with pytest.raises(ValueError, match="top_k"):
        tree.to_rich(top_k=0)
    with pytest.raises(ValueError, match="max_depth"):
        tree.to_rich(max_depth=-1)


def test_module_imports_no_torch():
    source = Path(replay_tree_module.__file__).read_text(encoding="utf-8")
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    third_party = roots - set(sys.stdlib_module_names)
    assert third_party <= {"numpy", "rich", "nas_gym"}, third_party
    assert "from nas_gym.search_space import" in source and "import nas_gym\n" not in source


# ----------------------------------------------------------------------------------------- properties


accuracies = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_infinity=False)


@st.composite
def episodes(draw) -> list[tuple[list[int], list[float], bool]]:
    """Random episodes over the default vocabulary's layers: (actions, accuracies, all_prefixes).

    A small alphabet makes architectures repeat and share prefixes; ``all_prefixes=False`` inserts
    only the final architecture, leaving unscored inner prefixes.
    """
    alphabet = draw(st.integers(1, DEFAULT_VOCABULARY.head_action))
    action = st.integers(0, alphabet - 1)
    result = []
    for _ in range(draw(st.integers(1, 10))):
        actions = draw(st.lists(action, min_size=1, max_size=6))
        accs = draw(st.lists(accuracies, min_size=len(actions), max_size=len(actions)))
        result.append((actions, accs, draw(st.booleans())))
    return result


def fill(eps) -> tuple[ReplayTree, dict[str, list[float]]]:
    tree, reference = ReplayTree(), {}
    for actions, accs, all_prefixes in eps:
        arch = DEFAULT_VOCABULARY.architecture(actions)
        pairs = [(str(p), acc) for p, acc in zip(arch.prefixes(), accs, strict=True)]
        if not all_prefixes:
            pairs = pairs[-1:]
        for text, acc in pairs:
            tree.insert(text, acc)
            reference.setdefault(text, []).append(acc)
    return tree, reference


@settings(max_examples=100, deadline=None)
@given(episodes())
def test_property_means_counts_and_totals(eps):
    tree, reference = fill(eps)
    assert len(tree) == len(reference)
    assert tree.total_count == sum(len(v) for v in reference.values())
    assert [a for a, _, _ in tree.architectures()] == list(reference)  # first-scored order
    for arch, values in reference.items():
        mean, count = tree.get(arch)
        assert count == len(values)
        assert math.isclose(mean, sum(values) / len(values), rel_tol=1e-9, abs_tol=1e-12)
        assert 0.0 <= mean <= 1.0


@settings(max_examples=100, deadline=None)
@given(episodes())
def test_property_every_prefix_is_a_path(eps):
    tree, reference = fill(eps)
    prefixes = set()
    for arch in reference:
        for prefix in Architecture.parse(arch).prefixes():
            node = tree.node(prefix)
            assert node is not None and node.token == prefix[-1].token
            assert node.scored == (str(prefix) in reference)
            prefixes.add(str(prefix))
    assert tree.num_nodes == len(prefixes)  # no node off the stored paths


@settings(max_examples=60, deadline=None)
@given(episodes())
def test_property_save_load_round_trip(eps):
    tree, _ = fill(eps)
    assert ReplayTree.from_dict(json.loads(json.dumps(tree.to_dict()))) == tree
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tree.json"
        tree.save(path)
        loaded = ReplayTree.load(path)
    assert loaded == tree
    assert loaded.root == tree.root
    assert loaded.total_count == tree.total_count


@settings(max_examples=60, deadline=None)
@given(episodes(), st.integers(0, 2**32 - 1), st.sampled_from([None, 0.05, 1.0]))
def test_property_best_and_sample_agree_with_the_stored_values(eps, seed, temperature):
    tree, _ = fill(eps)
    stored = {a: (m, c) for a, m, c in tree.architectures()}
    arch, mean, count = tree.best()
    assert stored[arch] == (mean, count)
    length = len(Architecture.parse(arch))
    for other, (m, _) in stored.items():
        assert m <= mean
        if m == mean:
            assert len(Architecture.parse(other)) >= length
    for drawn, m in tree.sample(np.random.default_rng(seed), k=20, temperature=temperature):
        assert stored[drawn][0] == m
    dot = tree.to_dot()
    check_dot(dot, tree)
    text = render(tree.to_rich())
    assert all(token in text for token in {t for a in stored for t in a.split("-")})
