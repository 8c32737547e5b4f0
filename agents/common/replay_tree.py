"""The experience replay tree of the poster "Augmented Neural Architecture Search with REINFORCE".

Every node is a layer; every path from the root is an architecture; every node holds (1) the layer
token, (2) the mean validation accuracy R of the architecture that ends at that node and (3) how many
times that architecture was observed. The REINFORCE agent inserts every scored prefix of every
episode, and with probability ``p`` replays architectures sampled from the tree in its update
(the README's "The method"); ``agents.reinforce_uct`` searches the tree's counts and accuracies.

Why a tree and not a flat dict: the env scores every prefix ``a_1..a_t`` of an episode, so the
architectures of a search share long prefixes. The tree stores each shared prefix once, shows at a
glance which first layers led to good models (the poster's figure) and answers "which continuations
of this prefix were tried" by looking at one node's children.

A node with ``count == 0`` is an inner prefix that was never scored itself (an architecture loaded
from elsewhere, or inserted without its prefixes). Such nodes are never sampled and never "best".

This module is a pure data structure: it imports the standard library, numpy, rich and
:mod:`nas_gym.search_space` only (no torch), so it can be used and tested without a GPU stack.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from rich.tree import Tree

from nas_gym.search_space import Architecture

__all__ = ["ReplayTree", "TreeNode"]

#: The label of the root (the empty architecture: the input image before any layer).
ROOT_LABEL = "input"

_FORMAT = "nas_gym.replay_tree"
_VERSION = 1


@dataclass
class TreeNode:
    """One node: the layer ``token`` that ends the path, and the statistics of that path.

    ``mean`` is the running mean accuracy of the architecture ending here and ``count`` the number of
    accuracies averaged into it; ``count == 0`` marks a prefix that was never scored itself (its
    ``mean`` is then meaningless and kept at 0.0). ``children`` maps the next layer's token to its
    node, in the order the children were created.
    """

    token: str
    mean: float = 0.0
    count: int = 0
    children: dict[str, TreeNode] = field(default_factory=dict)

    @property
    def scored(self) -> bool:
        """True when the architecture ending at this node was observed at least once."""
        return self.count > 0


def _as_architecture(arch: str | Architecture) -> Architecture:
    """Parse text (``ArchitectureSyntaxError`` propagates) and reject the empty architecture.

    The empty architecture is the root: it has no layer and the env never scores it, so storing an
    accuracy for it would be a caller's bug.
    """
    if isinstance(arch, Architecture):
        parsed = arch
    elif isinstance(arch, str):
        parsed = Architecture.parse(arch)
    else:
        raise TypeError(f"architecture must be a str or an Architecture, got {type(arch).__name__}")
    if len(parsed) == 0:
        raise ValueError("empty architecture: a replay tree stores architectures of at least one layer")
    return parsed


def _check_accuracy(accuracy: Any, arch: str) -> float:
    """Return ``accuracy`` as a float; raise ``ValueError`` unless it is a finite number in [0, 1].

    A NaN or an out-of-range value would silently corrupt every later mean of that node (and the
    softmax of :meth:`ReplayTree.sample`), so it is refused at the door. ``bool`` is refused too:
    ``True`` is an ``int`` in Python but never an accuracy.
    """
    if isinstance(accuracy, bool) or not isinstance(accuracy, numbers.Real):
        raise ValueError(f"accuracy of {arch!r} must be a finite number in [0, 1], got {accuracy!r}")
    value = float(accuracy)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"accuracy of {arch!r} must be a finite number in [0, 1], got {accuracy!r}")
    return value


def _is_int(value: Any) -> bool:
    """An integer (numpy's included) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _dot_quote(text: str) -> str:
    """Escape text for a double-quoted DOT string (backslashes first, then quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


class ReplayTree:
    """A prefix tree of scored architectures with their mean accuracy and observation count.

    Besides the tree, the instance keeps an index of its scored nodes in the order each architecture
    was *first* scored. The index makes ``get``/``in``/``len`` O(1) and sampling O(n) without a tree
    walk, and the order is what breaks ties in :meth:`best` and what sampling indexes into, so it is
    part of the state: it is saved, restored and compared by ``==``.

    How the REINFORCE agent uses it: :meth:`insert` for every prefix a step trained, with its
    reward, and :meth:`sample` of ``replay_k`` architectures for an update that replays.
    """

    def __init__(self) -> None:
        self._root = TreeNode("")
        self._scored: dict[str, TreeNode] = {}  # canonical arch text -> node, first-scored order
        self._total = 0

    # ----------------------------------------------------------------------------------- updates

    def insert(self, arch: str | Architecture, accuracy: float) -> tuple[float, int]:
        """Record one observed ``accuracy`` of ``arch``; return its new ``(mean, count)``.

        The path is created as needed; only the node that ends ``arch`` changes (its prefixes keep
        their own statistics: a child's score says nothing new about the parent, which the env
        scores separately). The mean is a running mean, so nothing grows with the count.
        """
        parsed = _as_architecture(arch)
        key = str(parsed)
        value = _check_accuracy(accuracy, key)
        node = self._scored.get(key)
        if node is None:
            node = self._scored[key] = self._make_path(parsed)
        node.count += 1
        # the running mean of values in [0, 1] stays in [0, 1] up to rounding; the clamp makes sure a
        # tree we produced always passes from_dict's validation
        node.mean = min(1.0, max(0.0, node.mean + (value - node.mean) / node.count))
        self._total += 1
        return node.mean, node.count

    def _make_path(self, arch: Architecture) -> TreeNode:
        """The node that ends ``arch``, creating the missing nodes of its path (unscored)."""
        node = self._root
        for layer in arch:
            child = node.children.get(layer.token)
            if child is None:
                child = node.children[layer.token] = TreeNode(layer.token)
            node = child
        return node

    # ----------------------------------------------------------------------------------- queries

    def __len__(self) -> int:
        """The number of distinct scored architectures (inner, never-scored prefixes excluded)."""
        return len(self._scored)

    def __contains__(self, arch: object) -> bool:
        """True when ``arch`` was scored; malformed text, other types and "" are simply not in it."""
        if not isinstance(arch, str | Architecture):
            return False
        try:
            return str(_as_architecture(arch)) in self._scored
        except ValueError:
            return False

    def __repr__(self) -> str:
        return f"<ReplayTree: {len(self)} architectures, {self._total} observations>"

    @property
    def total_count(self) -> int:
        """The number of accuracies inserted so far (the sum of all counts)."""
        return self._total

    @property
    def root(self) -> TreeNode:
        """The root node (the empty architecture); read it, do not mutate it."""
        return self._root

    @property
    def num_nodes(self) -> int:
        """The number of nodes below the root, scored or not (one per distinct prefix)."""
        return _count_below(self._root)

    def get(self, arch: str | Architecture) -> tuple[float, int] | None:
        """``(mean, count)`` of a scored architecture, or None when it was never scored."""
        node = self._scored.get(str(_as_architecture(arch)))
        return None if node is None else (node.mean, node.count)

    def node(self, arch: str | Architecture) -> TreeNode | None:
        """The node that ends ``arch`` when the path exists (scored or not), else None.

        The node is the tree's own (its children included): read it, do not mutate it.
        """
        node = self._root
        for layer in _as_architecture(arch):
            child = node.children.get(layer.token)
            if child is None:
                return None
            node = child
        return node

    def architectures(self) -> Iterator[tuple[str, float, int]]:
        """``(arch text, mean, count)`` of every scored architecture, in first-scored order."""
        for key, node in self._scored.items():
            yield key, node.mean, node.count

    def best(self, min_count: int = 1) -> tuple[str, float, int] | None:
        """The scored architecture with the highest mean among those seen ``min_count`` times or more.

        Ties go to the shorter architecture (fewer layers: cheaper to train, same accuracy), then to
        the one scored first. Returns ``(arch text, mean, count)``, or None when none qualifies.
        ``min_count > 1`` guards against one lucky training of a child.
        """
        if not _is_int(min_count) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        best: tuple[str, TreeNode] | None = None
        best_len = 0
        for key, node in self._scored.items():
            if node.count < min_count:
                continue
            length = key.count("-") + 1
            if best is None or node.mean > best[1].mean or (node.mean == best[1].mean and length < best_len):
                best, best_len = (key, node), length
        return None if best is None else (best[0], best[1].mean, best[1].count)

    # ---------------------------------------------------------------------------------- sampling

    def sample(
        self, rng: np.random.Generator, k: int = 1, temperature: float | None = None
    ) -> list[tuple[str, float]]:
        """Draw ``k`` scored architectures (with replacement) for replay; return ``(arch, mean)`` pairs.

        - ``temperature=None``: uniform over the distinct scored architectures. Each architecture
          counts once whatever its count, so a prefix the controller keeps re-generating does not
          crowd out the rest of the tree.
        - ``temperature=T > 0``: ``P(arch) ∝ exp(mean / T)``, a softmax over mean accuracy that replays
          good architectures more. Accuracies lie in [0, 1], so ``T`` is on that scale: ``T = 0.01``
          makes a 1-point accuracy gap a factor e, large ``T`` tends to uniform, small ``T`` to
          always replaying the best.

        Never-scored inner prefixes are never drawn. Raises ``ValueError`` on an empty tree, on
        ``k < 0`` and on a temperature that is not a finite number > 0.
        """
        _check_rng(rng)
        if not _is_int(k) or k < 0:
            raise ValueError(f"k must be an int >= 0, got {k!r}")
        if not self._scored:
            raise ValueError("cannot sample from an empty replay tree")
        entries = list(self._scored.items())
        if temperature is None:
            picks = rng.integers(0, len(entries), size=int(k))
        else:
            if (
                isinstance(temperature, bool)
                or not isinstance(temperature, numbers.Real)
                or not (math.isfinite(float(temperature)) and float(temperature) > 0.0)
            ):
                raise ValueError(f"temperature must be a finite number > 0 or None, got {temperature!r}")
            means = np.array([node.mean for _, node in entries], dtype=np.float64)
            logits = (means - means.max()) / float(temperature)  # shift by the max: no overflow
            weights = np.exp(logits)
            picks = rng.choice(len(entries), size=int(k), p=weights / weights.sum())
        return [(entries[i][0], entries[i][1].mean) for i in picks.tolist()]

    # ------------------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the scored architectures in first-scored order.

        A flat list is a complete description: every node lies on the path of a scored architecture
        (nodes are only created by inserts), so the inner prefixes follow from the list, and
        replaying it in order recreates the same children order and tie-break order. It is also
        easy to read and diff. Floats are written as Python's shortest repr and read back bit-exact.
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "architectures": [
                {"arch": key, "mean": node.mean, "count": node.count} for key, node in self._scored.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayTree:
        """Rebuild a tree from :meth:`to_dict` output; raise ``ValueError`` on anything malformed."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a replay tree: expected a dict with format={_FORMAT!r}")
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported replay tree version {data.get('version')!r} (expected {_VERSION})")
        entries = data.get("architectures")
        if not isinstance(entries, list):
            raise ValueError("replay tree 'architectures' must be a list")
        tree = cls()
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or set(entry) != {"arch", "mean", "count"}:
                raise ValueError(f"replay tree entry {i} must have exactly the keys arch, mean, count")
            parsed = _as_architecture(entry["arch"])
            key = str(parsed)
            if key in tree._scored:
                raise ValueError(f"replay tree entry {i}: architecture {key!r} is listed twice")
            mean = _check_accuracy(entry["mean"], key)
            count = entry["count"]
            if not _is_int(count) or count < 1:
                raise ValueError(f"replay tree entry {i} ({key!r}): count must be an int >= 1, got {count!r}")
            node = tree._make_path(parsed)
            node.mean, node.count = mean, int(count)
            tree._scored[key] = node
            tree._total += int(count)
        return tree

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tree as JSON, atomically: a crash mid-save leaves the previous file intact.

        The text goes to a temporary file in the same folder (so the rename stays on one file
        system), is flushed to disk, then replaces ``path`` with ``os.replace``.
        """
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            # mkstemp makes the file private (0600); give it the mode any other output gets
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReplayTree:
        """Read a tree written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __eq__(self, other: object) -> bool:
        """Same architectures, same means (bit-exact), same counts, same first-scored order."""
        if not isinstance(other, ReplayTree):
            return NotImplemented
        return list(self.architectures()) == list(other.architectures())

    __hash__ = None  # type: ignore[assignment]  # mutable

    # -------------------------------------------------------------------------------- rendering

    @staticmethod
    def _ranked(node: TreeNode) -> list[TreeNode]:
        """Children best first: scored before never-scored, then by mean descending, then creation order."""
        return sorted(node.children.values(), key=lambda c: (not c.scored, -c.mean))

    def to_rich(self, max_depth: int | None = None, top_k: int | None = None) -> Tree:
        """A :class:`rich.tree.Tree` for the terminal: each label shows token, mean (%) and count.

        Children are sorted by mean accuracy, best first. ``max_depth`` (layers) and ``top_k``
        (children per node) keep a big tree readable; what they cut is summarised as "… N more nodes"
        (the hidden nodes and everything below them) so the reader knows the tree goes on.
        ``top_k`` ranks children by their own mean, so a good architecture below a weak prefix can
        be cut: use :meth:`best` to find it.
        """
        if max_depth is not None and (not _is_int(max_depth) or max_depth < 0):
            raise ValueError(f"max_depth must be an int >= 0 or None, got {max_depth!r}")
        if top_k is not None and (not _is_int(top_k) or top_k < 1):
            raise ValueError(f"top_k must be an int >= 1 or None, got {top_k!r}")

        root = Tree(
            Text.assemble(
                (ROOT_LABEL, "bold"), (f"  {len(self)} architectures, {self._total} observations", "dim")
            )
        )
        stack: list[tuple[TreeNode, Tree, int]] = [(self._root, root, 0)]
        while stack:
            node, branch, depth = stack.pop()
            if not node.children:
                continue
            if max_depth is not None and depth >= max_depth:
                branch.add(Text(f"… {_count_below(node)} more nodes", style="dim"))
                continue
            ranked = self._ranked(node)
            shown = ranked if top_k is None else ranked[:top_k]
            for child in shown:
                stack.append((child, branch.add(_rich_label(child)), depth + 1))
            hidden = sum(1 + _count_below(c) for c in ranked[len(shown) :])
            if hidden:
                branch.add(Text(f"… {hidden} more nodes", style="dim"))
        return root

    def to_dot(self) -> str:
        """Graphviz DOT text of the whole tree (render with ``dot -Tsvg tree.dot -o tree.svg``).

        Node ids are ``n0`` (the root, labelled "input"), ``n1``, ... in depth-first order, so the
        text is deterministic for a given tree. Labels are quoted and escaped; never-scored prefixes
        are drawn dashed.
        """
        lines = [
            "digraph replay_tree {",
            "  rankdir=LR;",
            '  node [shape=box, fontname="monospace"];',
            f'  n0 [label="{ROOT_LABEL}", shape=ellipse];',
        ]
        edges: list[str] = []
        # depth-first preorder; each stack entry carries its parent's id
        stack: list[tuple[int, TreeNode]] = [(0, c) for c in reversed(self._root.children.values())]
        next_id = 1
        while stack:
            parent_id, node = stack.pop()
            node_id, next_id = next_id, next_id + 1
            token = _dot_quote(node.token)
            if node.scored:
                lines.append(f'  n{node_id} [label="{token}\\n{node.mean:.2%}\\nn={node.count}"];')
            else:
                lines.append(f'  n{node_id} [label="{token}\\nnot scored", style=dashed];')
            edges.append(f"  n{parent_id} -> n{node_id};")
            stack.extend((node_id, c) for c in reversed(node.children.values()))
        return "\n".join([*lines, *edges, "}"]) + "\n"


def _rich_label(node: TreeNode) -> Text:
    if node.scored:
        return Text.assemble((node.token, "bold"), "  ", (f"{node.mean:.2%}", "green"), f"  n={node.count}")
    return Text.assemble((node.token, "bold"), "  ", ("not scored", "dim"))


def _count_below(node: TreeNode) -> int:
    total, stack = 0, list(node.children.values())
    while stack:
        child = stack.pop()
        total += 1
        stack.extend(child.children.values())
    return total
