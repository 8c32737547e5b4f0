"""One-layer edits of an architecture: the neighbourhood local search walks and the mutation
regularized evolution and the predictor-guided search draw from.

An edit replaces a layer by a *different* vocabulary layer, inserts a layer at a position (while the
architecture is shorter than ``max_layers``), or removes a layer (leaving at least one). An edit
that makes the architecture invalid (a pool that shrinks the feature map below 1x1) is not a
neighbour. The HEAD action is not a layer, so it never appears.
"""

from __future__ import annotations

import numpy as np

from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["EDITS", "mutate", "neighbours"]

EDITS = ("replace", "insert", "remove")


def neighbours(arch: Architecture, vocabulary: Vocabulary, image_size: int) -> list[Architecture]:
    """Every valid architecture one edit away from ``arch``, each once, in a fixed order (replaces,
    then inserts, then removes, position by position)."""
    layers, old = vocabulary.layers, list(arch.layers)
    out: dict[str, Architecture] = {}
    candidates: list[tuple] = []
    for i, current in enumerate(old):
        candidates += [(*old[:i], layer, *old[i + 1 :]) for layer in layers if layer != current]
    if len(old) < vocabulary.max_layers:
        candidates += [(*old[:i], layer, *old[i:]) for i in range(len(old) + 1) for layer in layers]
    if len(old) > 1:
        candidates += [(*old[:i], *old[i + 1 :]) for i in range(len(old))]
    for layers_ in candidates:
        child = Architecture(tuple(layers_))
        key = str(child)
        if key != str(arch) and key not in out and vocabulary.is_valid(child, image_size):
            out[key] = child
    return list(out.values())


def mutate(
    arch: Architecture,
    vocabulary: Vocabulary,
    image_size: int,
    rng: np.random.Generator,
    attempts: int = 100,
) -> Architecture | None:
    """A valid child one layer edit away from ``arch``, or None after ``attempts`` invalid draws.

    The edit is drawn uniformly among those the length allows (:data:`EDITS`), then its position
    and layer uniformly. A draw that ``vocabulary.is_valid`` rejects (a pool that no longer fits) is
    drawn again.
    """
    layers = vocabulary.layers
    for _ in range(attempts):
        ops = ["replace"]
        if len(arch) < vocabulary.max_layers:
            ops.append("insert")
        if len(arch) > 1:
            ops.append("remove")
        op = ops[int(rng.integers(len(ops)))]
        old = list(arch.layers)
        if op == "replace":
            i = int(rng.integers(len(old)))
            choices = [layer for layer in layers if layer != old[i]]
            old[i] = choices[int(rng.integers(len(choices)))]
        elif op == "insert":
            i = int(rng.integers(len(old) + 1))
            old.insert(i, layers[int(rng.integers(len(layers)))])
        else:
            del old[int(rng.integers(len(old)))]
        child = Architecture(tuple(old))
        if vocabulary.is_valid(child, image_size):
            return child
    return None
