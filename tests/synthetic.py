"""A test-only env whose reward is a known function of the architecture (no training)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas_gym.envs import NASEnvBase
from nas_gym.evaluation import EvalResult, check_fixed_epochs
from nas_gym.search_space import Architecture

TARGET = "C64k3-MP2-R128"  # the optimum of target_match


def target_match(arch: Architecture, target: str = TARGET) -> float:
    """Fraction of the target matched from the first layer on, minus 0.1 per extra layer.

    Every prefix of the optimum scores higher than the one before it (the poster's assumption),
    and only the target itself scores 1.0.
    """
    goal = Architecture.parse(target)
    matched = 0
    for mine, theirs in zip(arch, goal, strict=False):
        if mine != theirs:
            break
        matched += 1
    extra = max(0, len(arch) - len(goal)) if matched == len(goal) else 0
    return max(0.0, matched / len(goal) - 0.1 * extra)


def layer_quality(arch: Architecture, best_length: int = 2, seed: int = 0) -> float:
    """Mean of a fixed hidden quality per layer (in [0, 1], one layer scores 1.0), minus 0.15 per
    layer away from ``best_length``. The unique optimum is the best layer repeated ``best_length``
    times, and every choice gets graded feedback, as layers of real networks do.
    """
    from nas_gym.search_space import DEFAULT_VOCABULARY

    layers = DEFAULT_VOCABULARY.layers
    quality = np.random.default_rng(seed).permutation(len(layers)) / (len(layers) - 1)
    index = {layer: q for layer, q in zip(layers, quality, strict=True)}
    if len(arch) == 0:
        return 0.0
    mean = sum(index[layer] for layer in arch) / len(arch)
    return float(max(0.0, mean - 0.15 * abs(len(arch) - best_length)))


def optimum_of_layer_quality(best_length: int = 2, seed: int = 0) -> str:
    from nas_gym.search_space import DEFAULT_VOCABULARY

    layers = DEFAULT_VOCABULARY.layers
    best = layers[int(np.argmax(np.random.default_rng(seed).permutation(len(layers))))]
    return "-".join([best.token] * best_length)


class FunctionEvaluator:
    """Scores architectures with ``fn``; counts a 'training' the first time it sees one."""

    def __init__(self, fn: Callable[[Architecture], float], image_size: int = 14) -> None:
        self.fn = fn
        self.image_size = image_size
        self.trainings = 0
        self.train_seconds = 0.0
        self.ledger_tag = ""
        self.result_store = None  # no ledger: trainings are counted by this object only
        self._cache: dict[str, float] = {}

    kind = "function"
    takes_epochs = False
    epochs = 1.0  # its one fidelity

    def lookup(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float | None:
        return self._cache.get(str(arch))

    def claim(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> bool:
        return True  # no store shared with anyone

    def release(self, archs: list[str], seed: int, epochs: float | None = None) -> None:
        pass

    def key_of(self, epochs: float | None = None) -> str:
        return f"epochs={self.epochs if epochs is None else float(epochs):g}"

    def close(self) -> None:
        pass

    def training_plan(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> list[str]:
        """What evaluating ``arch`` would train: itself, unless evaluated before."""
        return [] if self.lookup(arch, seed) is not None else [str(arch)]

    def recorded_seconds(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float:
        """A training "costs" one second per layer, so budgets in seconds can be tested."""
        return (
            float(len(Architecture.parse(arch) if isinstance(arch, str) else arch))
            if str(arch) in self._cache
            else 0.0
        )

    def evaluate(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> EvalResult:
        check_fixed_epochs("a function", self.epochs, epochs)
        arch = Architecture.parse(arch) if isinstance(arch, str) else arch
        key = str(arch)
        cached = key in self._cache
        if not cached:
            self.trainings += 1
            self._cache[key] = float(self.fn(arch))
        return EvalResult(key, self._cache[key], 0, "ok", cached, 0.0 if cached else float(len(arch)))

    def num_params(self, arch: Architecture) -> int:
        return 0


def function_env(fn: Callable[[Architecture], float] = target_match, max_layers: int = 15) -> NASEnvBase:
    return NASEnvBase(FunctionEvaluator(fn), max_layers=max_layers)


class FidelityFunctionEvaluator(FunctionEvaluator):
    """``fn`` seen through a training of ``epochs``: ``fn(arch) * (1 - 0.5 ** epochs)`` plus a
    rank-changing term that fades with the epochs, so low fidelities mislead a little; every
    (architecture, epochs) is one 'training' of ``epochs`` seconds per layer."""

    takes_epochs = True
    epochs = 9.0

    def __init__(self, fn: Callable[[Architecture], float], image_size: int = 14) -> None:
        super().__init__(fn, image_size)
        self._seen: dict[tuple[str, float], float] = {}

    def _key(self, arch: Architecture | str, epochs: float | None) -> tuple[str, float]:
        return str(arch), float(self.epochs if epochs is None else epochs)

    def lookup(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float | None:
        return self._seen.get(self._key(arch, epochs))

    def training_plan(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> list[str]:
        return [] if self.lookup(arch, seed, epochs) is not None else [str(arch)]

    def recorded_seconds(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> float:
        key = self._key(arch, epochs)
        return key[1] * len(key[0].split("-")) if key in self._seen else 0.0

    def evaluate(self, arch: Architecture | str, seed: int, epochs: float | None = None) -> EvalResult:
        parsed = Architecture.parse(arch) if isinstance(arch, str) else arch
        key = self._key(parsed, epochs)
        cached = key in self._seen
        if not cached:
            self.trainings += 1
            noise = 0.1 * (len(parsed) % 3) / (1.0 + key[1])
            self._seen[key] = float(self.fn(parsed)) * (1 - 0.5 ** key[1]) + noise
        seconds = 0.0 if cached else key[1] * len(parsed)
        return EvalResult(key[0], self._seen[key], 0, "ok", cached, seconds)


def fidelity_env(fn: Callable[[Architecture], float] = target_match, max_layers: int = 15) -> NASEnvBase:
    return NASEnvBase(FidelityFunctionEvaluator(fn), max_layers=max_layers)
