"""The search space: layers, architectures, the action vocabulary, shapes and masks.

This module imports numpy and the standard library only (never torch): it is loaded by
``import nas_gym`` and by the tabular benchmark, where no child is ever built.

Token format (one layer each, joined by ``-``; the classifier head is implied):

- ``C{c}k{k}``  convolution, ``c`` channels, kernel ``k``, stride 1, same padding, BN + ReLU
- ``R{c}``      residual block (two 3x3 convs with BN + ReLU), projection shortcut on shape change
- ``R{c}s2``    the same block with stride 2
- ``MP{k}`` / ``AP{k}``  max / average pooling, kernel ``k``, stride 2, no padding
- ``DR``        dropout
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "DEFAULT_MAX_LAYERS",
    "DEFAULT_VOCABULARY",
    "HEAD",
    "KINDS",
    "Architecture",
    "ArchitectureSyntaxError",
    "Conv",
    "Dropout",
    "Layer",
    "OutOfSpaceError",
    "Pool",
    "REWARD_MODES",
    "Residual",
    "Step",
    "Vocabulary",
    "check_reward_mode",
    "layer_from_token",
    "scaled_channels",
    "step_reward",
]

DEFAULT_MAX_LAYERS = 15
HEAD = "HEAD"
REWARD_MODES = ("prefix", "final", "improvement")


def check_reward_mode(reward: str) -> str:
    """``reward`` when it is one of :data:`REWARD_MODES`; else a ValueError that lists them."""
    if reward not in REWARD_MODES:
        raise ValueError(f"reward must be one of {REWARD_MODES}, got {reward!r}")
    return reward


def step_reward(reward: str, accuracy: Any, previous: Any, head: Any, terminated: Any) -> Any:
    """The reward of a valid step under each mode, the one statement of them (elementwise on
    arrays, for a vector env): ``"prefix"`` pays the accuracy of the architecture after the step
    (HEAD: of the one it closes); ``"improvement"`` the change from the previous prefix's accuracy
    (HEAD pays 0, so an episode's rewards sum to its final accuracy); ``"final"`` the accuracy when
    the episode ends, 0 before. :meth:`Vocabulary.step` says which architecture a step evaluates.
    A masked action pays 0 in every mode."""
    if reward == "prefix":
        return accuracy
    if reward == "improvement":
        return np.where(head, 0.0, np.subtract(accuracy, previous))
    if reward == "final":
        return np.where(terminated, accuracy, 0.0)
    return check_reward_mode(reward)


class ArchitectureSyntaxError(ValueError):
    """Text that is not in the token format (a typo, an unknown token, a zero channel count)."""


class OutOfSpaceError(ValueError):
    """A well-formed architecture or action that the vocabulary or the input shape does not allow."""


# What a layer knows about itself, one class per kind of layer: its token, the spatial size and
# channels it outputs, its trainable parameters (as nas_gym.models builds it: no torch needed), its
# description (the poster's Type / Setting, and a short label for pictures) and its kind among
# KINDS (what the surrogate's features count). The builder (nas_gym.models) is the one other place
# a new kind of layer needs.

# the kinds of layer, as features tell them apart (index = Layer.feature_kind)
KINDS = ("conv 1x1", "conv 3x3", "conv 4x4/5x5", "residual", "residual s2", "max pool", "avg pool", "dropout")


def scaled_channels(channels: int, width: float) -> int:
    """Channel count after the width multiplier (at least 1)."""
    return max(1, round(channels * width))


@dataclass(frozen=True, order=True)
class Conv:
    channels: int
    kernel: int

    @property
    def token(self) -> str:
        return f"C{self.channels}k{self.kernel}"

    def out_hw(self, hw: int) -> int:
        return hw  # stride 1, same padding

    @property
    def feature_kind(self) -> int:
        return 0 if self.kernel == 1 else 1 if self.kernel == 3 else 2

    @property
    def downsamples(self) -> bool:
        return False

    def out_channels(self, cin: int, width: float) -> int:
        return scaled_channels(self.channels, width)

    def num_params(self, cin: int, width: float) -> int:
        """Convolution weights (no bias) and BatchNorm's scale and shift."""
        c = self.out_channels(cin, width)
        return cin * c * self.kernel**2 + 2 * c

    def describe(self) -> tuple[str, str]:
        return "Convolution", f"Channel={self.channels}; Kernel_size={self.kernel}; Stride=1"

    def label(self) -> tuple[str, str]:
        return "conv", f"{self.channels} ch, {self.kernel}x{self.kernel}"


@dataclass(frozen=True, order=True)
class Residual:
    channels: int
    stride: int = 1

    @property
    def token(self) -> str:
        return f"R{self.channels}" + ("s2" if self.stride == 2 else "")

    def out_hw(self, hw: int) -> int:
        # 3x3 conv, padding 1: floor((hw + 2 - 3) / s) + 1, i.e. ceil(hw / s)
        return -(-hw // self.stride)

    @property
    def feature_kind(self) -> int:
        return 3 if self.stride == 1 else 4

    @property
    def downsamples(self) -> bool:
        return self.stride != 1

    def out_channels(self, cin: int, width: float) -> int:
        return scaled_channels(self.channels, width)

    def num_params(self, cin: int, width: float) -> int:
        """Two 3x3 convolutions with BatchNorm, and a 1x1 projection with BatchNorm where the
        shape changes."""
        c = self.out_channels(cin, width)
        total = 9 * cin * c + 9 * c * c + 4 * c
        if self.stride != 1 or cin != c:
            total += cin * c + 2 * c
        return total

    def describe(self) -> tuple[str, str]:
        return "Residual", f"Channel={self.channels}; Stride={self.stride}"

    def label(self) -> tuple[str, str]:
        return "residual", f"{self.channels} ch" + (", stride 2" if self.stride == 2 else "")


@dataclass(frozen=True, order=True)
class Pool:
    kind: str  # "max" or "avg"
    kernel: int

    @property
    def token(self) -> str:
        return ("MP" if self.kind == "max" else "AP") + str(self.kernel)

    def out_hw(self, hw: int) -> int:
        # stride 2, no padding; 0 means the window no longer fits
        return (hw - self.kernel) // 2 + 1 if hw >= self.kernel else 0

    @property
    def feature_kind(self) -> int:
        return 5 if self.kind == "max" else 6

    @property
    def downsamples(self) -> bool:
        return True

    def out_channels(self, cin: int, width: float) -> int:
        return cin

    def num_params(self, cin: int, width: float) -> int:
        return 0

    def describe(self) -> tuple[str, str]:
        return ("Max pool" if self.kind == "max" else "Average pool"), f"Kernel_size={self.kernel}; Stride=2"

    def label(self) -> tuple[str, str]:
        return "pool", f"{self.kind} {self.kernel}x{self.kernel}, /2"


@dataclass(frozen=True, order=True)
class Dropout:
    P: ClassVar[float] = 0.25  # the drop probability of the DR token (the builder, the layer table)

    @property
    def token(self) -> str:
        return "DR"

    def out_hw(self, hw: int) -> int:
        return hw

    @property
    def feature_kind(self) -> int:
        return 7

    @property
    def downsamples(self) -> bool:
        return False

    def out_channels(self, cin: int, width: float) -> int:
        return cin

    def num_params(self, cin: int, width: float) -> int:
        return 0

    def describe(self) -> tuple[str, str]:
        return "Dropout", f"p={self.P:g}"

    def label(self) -> tuple[str, str]:
        return "dropout", f"p={self.P:g}"


Layer = Conv | Residual | Pool | Dropout

_TOKEN = re.compile(
    r"^(?:C(?P<cc>\d+)k(?P<ck>\d+)|R(?P<rc>\d+)(?P<rs>s2)?|(?P<pk>MP|AP)(?P<pn>\d+)|(?P<dr>DR))$"
)
_MAX_CHANNELS = 1 << 16
_MAX_KERNEL = 64


def layer_from_token(token: str) -> Layer:
    """Parse one token; raise :class:`ArchitectureSyntaxError` naming it when it is malformed."""
    m = _TOKEN.match(token)
    if m is None:
        raise ArchitectureSyntaxError(
            f"bad token {token!r}: expected C<channels>k<kernel>, R<channels>, R<channels>s2, "
            "MP<kernel>, AP<kernel> or DR (e.g. C32k3-R64s2-MP2)"
        )
    if m["dr"]:
        return Dropout()
    if m["cc"] is not None:
        channels, kernel = int(m["cc"]), int(m["ck"])
        _check_range(token, "channels", channels, _MAX_CHANNELS)
        _check_range(token, "kernel", kernel, _MAX_KERNEL)
        if m["cc"] != str(channels) or m["ck"] != str(kernel):
            raise ArchitectureSyntaxError(f"bad token {token!r}: numbers must not have leading zeros")
        return Conv(channels, kernel)
    if m["rc"] is not None:
        channels = int(m["rc"])
        _check_range(token, "channels", channels, _MAX_CHANNELS)
        if m["rc"] != str(channels):
            raise ArchitectureSyntaxError(f"bad token {token!r}: numbers must not have leading zeros")
        return Residual(channels, 2 if m["rs"] else 1)
    kernel = int(m["pn"])
    _check_range(token, "kernel", kernel, _MAX_KERNEL)
    if m["pn"] != str(kernel):
        raise ArchitectureSyntaxError(f"bad token {token!r}: numbers must not have leading zeros")
    return Pool("max" if m["pk"] == "MP" else "avg", kernel)


def _check_range(token: str, what: str, value: int, limit: int) -> None:
    if not 1 <= value <= limit:
        raise ArchitectureSyntaxError(f"bad token {token!r}: {what} must be in 1..{limit}, got {value}")


@dataclass(frozen=True)
class Architecture(Sequence[Layer]):
    """An immutable list of layers with a canonical text form.

    ``Architecture.parse(text)`` and ``str(arch)`` round-trip exactly. This class builds no
    model; :mod:`nas_gym.models` does. Whether an architecture is *in a search space* is the
    vocabulary's question (:meth:`Vocabulary.validate`), not the parser's.
    """

    layers: tuple[Layer, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Architecture:
        if not isinstance(text, str):
            raise ArchitectureSyntaxError(f"architecture text must be a str, got {type(text).__name__}")
        stripped = text.strip()
        if stripped == "":
            return cls(())
        tokens = stripped.split("-")
        for i, tok in enumerate(tokens, start=1):
            if tok == "":
                raise ArchitectureSyntaxError(
                    f"empty token {i} in {text!r} (a doubled, leading or trailing '-')"
                )
        return cls(tuple(layer_from_token(tok) for tok in tokens))

    def __str__(self) -> str:
        return "-".join(layer.token for layer in self.layers)

    def __repr__(self) -> str:
        return f"Architecture.parse({str(self)!r})"

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return Architecture(self.layers[index])
        return self.layers[index]

    def append(self, layer: Layer) -> Architecture:
        return Architecture((*self.layers, layer))

    def prefixes(self) -> Iterator[Architecture]:
        """Every non-empty prefix a_1..a_t, shortest first (what the env trains step by step)."""
        for t in range(1, len(self.layers) + 1):
            yield Architecture(self.layers[:t])

    def spatial_sizes(self, image_size: int) -> list[int]:
        """Feature-map side after each layer (input is ``image_size`` x ``image_size``)."""
        sizes, hw = [], image_size
        for layer in self.layers:
            hw = layer.out_hw(hw)
            sizes.append(hw)
        return sizes

    def output_size(self, image_size: int) -> int:
        hw = image_size
        for layer in self.layers:
            hw = layer.out_hw(hw)
        return hw

    def num_params(self, in_channels: int, num_classes: int, width: float = 1.0) -> int:
        """The trainable parameters of this architecture as :func:`nas_gym.models.build_model`
        builds it, head included, counted without building it."""
        channels, total = in_channels, 0
        for layer in self.layers:
            total += layer.num_params(channels, width)
            channels = layer.out_channels(channels, width)
        return total + channels * num_classes + num_classes

    def fits(self, image_size: int) -> bool:
        """True when no layer shrinks the feature map below 1x1."""
        hw = image_size
        for layer in self.layers:
            hw = layer.out_hw(hw)
            if hw < 1:
                return False
        return True


def _default_layers() -> tuple[Layer, ...]:
    convs = [Conv(c, k) for c in (32, 64, 128) for k in (1, 3, 4, 5)]
    residuals = [Residual(c, s) for c in (32, 64, 128) for s in (1, 2)]
    pools = [Pool("max", 2), Pool("max", 3), Pool("avg", 2), Pool("avg", 3)]
    return (*convs, *residuals, *pools, Dropout())


@dataclass(frozen=True)
class Vocabulary:
    """The actions of a search space: its layers, then HEAD (ends the episode) as the last action.

    The default is the 24-action space of the poster: 12 convs, 6 residual blocks, 4 pools,
    dropout and HEAD, with at most 15 layers.
    """

    layers: tuple[Layer, ...] = _default_layers()
    max_layers: int = DEFAULT_MAX_LAYERS
    # derived from the two fields above, never compared: each layer's action, and the masks made
    # so far by what a mask depends on (see action_mask)
    _index: dict[Layer, int] = field(init=False, repr=False, compare=False)
    _masks: dict[tuple[int, bool, bool], np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if len(self.layers) == 0:
            raise ValueError("a vocabulary needs at least one layer")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError("a vocabulary must not list a layer twice")
        if self.max_layers < 1:
            raise ValueError(f"max_layers must be >= 1, got {self.max_layers}")
        object.__setattr__(self, "_index", {layer: i for i, layer in enumerate(self.layers)})

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], max_layers: int = DEFAULT_MAX_LAYERS) -> Vocabulary:
        return cls(tuple(layer_from_token(t) for t in tokens), max_layers)

    @property
    def num_actions(self) -> int:
        return len(self.layers) + 1

    @property
    def head_action(self) -> int:
        return len(self.layers)

    @property
    def tokens(self) -> list[str]:
        return [layer.token for layer in self.layers] + [HEAD]

    def action_of(self, layer: Layer) -> int:
        try:
            return self._index[layer]
        except KeyError:
            raise OutOfSpaceError(f"layer {layer.token!r} is not in this vocabulary") from None

    def layer_of(self, action: int) -> Layer:
        """The layer an action appends; HEAD has no layer."""
        if not 0 <= action < len(self.layers):
            raise OutOfSpaceError(
                f"action {action} has no layer (layers are 0..{len(self.layers) - 1}, "
                f"HEAD is {self.head_action})"
            )
        return self.layers[action]

    def actions_of(self, arch: Architecture) -> list[int]:
        return [self.action_of(layer) for layer in arch]

    def architecture(self, actions: Iterable[int]) -> Architecture:
        return Architecture(tuple(self.layer_of(int(a)) for a in actions))

    def action_mask(self, arch: Architecture, image_size: int) -> np.ndarray:
        """Boolean mask over actions for the next step after ``arch``.

        Masked: HEAD on an empty architecture, layers that would shrink the feature map
        below 1x1, and every layer once ``max_layers`` is reached (then only HEAD is left).
        """
        hw = arch.output_size(image_size)
        key = (hw, len(arch) < self.max_layers, len(arch) > 0)  # all the mask depends on
        mask = self._masks.get(key)
        if mask is None:
            mask = np.zeros(self.num_actions, dtype=bool)
            if key[1] and hw >= 1:
                for i, layer in enumerate(self.layers):
                    mask[i] = layer.out_hw(hw) >= 1
            mask[self.head_action] = key[2]
            self._masks[key] = mask
        return mask.copy()

    def step(
        self,
        arch: Architecture,
        action: int,
        image_size: int,
        reward: str = "prefix",
        mask: np.ndarray | None = None,
    ) -> Step:
        """The transition of one env step, as a pure function: from ``arch`` with ``action``.

        The one statement of the episode rules that the env, the budget wrapper, the SB3 wrapper and
        every planner share: a masked action ends the episode, unchanged and evaluating nothing;
        HEAD ends it, evaluating the closed architecture only under ``reward="final"`` (otherwise
        its accuracy is already known); a layer appends, ends the episode at ``max_layers``, and is
        evaluated unless ``reward="final"`` and the episode goes on. ``mask``: the
        :meth:`action_mask` of ``arch`` when the caller has it already (saves recomputing it).
        """
        if mask is None:
            mask = self.action_mask(arch, image_size)
        if not mask[action]:
            return Step(arch, None, True, True)
        if action == self.head_action:
            return Step(arch, arch if reward == "final" else None, True, False)
        nxt = arch.append(self.layer_of(action))
        terminated = len(nxt) >= self.max_layers
        return Step(nxt, nxt if reward != "final" or terminated else None, terminated, False)

    def validate(self, arch: Architecture, image_size: int) -> None:
        """Raise :class:`OutOfSpaceError` naming the first layer that leaves the space."""
        if len(arch) > self.max_layers:
            raise OutOfSpaceError(f"{len(arch)} layers exceed the maximum of {self.max_layers}")
        hw = image_size
        for t, layer in enumerate(arch, start=1):
            if layer not in self._index:
                raise OutOfSpaceError(
                    f"layer {t} ({layer.token}) is not in the vocabulary: {' '.join(self.tokens)}"
                )
            hw = layer.out_hw(hw)
            if hw < 1:
                raise OutOfSpaceError(
                    f"layer {t} ({layer.token}) shrinks the feature map below 1x1 "
                    f"for {image_size}x{image_size} input"
                )

    def is_valid(self, arch: Architecture, image_size: int) -> bool:
        try:
            self.validate(arch, image_size)
        except OutOfSpaceError:
            return False
        return True

    def encode(self, arch: Architecture) -> np.ndarray:
        """Observation vector: slot i holds layer i's action + 1, 0 = empty."""
        obs = np.zeros(self.max_layers, dtype=np.int64)
        for i, layer in enumerate(arch.layers[: self.max_layers]):
            obs[i] = self.action_of(layer) + 1
        return obs

    def decode(self, obs: Sequence[int] | np.ndarray) -> Architecture:
        actions = []
        for value in obs:
            if int(value) == 0:
                break
            actions.append(int(value) - 1)
        return self.architecture(actions)


@dataclass(frozen=True)
class Step:
    """What one env step does (:meth:`Vocabulary.step`)."""

    arch: Architecture  # the architecture after the step
    evaluated: Architecture | None  # the architecture the step scores (trains unless stored); None: none
    terminated: bool  # the episode ends with this step
    invalid: bool  # the action was masked


DEFAULT_VOCABULARY = Vocabulary()
assert DEFAULT_VOCABULARY.num_actions == 24
