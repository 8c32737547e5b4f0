"""A surrogate benchmark of the full space: a model from architecture to (accuracy, train seconds).

Fitted to real trainings sampled across the 24-action, 15-layer space (:mod:`nas_gym.build.samples`), as
NAS-Bench-301 did for the DARTS space. The model (:data:`MODELS`) is an ensemble of small MLPs
(fitted with torch), gradient-boosted trees (fitted with LightGBM, exported to arrays) or the two
averaged, over fixed architecture features (layer counts by resolution stage, positions, depth,
downsamplings, final width, log parameters); it is shipped as plain arrays (``.npz`` read with
``allow_pickle=False``: no pickled code runs at load time). Predictions need numpy only, are
deterministic, and are cached per architecture.

:class:`SurrogateEvaluator` answers an env's requests from the model as :class:`TableEvaluator`
answers from a table: the first request of an (architecture, seed) is a "training", kept in a
result store (so searches resume), ``train_seconds`` add the predicted training time. With
``noise=True`` each seed's accuracy is the prediction plus Gaussian noise of the seed-to-seed
spread measured at that predicted accuracy (:meth:`Surrogate.seed_spread`; a file without the
curve: the pooled spread), drawn from a generator seeded by (architecture, seed): deterministic too.

:class:`FidelitySurrogate` (``NASSurrogate-v2``) answers at any number of epochs from 1 to 9:
one head per measured fidelity and per epoch of a 9-epoch training's curve; the evaluator files
each fidelity under its own key and draws a seed's noise per (architecture, seed, epochs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.answers import Answer, StoredAnswers
from nas_gym.evaluation import check_fixed_epochs
from nas_gym.search_space import DEFAULT_VOCABULARY, KINDS, Architecture, Vocabulary
from nas_gym.store import KeyedStore, ResultStore

__all__ = [
    "MODELS",
    "FidelitySurrogate",
    "SHIPPED_SURROGATE",
    "SHIPPED_SURROGATES",
    "Surrogate",
    "SurrogateEvaluator",
    "features",
    "surrogate_path",
]

SHIPPED_SURROGATE = Path(__file__).parent / "data" / "surrogate" / "fashion_mini_surrogate.npz"
# the shipped files by name, one per version of the surrogate env id (NASSurrogate-v0, -v1): a
# version's file never changes, so results under one id stay comparable
SHIPPED_SURROGATES = {
    "v0": SHIPPED_SURROGATE,
    "v1": SHIPPED_SURROGATE.with_name("fashion_mini_surrogate_v1.npz"),
    "v2": SHIPPED_SURROGATE.with_name("fashion_mini_surrogate_v2.npz"),
}


def surrogate_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The file behind ``surrogate=``: ``None`` is v0's, a name in :data:`SHIPPED_SURROGATES` that
    version's shipped file, anything else a path."""
    if path is None:
        return SHIPPED_SURROGATE
    if isinstance(path, str) and path in SHIPPED_SURROGATES:
        return SHIPPED_SURROGATES[path]
    return Path(path).expanduser()


FORMAT = "nas-gym-surrogate/3"
# a surrogate over fidelities (:class:`FidelitySurrogate`, NASSurrogate-v2): one output per question
FIDELITY_FORMAT = "nas-gym-surrogate-fidelity/1"
# the model behind the features: an MLP ensemble, boosted trees, or the two averaged (meta "blend":
# the trees' weight); a file without "model" is an MLP ensemble
MODELS = ("mlp", "trees", "mlp+trees")
_STAGES = 4  # resolution stages: before the 1st, 2nd, 3rd downsampling, and after


def _layer_table(vocabulary: Vocabulary) -> dict[Any, tuple[int, int, int | None, int, bool, bool, bool]]:
    """Per layer of ``vocabulary``: (token index, kind, channels or None, kernel^2 of a conv (else
    0), is a residual block, has stride 2, downsamples), looked up once per layer in :func:`features`."""
    table = {}
    for i, layer in enumerate(vocabulary.layers):
        kind = KINDS[layer.feature_kind]
        table[layer] = (
            i,
            layer.feature_kind,
            getattr(layer, "channels", None),  # None: the layer keeps its input's channels
            layer.kernel**2 if kind.startswith("conv") else 0,  # type: ignore[union-attr]
            kind.startswith("residual"),
            kind == "residual s2",
            layer.downsamples,
        )
    return table


_DEFAULT_TABLE = _layer_table(DEFAULT_VOCABULARY)


def features(arch: Architecture, image_size: int, vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> np.ndarray:
    """A fixed-length description of ``arch``: what a small model needs to rank architectures.

    Per layer token: its count; per (kind, stage): counts weighted by log2 of the channels (width
    where it matters); depth, downsamplings, final spatial size, final channels, log parameter
    proxy, the classifier's input width, the longest run of plain convolutions, the smallest feature
    map, the first layer's kind and the kinds present.
    """
    table = _DEFAULT_TABLE if vocabulary is DEFAULT_VOCABULARY else _layer_table(vocabulary)
    counts = np.zeros(len(table))
    staged = np.zeros((8, _STAGES))
    stage, channels, size, params = 0, 1, image_size, 0.0
    first = np.zeros(8)
    present = np.zeros(8)
    run = plain = 0
    for i, layer in enumerate(arch):
        index, kind, layer_channels, kernel2, residual, stride2, downsample = table[layer]
        counts[index] += 1
        c = channels if layer_channels is None else layer_channels
        staged[kind, min(stage, _STAGES - 1)] += 1 + math.log2(c) / 7
        if kernel2:
            params += channels * c * kernel2
        elif residual:
            params += 9 * (channels * c + c * c) + (channels * c if (stride2 or channels != c) else 0)
        if layer_channels is not None:
            channels = c
        if downsample:
            stage += 1
        if i == 0:
            first[kind] = 1
        present[kind] = 1
        run = run + 1 if kernel2 else 0
        plain = max(plain, run)
    sizes = arch.spatial_sizes(image_size) if len(arch) else [image_size]
    size = sizes[-1]
    scalars = np.array(
        [
            len(arch) / 15, stage / 3, size / image_size, math.log2(channels) / 7, math.log1p(params) / 15,
            math.log2(size * size * channels) / 14,  # the width of the classifier's input
            plain / 15,  # the longest run of plain convolutions (no shortcut)
            min(sizes) / image_size,  # the smallest feature map on the way
        ]
    )  # fmt: skip
    return np.concatenate([counts, staged.ravel(), first, present, scalars]).astype(np.float32)


class _Trees:
    """Boosted regression trees as plain arrays, one row per tree and one column per node: the
    feature a node tests, its threshold (a row goes left when its value is at most that), its two
    children and, at a leaf, the value. A leaf is its own child, so every row walks ``depth`` steps
    and rests at its leaf; the prediction is the sum of the leaves reached."""

    FIELDS = ("feature", "threshold", "left", "right", "value")

    def __init__(self, feature, threshold, left, right, value) -> None:  # type: ignore[no-untyped-def]
        self.feature, self.threshold = feature.astype(np.int64), threshold.astype(np.float64)
        self.left, self.right = left.astype(np.int64), right.astype(np.int64)
        self.value = value.astype(np.float64)
        self.depth = self._depth()
        # the tables raveled, children as flat indices (tree * width + node): what a walk reads
        width = self.feature.shape[1]
        base = (np.arange(len(self.feature)) * width)[:, None]
        self._roots = base[:, 0].astype(np.intp)
        self._feature = self.feature.ravel().astype(np.intp)
        self._threshold, self._value = self.threshold.ravel(), self.value.ravel()
        # a node's two children side by side: node * 2 + (goes right) is where a row goes next
        children = np.stack([(self.left + base).ravel(), (self.right + base).ravel()], axis=1)
        self._child = children.ravel().astype(np.intp)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> _Trees:
        return cls(*(arrays[f"{prefix}_{name}"] for name in cls.FIELDS))

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_{name}": getattr(self, name) for name in self.FIELDS}

    def _depth(self) -> int:
        """The longest root-to-leaf walk; checks that each child is numbered after its parent (as
        the export numbers them, in preorder) and within the table."""
        width = self.feature.shape[1]
        depth = np.zeros(self.feature.shape, dtype=np.int64)
        trees = np.arange(len(self.feature))
        for j in range(width):
            inner = (self.left[:, j] != j) | (self.right[:, j] != j)  # a leaf is its own two children
            for child in (self.left[inner, j], self.right[inner, j]):
                if np.any(child <= j) or np.any(child >= width):
                    raise ValueError(
                        "surrogate trees are malformed: a child is not numbered after its parent"
                    )
                depth[trees[inner], child] = depth[inner, j] + 1
        return int(depth.max())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, trees = len(x), len(self._roots)
        # (row, tree) pairs walk the raveled tables with flat indices (``take`` on 1-d arrays is
        # the fastest numpy gather); a row's features start at row * width
        node = np.tile(self._roots, n)
        offset = np.repeat(np.arange(n, dtype=np.intp) * x.shape[1], trees)
        flat = np.ascontiguousarray(x).ravel()
        for _ in range(self.depth):
            right = flat.take(offset + self._feature.take(node)) > self._threshold.take(node)
            node = self._child.take(2 * node + right)
        return self._value.take(node).reshape(n, trees).sum(axis=1)


class Surrogate:
    """An ensemble of MLPs (tanh) mapping :func:`features` to (accuracy, log train seconds)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.image_size = int(meta["image_size"])
        self.mean, self.std = arrays["x_mean"], arrays["x_std"]
        self.y_mean, self.y_std = arrays["y_mean"], arrays["y_std"]
        self.accuracy_p, self.accuracy_q = arrays["accuracy_p"], arrays["accuracy_q"]
        self.accuracy_bounds = (float(self.accuracy_q[0]), float(self.accuracy_q[-1]))
        self.model = str(meta.get("model", "mlp"))
        if self.model not in MODELS:
            raise ValueError(f"surrogate model {self.model!r} is not one of {', '.join(MODELS)}")
        self.weights = []
        if "mlp" in self.model:
            self.weights = _stacked_members(arrays, int(meta["members"]), int(meta["layers"]))
        self.trees = [_Trees.from_arrays(arrays, f"t{h}") for h in range(2)] if "trees" in self.model else []
        self.blend = float(meta.get("blend", 0.5)) if self.model == "mlp+trees" else None
        self.seed_std = float(meta.get("seed_std", 0.0))
        # the seed spread by accuracy (a file without the curve: the pooled spread everywhere)
        self.noise_accuracy = arrays.get("noise_accuracy", np.zeros(1))
        self.noise_std = arrays.get("noise_std", np.full(1, self.seed_std))
        self.digest = _digest(arrays)
        self._cache: dict[str, tuple[float, float]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Surrogate:
        p = surrogate_path(path)
        arrays, meta = _read(p)
        if meta.get("format") != FORMAT:
            raise ValueError(
                f"{p} is a surrogate of format {meta.get('format', '1')!r}, fitted on other features; "
                f"this version reads {FORMAT!r}: fit it again with benchmarks/surrogate.py --out"
            )
        return cls(arrays, meta)

    def save(self, path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
        meta = np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)
        np.savez_compressed(path, **{"meta": meta, **arrays})  # type: ignore[arg-type]

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """The model's two outputs (accuracy's normal score, log seconds) of feature rows ``x``."""
        if self.model == "mlp":
            return self._mlp(x) * self.y_std + self.y_mean
        if self.model == "trees":
            return self._boosted(x) * self.y_std + self.y_mean
        assert self.blend is not None
        return ((1 - self.blend) * self._mlp(x) + self.blend * self._boosted(x)) * self.y_std + self.y_mean

    def _mlp(self, x: np.ndarray) -> np.ndarray:
        return _ensemble((x - self.mean) / self.std, self.weights)

    def _boosted(self, x: np.ndarray) -> np.ndarray:
        return np.stack([trees(x) for trees in self.trees], axis=1)

    def seed_spread(self, accuracy: float) -> float:
        """The standard deviation of one seed's accuracy about the mean, at ``accuracy``: the
        measured spread of the two-seed architectures there (:func:`_noise_curve`)."""
        return float(np.interp(accuracy, self.noise_accuracy, self.noise_std))

    def predict_many(self, archs: list[Architecture | str]) -> np.ndarray:
        """(accuracy, train seconds) per architecture, shape (n, 2)."""
        parsed = [Architecture.parse(a) if isinstance(a, str) else a for a in archs]
        x = np.stack([features(a, self.image_size) for a in parsed]).astype(np.float64)
        y = self._forward(x)
        return np.stack([self._accuracy(y[:, 0]), np.exp(y[:, 1])], axis=1)

    def _accuracy(self, z: np.ndarray) -> np.ndarray:
        """The accuracy head's output (a normal score) as an accuracy: its probability under the
        standard normal, read off the measured accuracies' quantiles. Strictly monotone, so the
        ranking is the model's; bounded by the measured range widened by 1 pp, so no architecture,
        however far from the data, is promised more than 1 pp above the best training."""
        return _score_to_accuracy(z, self.accuracy_p, self.accuracy_q)

    def predict(self, arch: Architecture | str, key: str | None = None) -> tuple[float, float]:
        """(accuracy, train seconds) of ``arch`` (``key``: its text, when the caller has it)."""
        key = str(arch) if key is None else key
        hit = self._cache.get(key)
        if hit is None:  # predict_many's computation for one architecture
            parsed = Architecture.parse(arch) if isinstance(arch, str) else arch
            y = self._forward(features(parsed, self.image_size)[None].astype(np.float64))
            accuracy, seconds = self._accuracy(y[:, 0])[0], np.exp(y[0, 1])
            hit = self._cache[key] = (round(float(accuracy), 6), round(float(seconds), 4))
        return hit

    def predict_keys(
        self, keys: list[str], make_features: Callable[[list[int]], np.ndarray]
    ) -> list[tuple[float, float]]:
        """:meth:`predict` of the architectures named by ``keys``, those not cached yet in one
        batched forward pass over ``make_features(indices)`` (their :func:`features`, a row each):
        what the vector env asks each step."""
        missing = [j for j, key in enumerate(keys) if key not in self._cache]
        if missing:
            x = np.asarray(make_features(missing), dtype=np.float32).astype(np.float64)
            y = self._forward(x)
            for j, accuracy, seconds in zip(missing, self._accuracy(y[:, 0]), np.exp(y[:, 1]), strict=True):
                self._cache[keys[j]] = (round(float(accuracy), 6), round(float(seconds), 4))
        return [self._cache[key] for key in keys]


_erf = np.frompyfunc(math.erf, 1, 1)


def _score_to_accuracy(z: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Normal scores ``z`` as accuracies: their probability under the standard normal, read off
    the measured accuracies' quantiles (``q`` at probabilities ``p``)."""
    prob = 0.5 * (1.0 + np.asarray(_erf(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)), dtype=np.float64))
    return np.interp(prob, p, q)


def _ensemble(h: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The mean output of MLP members (tanh between layers) stacked as (members, in, out) weights,
    on standardised rows ``h``."""
    h = h[None]  # (1, n, in), broadcast over the members
    for i, (w, b) in enumerate(weights):
        h = np.matmul(h, w) + b
        if i < len(weights) - 1:
            np.tanh(h, out=h)
    return h.sum(axis=0) / len(h)  # the members' mean, in standardised units


def _stacked_members(
    arrays: dict[str, np.ndarray], members: int, layers: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The members' weights of each layer stacked, so one forward pass is a few batched products."""
    return [
        (
            np.stack([arrays[f"m{m}_w{i}"] for m in range(members)]),
            np.stack([arrays[f"m{m}_b{i}"] for m in range(members)])[:, None, :],
        )
        for i in range(layers)
    ]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()[:16]


def _read(p: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A surrogate file's arrays and its meta (plain arrays: nothing pickled is read)."""
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"surrogate {p} cannot be read: {e}") from None
    if "meta" not in arrays:
        raise ValueError(f"{p} is not a nas-gym surrogate (no meta)")
    return arrays, json.loads(bytes(arrays.pop("meta")).decode())


class FidelitySurrogate:
    """A surrogate over fidelities (``NASSurrogate-v2``): one MLP ensemble over :func:`features`
    with an output per question, each accuracy output a normal score mapped through its own
    measured quantiles.

    - ``acc_e<e>`` for each fidelity ``e`` in ``meta["fresh"]`` (1, 3, 9): the accuracy of a child
      trained ``e`` epochs from scratch; ``sec_e<e>``: its log train seconds. Between two of them
      the accuracy is read linearly in log epochs and the seconds linearly in epochs
      (:meth:`at`).
    - ``curve_<k>`` for k below ``meta["curve_of"]`` (9): the accuracy after epoch k of a training
      of ``curve_of`` epochs (its last point is ``acc_e<curve_of>``); the seconds of the first k
      epochs are read between the 1-epoch and the full training's seconds, linearly in k
      (:meth:`predict_curve`).
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.image_size = int(meta["image_size"])
        self.fresh = tuple(float(e) for e in meta["fresh"])
        self.curve_of = int(meta["curve_of"])
        self.heads = [str(h) for h in meta["heads"]]
        self.mean, self.std = arrays["x_mean"], arrays["x_std"]
        self.y_mean, self.y_std = arrays["y_mean"], arrays["y_std"]
        # the forward pass in float32: half the time of float64 for a batch (what the vector env
        # asks each step), and the ranking it gives is the same to about 1e-6 of a normal score
        self.weights = [
            (w.astype(np.float32), b.astype(np.float32))
            for w, b in _stacked_members(arrays, int(meta["members"]), int(meta["layers"]))
        ]
        accuracy_heads = [h for h in self.heads if not h.startswith("sec_")]
        self.maps = {h: (arrays[f"p_{h}"], arrays[f"q_{h}"]) for h in accuracy_heads}
        self.noise = {h: (arrays[f"noise_accuracy_{h}"], arrays[f"noise_std_{h}"]) for h in accuracy_heads}
        self.digest = _digest(arrays)
        self._views: dict[float, _AtEpochs] = {}
        self._curves: dict[str, list[tuple[int, float, float]]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FidelitySurrogate:
        arrays, meta = _read(Path(path))
        if meta.get("format") != FIDELITY_FORMAT:
            raise ValueError(f"{path} is not a surrogate over fidelities (format {meta.get('format')!r})")
        return cls(arrays, meta)

    def save(self, path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
        meta = np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)
        np.savez_compressed(path, **{"meta": meta, **arrays})  # type: ignore[arg-type]

    @property
    def default_epochs(self) -> float:
        return float(self.meta.get("default_epochs", self.fresh[len(self.fresh) // 2]))

    def check_epochs(self, epochs: Any) -> float:
        """``epochs`` as a float, or a ValueError naming the range this surrogate answers."""
        lo, hi = self.fresh[0], self.fresh[-1]
        if (
            isinstance(epochs, bool)
            or not isinstance(epochs, int | float | np.number)
            or not (math.isfinite(epochs) and lo <= epochs <= hi)
        ):
            raise ValueError(
                f"this surrogate answers children trained {lo:g} to {hi:g} epochs, not {epochs!r}"
            )
        return float(epochs)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        """Every head's output (normal scores, log seconds) of feature rows ``x``: shape (n, heads)."""
        h = ((x - self.mean) / self.std).astype(np.float32)
        return _ensemble(h, self.weights).astype(np.float64) * self.y_std + self.y_mean

    def accuracy(self, y: np.ndarray, head: str) -> np.ndarray:
        """Head ``head``'s column of :meth:`outputs` as accuracies."""
        p, q = self.maps[head]
        return _score_to_accuracy(y[:, self.heads.index(head)], p, q)

    def seconds(self, y: np.ndarray, epochs: float) -> np.ndarray:
        """The train seconds of ``epochs`` from :meth:`outputs` (linear in epochs between fidelities)."""
        lo, hi, w = self._bracket(epochs, linear=True)
        s_lo = np.exp(y[:, self.heads.index(f"sec_e{lo:g}")])
        s_hi = np.exp(y[:, self.heads.index(f"sec_e{hi:g}")])
        return (1 - w) * s_lo + w * s_hi

    def _bracket(self, epochs: float, linear: bool = False) -> tuple[float, float, float]:
        """The two fidelities around ``epochs`` and its weight on the upper one (in log epochs, or
        in epochs with ``linear``)."""
        for lo, hi in zip(self.fresh, self.fresh[1:], strict=False):
            if epochs <= hi:
                span = (epochs - lo) / (hi - lo) if linear else math.log(epochs / lo) / math.log(hi / lo)
                return lo, hi, span
        return self.fresh[-2], self.fresh[-1], 1.0

    def at(self, epochs: float) -> _AtEpochs:
        """This surrogate at one fidelity: what :class:`Surrogate` answers at its own."""
        e = self.check_epochs(epochs)
        view = self._views.get(e)
        if view is None:
            view = self._views[e] = _AtEpochs(self, e)
        return view

    def predict(self, arch: Architecture | str, key: str | None = None) -> tuple[float, float]:
        """(accuracy, train seconds) of ``arch`` at the default fidelity (:meth:`at` for another)."""
        return self.at(self.default_epochs).predict(arch, key)

    def predict_many(self, archs: list[Architecture | str]) -> np.ndarray:
        return self.at(self.default_epochs).predict_many(archs)

    def seed_spread(self, accuracy: float, head: str) -> float:
        centres, spread = self.noise[head]
        return float(np.interp(accuracy, centres, spread))

    def predict_curve(
        self, arch: Architecture | str, key: str | None = None
    ) -> list[tuple[int, float, float]]:
        """(epoch, accuracy, seconds so far) after each epoch of a training of ``curve_of`` epochs."""
        key = str(arch) if key is None else key
        hit = self._curves.get(key)
        if hit is None:
            parsed = Architecture.parse(arch) if isinstance(arch, str) else arch
            y = self.outputs(features(parsed, self.image_size)[None].astype(np.float64))
            first, full = float(self.seconds(y, 1.0)[0]), float(self.seconds(y, float(self.curve_of))[0])
            hit = []
            for k in range(1, self.curve_of + 1):
                head = f"curve_{k}" if k < self.curve_of else f"acc_e{self.curve_of:g}"
                seconds = first + (k - 1) * (full - first) / (self.curve_of - 1)
                hit.append((k, round(float(self.accuracy(y, head)[0]), 6), round(seconds, 4)))
            self._curves[key] = hit
        return hit


class _AtEpochs:
    """A :class:`FidelitySurrogate` at ``epochs``: the accuracy between the two fresh fidelities
    around it (linear in log epochs), its seconds, its seed spread; answers what a
    :class:`Surrogate` answers, with the same cache."""

    def __init__(self, parent: FidelitySurrogate, epochs: float) -> None:
        self.parent, self.epochs = parent, epochs
        self.image_size = parent.image_size
        self.digest = parent.digest
        self.meta = {**parent.meta, "budget": {**parent.meta.get("budget", {}), "epochs": epochs}}
        lo, hi, self._w = parent._bracket(epochs)
        self._heads = (f"acc_e{lo:g}", f"acc_e{hi:g}")
        self._cache: dict[str, tuple[float, float]] = {}

    def _values(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = (self.parent.accuracy(y, h) for h in self._heads)
        return (1 - self._w) * low + self._w * high, self.parent.seconds(y, self.epochs)

    def seed_spread(self, accuracy: float) -> float:
        low, high = (self.parent.seed_spread(accuracy, h) for h in self._heads)
        return (1 - self._w) * low + self._w * high

    def predict_many(self, archs: list[Architecture | str]) -> np.ndarray:
        parsed = [Architecture.parse(a) if isinstance(a, str) else a for a in archs]
        x = np.stack([features(a, self.image_size) for a in parsed]).astype(np.float64)
        return np.stack(self._values(self.parent.outputs(x)), axis=1)

    def predict(self, arch: Architecture | str, key: str | None = None) -> tuple[float, float]:
        key = str(arch) if key is None else key
        hit = self._cache.get(key)
        if hit is None:
            parsed = Architecture.parse(arch) if isinstance(arch, str) else arch
            accuracy, seconds = self._values(
                self.parent.outputs(features(parsed, self.image_size)[None].astype(np.float64))
            )
            # rounded as predict_keys rounds, so the single and the vector env answer alike
            hit = self._cache[key] = (float(np.round(accuracy, 6)[0]), float(np.round(seconds, 4)[0]))
        return hit

    def predict_keys(
        self, keys: list[str], make_features: Callable[[list[int]], np.ndarray]
    ) -> list[tuple[float, float]]:
        missing = [j for j, key in enumerate(keys) if key not in self._cache]
        if missing:
            x = np.asarray(make_features(missing), dtype=np.float32).astype(np.float64)
            accuracy, seconds = self._values(self.parent.outputs(x))
            rounded = zip(np.round(accuracy, 6).tolist(), np.round(seconds, 4).tolist(), strict=True)
            for j, hit in zip(missing, rounded, strict=True):
                self._cache[keys[j]] = hit
        return [self._cache[key] for key in keys]


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> Surrogate | FidelitySurrogate:
    arrays, meta = _read(Path(path))
    if meta.get("format") == FIDELITY_FORMAT:
        return FidelitySurrogate(arrays, meta)
    return Surrogate.load(path)


def load_surrogate(path: str | os.PathLike[str] | None = None) -> Surrogate | FidelitySurrogate:
    p = surrogate_path(path)
    if not p.exists():
        raise ValueError(f"surrogate {p} does not exist")
    return _load_cached(str(p.resolve()), p.stat().st_mtime_ns)


class SurrogateEvaluator(StoredAnswers):
    """The evaluator interface of the NAS envs, answered by a :class:`Surrogate` (see the module),
    or by a :class:`FidelitySurrogate` at ``epochs`` (None: its default) and at any epochs a
    request names, each fidelity filed under its own key."""

    kind = "surrogate"
    device = "surrogate"

    def __init__(
        self,
        surrogate: Surrogate | FidelitySurrogate,
        noise: bool = False,
        store: ResultStore | str | os.PathLike[str] | None = None,
        epochs: float | None = None,
    ) -> None:
        self.fidelities = surrogate if isinstance(surrogate, FidelitySurrogate) else None
        if self.fidelities is not None:
            own = self.fidelities.default_epochs if epochs is None else epochs
            self.surrogate: Surrogate | _AtEpochs = self.fidelities.at(own)
        else:
            assert isinstance(surrogate, Surrogate)
            self.surrogate = surrogate
            check_fixed_epochs("this surrogate", self.epochs, epochs)
        self.noise = bool(noise)
        self.image_size = surrogate.image_size
        super().__init__(store, f"surrogate:{surrogate.meta.get('dataset', '')}")
        self.filed = self._filed(self.surrogate)
        self._at_epochs: dict[float, tuple[Surrogate | _AtEpochs, KeyedStore]] = {}

    def _filed(self, surrogate: Surrogate | _AtEpochs) -> KeyedStore:
        # the key: the children's configuration the samples were trained at ("budget" in the
        # file, its epochs the request's), the model itself and whether it draws noise
        key = json.dumps(
            {**surrogate.meta.get("budget", {}), "surrogate": surrogate.digest, "noise": self.noise},
            sort_keys=True,
        )
        return KeyedStore(self.store, self.dataset, key)

    @property
    def takes_epochs(self) -> bool:
        """Whether requests may name their epochs (a surrogate over fidelities)."""
        return self.fidelities is not None

    @property
    def epochs(self) -> float:
        """The epochs its children are trained unless a request names others."""
        return float(self.surrogate.meta.get("budget", {}).get("epochs", 0.0))

    def check_epochs(self, epochs: float) -> float:
        """``epochs`` if a request may name it, else a ValueError naming what this surrogate answers."""
        if self.fidelities is None:
            check_fixed_epochs("this surrogate", self.epochs, epochs)
            return float(epochs)
        return self.fidelities.check_epochs(epochs)

    def _at(self, epochs: float | None) -> tuple[Surrogate | _AtEpochs, KeyedStore]:
        """The surrogate at a request's ``epochs`` and where its answers are filed."""
        if epochs is None or float(epochs) == self.epochs:
            return self.surrogate, self.filed
        if self.fidelities is None:
            check_fixed_epochs("this surrogate", self.epochs, epochs)
        e = float(epochs)
        hit = self._at_epochs.get(e)
        if hit is None:
            assert self.fidelities is not None
            view = self.fidelities.at(e)
            hit = self._at_epochs[e] = (view, self._filed(view))
        return hit

    def filed_at(self, epochs: float | None) -> KeyedStore:
        return self._at(epochs)[1]

    def stored_seed(self, seed: int) -> int:
        return int(seed) if self.noise else 0  # without noise every seed gets the same answer

    def _values(
        self, arch: Architecture | str, seed: int, text: str | None = None, epochs: float | None = None
    ) -> tuple[float, float]:
        text = str(arch) if text is None else text
        surrogate = self._at(epochs)[0]
        accuracy, seconds = surrogate.predict(arch, text)
        spread = surrogate.seed_spread(accuracy) if self.noise else 0.0
        if spread > 0:
            accuracy = float(np.clip(accuracy + self._draw(text, seed, surrogate) * spread, 0.0, 1.0))
        return accuracy, seconds

    def _draw(self, text: str, seed: int, surrogate: Surrogate | _AtEpochs | None) -> float:
        """The standard normal draw of (architecture, seed), and of the epochs over fidelities
        (None: the full training whose curve :meth:`curve` reads)."""
        name = f"{text}|{seed}"
        if self.fidelities is not None:
            epochs = (
                float(self.fidelities.curve_of) if surrogate is None else surrogate.meta["budget"]["epochs"]
            )
            name = f"{name}|{float(epochs):g}"
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))
        return float(rng.normal(0.0, 1.0))

    def _answer(self, arch: Architecture | str, text: str, seed: int, epochs: float | None) -> Answer:
        surrogate = self._at(epochs)[0]
        parsed = Architecture.parse(text) if isinstance(arch, str) else arch
        DEFAULT_VOCABULARY.validate(parsed, self.image_size)
        accuracy, seconds = self._values(parsed, self.stored_seed(seed), text, epochs)
        curve: list[tuple[float, float, float]] = []
        if self.fidelities is not None and surrogate.meta["budget"]["epochs"] == self.fidelities.curve_of:
            curve = [(float(k), a, s) for k, a, s in self.curve(parsed, seed, charge=False)]
        return Answer(accuracy, self.num_params(parsed), seconds, "ok", curve)

    def curve(
        self, arch: Architecture | str, seed: int, upto: int | None = None, charge: bool = True
    ) -> list[tuple[int, float, float]]:
        """The first ``upto`` points (epoch, accuracy, seconds so far) of the curve of a training of
        the longest fidelity (a surrogate over fidelities only): what a searcher that may stop a
        training early sees. ``charge``: add the seconds of those epochs to :attr:`train_seconds`
        and count a training (a training stopped there). With noise, one draw of (architecture,
        seed) scaled by each point's seed spread: its last point is what ``evaluate`` answers at
        that fidelity."""
        if self.fidelities is None:
            raise ValueError("this surrogate has no curves: NASSurrogate-v2 answers them")
        last = self.fidelities.curve_of
        upto = last if upto is None else upto
        if isinstance(upto, bool) or not isinstance(upto, int) or not 1 <= upto <= last:
            raise ValueError(f"upto must be an int in 1..{last}, got {upto!r}")
        text = str(arch)
        parsed = Architecture.parse(text) if isinstance(arch, str) else arch
        DEFAULT_VOCABULARY.validate(parsed, self.image_size)
        points = self.fidelities.predict_curve(parsed, text)[:upto]
        if self.noise:
            z = self._draw(text, self.stored_seed(seed), None)
            points = [
                (k, float(np.clip(a + z * self.fidelities.seed_spread(a, self._curve_head(k)), 0.0, 1.0)), s)
                for k, a, s in points
            ]
        if charge:
            self.trainings += 1
            self.train_seconds += points[-1][2]
        return points

    def _curve_head(self, k: int) -> str:
        assert self.fidelities is not None
        return f"curve_{k}" if k < self.fidelities.curve_of else f"acc_e{self.fidelities.curve_of:g}"

    def recorded_seconds(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float:
        return self._at(epochs)[0].predict(arch)[1]

    def num_params(self, arch: Architecture | str) -> int:
        parsed = Architecture.parse(arch) if isinstance(arch, str) else arch
        meta = self.surrogate.meta
        return count_params(parsed, int(meta["in_channels"]), int(meta["num_classes"]), float(meta["width"]))


def count_params(arch: Architecture, in_channels: int, num_classes: int, width: float) -> int:
    """The parameters of ``nas_gym.models.build_model(arch, ...)``, counted without torch."""
    return arch.num_params(in_channels, num_classes, width)
