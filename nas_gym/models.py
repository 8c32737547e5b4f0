"""The child builder: an :class:`~nas_gym.search_space.Architecture` becomes a ``torch.nn.Module``.

Knows layers and shapes; knows nothing of data, training or the store.
"""

from __future__ import annotations

import torch
from torch import nn

from nas_gym.search_space import Architecture, Conv, Dropout, Layer, Pool, Residual, scaled_channels

__all__ = ["DROPOUT_P", "build_model", "count_parameters", "inherit_from", "scaled_channels"]

DROPOUT_P = Dropout.P  # the DR token's drop probability (stated in nas_gym.search_space.Dropout)


class ConvBNReLU(nn.Sequential):
    """Stride-1 convolution with "same" padding, BN and ReLU.

    An even kernel pads one pixel more on the right/bottom (as PyTorch's ``padding="same"``
    does), done by an explicit pad so the convolution itself needs no padded copy.
    """

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        before, after = (kernel - 1) // 2, kernel // 2
        pad: nn.Module = nn.Identity() if before == after else nn.ZeroPad2d((before, after, before, after))
        super().__init__(
            pad,
            nn.Conv2d(cin, cout, kernel, padding=before if before == after else 0, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Subsample(nn.Module):
    """Every ``stride``-th pixel in each direction: a strided 1x1 convolution is this followed by a
    unit-stride 1x1 convolution, the same sums in the same order.

    Why not ``Conv2d(kernel_size=1, stride=2)``: oneDNN (torch 2.14's CPU backend) computes the
    weight gradient of a *strided* 1x1 convolution by first copying the input to unit stride in a
    scratch buffer ("reduce to unit stride"); its AVX2 kernel gets that wrong from the second call
    on (wrong gradients, then heap corruption: a hang or ``munmap_chunk(): invalid pointer``). Seen
    with 1 and 3 input channels in channels_last on an AVX2-only AMD EPYC and on AVX-512 machines
    with ``ONEDNN_MAX_CPU_ISA=AVX2``; unit-stride 1x1 and 3x3 convolutions are not affected.
    """

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class ResidualBlock(nn.Module):
    """Two 3x3 conv + BN, ReLU between and after the sum; 1x1 projection when the shape changes
    (the stride taken by :class:`Subsample`, see there why)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            layers: list[nn.Module] = [Subsample(stride)] if stride != 1 else []
            self.shortcut = nn.Sequential(*layers, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def _build_layer(layer: Layer, cin: int, width: float) -> tuple[nn.Module, int]:
    if isinstance(layer, Conv):
        cout = layer.out_channels(cin, width)
        return ConvBNReLU(cin, cout, layer.kernel), cout
    if isinstance(layer, Residual):
        cout = layer.out_channels(cin, width)
        return ResidualBlock(cin, cout, layer.stride), cout
    if isinstance(layer, Pool):
        pool = nn.MaxPool2d if layer.kind == "max" else nn.AvgPool2d
        return pool(layer.kernel, stride=2), cin
    if isinstance(layer, Dropout):
        return nn.Dropout(DROPOUT_P), cin
    raise TypeError(f"not a layer: {layer!r}")


def build_model(
    arch: Architecture,
    in_channels: int,
    image_size: int,
    num_classes: int,
    width: float = 1.0,
) -> nn.Sequential:
    """Build ``arch`` followed by the implied head (global average pool + Linear).

    The softmax of the head lives in the loss. ``width`` multiplies every channel count.
    Raises ``ValueError`` when a layer shrinks the feature map below 1x1.
    """
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if not arch.fits(image_size):
        raise ValueError(f"{arch} shrinks a {image_size}x{image_size} input below 1x1")
    modules: list[nn.Module] = []
    channels = in_channels
    for layer in arch:
        module, channels = _build_layer(layer, channels, width)
        modules.append(module)
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*modules)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def inherit_from(model: nn.Sequential, parent_state: dict[str, torch.Tensor]) -> int:
    """Start ``model`` (an architecture a_1..a_t built by :func:`build_model`) from the trained
    weights of its prefix a_1..a_{t-1}; return how many tensors were copied.

    The prefix's layers are copied as they are (same layers on the same input: same shapes). The
    new layer a_t starts close to the identity where its shape allows: a residual block that keeps
    channels and size gets its second BN scaled to zero, so the block returns its (non-negative,
    post-ReLU) input exactly; a convolution that keeps channels, with an odd kernel, starts as a
    Dirac delta (BN then normalises what passes). The head is the prefix's when its input width
    is unchanged (so the child starts as the parent's function where the new layer is an exact
    identity), else fresh.
    """
    n = len(model) - 3  # layers of the architecture; then pool, flatten, linear
    copied = 0
    own = model.state_dict()
    for key, value in parent_state.items():
        index, _, rest = key.partition(".")
        i = int(index)
        if i < n - 1:
            target = key
        elif i == n + 1:  # the parent's Linear head, one module earlier than ours
            target = f"{n + 2}.{rest}"
        else:
            continue
        if target in own and own[target].shape == value.shape:
            own[target] = value.clone()
            copied += 1
    model.load_state_dict(own)
    new = model[n - 1]
    with torch.no_grad():
        if isinstance(new, ResidualBlock) and isinstance(new.shortcut, nn.Identity):
            new.bn2.weight.zero_()
        elif isinstance(new, ConvBNReLU):
            conv = next(m for m in new if isinstance(m, nn.Conv2d))
            if conv.in_channels == conv.out_channels and conv.kernel_size[0] % 2 == 1:
                nn.init.dirac_(conv.weight)
    return copied
