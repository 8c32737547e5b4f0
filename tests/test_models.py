"""The child builder: Architecture -> torch module, shapes, width, the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.models import DROPOUT_P, Subsample, build_model, count_parameters, scaled_channels
from nas_gym.search_space import DEFAULT_VOCABULARY, Architecture

POSTER_BEST = "R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3"


def _side_after_each_layer(model: nn.Sequential, arch: Architecture, x: torch.Tensor) -> list[int]:
    sides = []
    with torch.no_grad():
        for i in range(len(arch)):
            x = model[i](x)
            assert x.shape[-1] == x.shape[-2]
            sides.append(x.shape[-1])
    return sides


CASES = [
    # (arch, in_channels, image_size)
    ("C32k3", 1, 28),
    ("C32k4", 1, 28),
    ("C32k4-C64k4-C32k1-C32k5", 1, 14),
    ("C64k4-MP3-C32k4", 3, 32),
    ("R32s2", 1, 14),
    ("R32s2-R64s2-R128s2", 1, 28),
    ("R64s2-R64s2-R64s2-R64s2-R64s2", 3, 32),
    ("R32s2-R32s2-R32s2-R32s2", 1, 14),  # 14 -> 7 -> 4 -> 2 -> 1
    ("MP2-MP2-MP2-MP2", 1, 28),  # 28 -> 14 -> 7 -> 3 -> 1
    ("AP3-C32k4-AP3", 1, 14),
    ("R32-R64-DR-R64s2", 3, 32),
    (POSTER_BEST, 1, 28),
    (POSTER_BEST, 3, 32),
    (POSTER_BEST, 1, 14),
]


@pytest.mark.parametrize("text, cin, size", CASES)
def test_output_shape_and_feature_map_sides(text, cin, size):
    arch = Architecture.parse(text)
    model = build_model(arch, in_channels=cin, image_size=size, num_classes=10, width=0.125).eval()
    x = torch.zeros(2, cin, size, size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 10)
    assert out.dtype == torch.float32
    assert _side_after_each_layer(model, arch, x) == arch.spatial_sizes(size)
    if len(arch):
        with torch.no_grad():
            features = model[: len(arch)](x)
        assert features.shape[-2:] == (arch.output_size(size),) * 2
    # one module per layer, then the head: GAP + Flatten + Linear
    assert len(model) == len(arch) + 3
    assert isinstance(model[-3], nn.AdaptiveAvgPool2d)
    assert isinstance(model[-1], nn.Linear)


def test_every_vocabulary_layer_builds_and_keeps_its_predicted_side():
    for size in (14, 28, 32):
        x = torch.zeros(2, 1, size, size)
        for layer in DEFAULT_VOCABULARY.layers:
            arch = Architecture((layer,))
            model = build_model(arch, 1, size, 10, width=0.125).eval()
            assert _side_after_each_layer(model, arch, x) == arch.spatial_sizes(size), layer.token


def test_training_mode_forward_and_backward():
    arch = Architecture.parse("C32k4-R64s2-MP2-DR")
    model = build_model(arch, 1, 14, 7, width=0.25).train()
    x = torch.randn(4, 1, 14, 14)
    out = model(x)
    assert out.shape == (4, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_empty_architecture_is_the_head_alone():
    model = build_model(Architecture(), in_channels=3, image_size=32, num_classes=10)
    assert [type(m) for m in model] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear]
    assert model[-1].in_features == 3 and model[-1].out_features == 10
    assert count_parameters(model) == 3 * 10 + 10
    with torch.no_grad():
        assert model(torch.zeros(5, 3, 32, 32)).shape == (5, 10)


@pytest.mark.parametrize("text, size", [("AP2", 1), ("MP2-MP2-MP2-MP2-MP2", 28), ("MP3-MP3-MP3", 14)])
def test_building_an_architecture_that_shrinks_below_1x1_raises(text, size):
    with pytest.raises(ValueError, match=text):
        build_model(Architecture.parse(text), 1, size, 10)


@pytest.mark.parametrize("width", [0, -1.0])
def test_non_positive_width_raises(width):
    with pytest.raises(ValueError, match="width"):
        build_model(Architecture.parse("C32k3"), 1, 28, 10, width=width)


def test_scaled_channels():
    assert scaled_channels(32, 1.0) == 32
    assert scaled_channels(32, 0.5) == 16
    assert scaled_channels(128, 0.125) == 16
    assert scaled_channels(64, 2.0) == 128
    assert scaled_channels(32, 0.001) == 1  # never zero channels
    assert scaled_channels(64, 0.7) == 45  # nearest, not truncated (44.8)


@pytest.mark.parametrize("width", [1.0, 0.5, 0.125, 1.5])
def test_width_scales_every_channel_count(width):
    arch = Architecture.parse("C32k3-R64-R128s2-MP2-C64k4-DR")
    model = build_model(arch, 1, 28, 10, width=width)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # the first conv of each layer (shortcut convs come after a block's two convs)
    c32, r64a, r64b, r64s, r128a, r128b, r128s, c64 = convs
    assert c32.in_channels == 1
    assert c32.out_channels == scaled_channels(32, width)
    assert r64a.out_channels == r64b.out_channels == r64s.out_channels == scaled_channels(64, width)
    assert r128a.out_channels == r128s.out_channels == scaled_channels(128, width)
    assert c64.out_channels == scaled_channels(64, width)
    assert model[-1].in_features == scaled_channels(64, width)
    assert model[-1].out_features == 10


def test_wider_models_have_more_parameters():
    arch = Architecture.parse(POSTER_BEST)
    counts = [count_parameters(build_model(arch, 1, 28, 10, width=w)) for w in (0.125, 0.5, 1.0)]
    assert counts[0] < counts[1] < counts[2]


def test_layers_are_the_modules_their_tokens_name():
    arch = Architecture.parse("C32k3-MP2-AP3-DR-R32-R64s2")
    model = build_model(arch, 1, 28, 10)
    conv = model[0]
    assert [type(m) for m in conv][-3:] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    c = next(m for m in conv if isinstance(m, nn.Conv2d))
    assert c.kernel_size == (3, 3) and c.stride == (1, 1)
    assert isinstance(model[1], nn.MaxPool2d) and model[1].kernel_size == 2 and model[1].stride == 2
    assert isinstance(model[2], nn.AvgPool2d) and model[2].kernel_size == 3 and model[2].stride == 2
    assert isinstance(model[3], nn.Dropout) and model[3].p == DROPOUT_P
    # identity shortcut when the shape is kept, projection when it changes
    r32_convs = [m for m in model[4].modules() if isinstance(m, nn.Conv2d)]
    r64_convs = [m for m in model[5].modules() if isinstance(m, nn.Conv2d)]
    assert len(r32_convs) == 2  # 32 -> 32 channels, stride 1: identity shortcut
    assert all(c.kernel_size == (3, 3) for c in r32_convs)
    assert len(r64_convs) == 3  # stride 2 and 32 -> 64: 1x1 projection
    # the projection subsamples, then convolves at unit stride (oneDNN's strided 1x1 is broken)
    assert r64_convs[0].stride == (2, 2) and r64_convs[-1].stride == (1, 1)
    assert r64_convs[-1].kernel_size == (1, 1) and isinstance(model[5].shortcut[0], Subsample)
    assert r64_convs[-1].kernel_size == (1, 1)
    first = build_model(Architecture.parse("R32"), 1, 28, 10)  # 1 -> 32 channels: projected
    assert len([m for m in first[0].modules() if isinstance(m, nn.Conv2d)]) == 3


def test_pools_compute_max_and_average():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    mp = build_model(Architecture.parse("MP2"), 1, 4, 10)[0]
    ap = build_model(Architecture.parse("AP2"), 1, 4, 10)[0]
    assert mp(x).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    assert ap(x).flatten().tolist() == [2.5, 4.5, 10.5, 12.5]


def test_even_kernel_keeps_the_side_and_sees_every_pixel():
    # "same" padding for k=4: every output pixel is defined and a one-hot input reaches the map
    model = build_model(Architecture.parse("C1k4"), 1, 6, 2).eval()
    conv = next(m for m in model[0] if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        conv.weight.fill_(1.0)
        x = torch.ones(1, 1, 6, 6)
        pre = nn.Sequential(*list(model[0])[:2])(x)  # pad + conv, before BN
    assert pre.shape == (1, 1, 6, 6)
    # interior pixels see the whole 4x4 window; the corner at (0, 0) sees (1 + 2) x (1 + 2)
    assert pre[0, 0, 2, 2].item() == 16.0
    assert pre[0, 0, 0, 0].item() == 9.0
    assert pre[0, 0, 5, 5].item() == 4.0


def test_subsampled_projection_equals_a_strided_1x1_convolution() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 1, bias=False)
    x = torch.randn(4, 3, 13, 13)
    with torch.backends.mkldnn.flags(enabled=False):
        expected = F.conv2d(x, conv.weight, stride=2)
        got = conv(Subsample(2)(x))
    assert got.shape == expected.shape == (4, 8, 7, 7)
    assert torch.allclose(got, expected, atol=1e-6)


def test_a_layer_counts_the_parameters_the_builder_gives_it():
    # each layer knows its parameters (nas_gym.search_space), so the table and the surrogate count
    # them without torch: the count must be what the builder builds, at every width
    from nas_gym.build.samples import sample_architectures
    from nas_gym.search_space import Architecture

    archs = sample_architectures(40, np.random.default_rng(3), 28)
    archs += [Architecture.parse("C32k1-R32-R64s2-MP3-DR-AP2-C128k4")]
    for arch in archs:
        for in_channels, width in ((1, 0.25), (3, 1.0), (3, 0.5)):
            built = count_parameters(build_model(arch, in_channels, 28, 10, width))
            assert arch.num_params(in_channels, 10, width) == built, (str(arch), width)


def test_every_layer_describes_itself():
    from nas_gym.search_space import DEFAULT_VOCABULARY, KINDS

    kinds = set()
    for layer in DEFAULT_VOCABULARY.layers:
        kind, setting = layer.describe()
        assert kind and setting and layer.label()[0] in kind.lower()
        kinds.add(layer.feature_kind)
    assert kinds == set(range(len(KINDS)))
