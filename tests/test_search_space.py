"""The search space: tokens, the default vocabulary, validity, shapes, masks, observations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas_gym.search_space import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_VOCABULARY,
    HEAD,
    Architecture,
    ArchitectureSyntaxError,
    Conv,
    Dropout,
    OutOfSpaceError,
    Pool,
    Residual,
    Vocabulary,
    layer_from_token,
)

POSTER_BEST = "R128-C32k3-C32k3-R64-AP2-R64-R64-C128k4-C64k3"

EXPECTED_TOKENS = [
    "C32k1", "C32k3", "C32k4", "C32k5",
    "C64k1", "C64k3", "C64k4", "C64k5",
    "C128k1", "C128k3", "C128k4", "C128k5",
    "R32", "R32s2", "R64", "R64s2", "R128", "R128s2",
    "MP2", "MP3", "AP2", "AP3",
    "DR",
    "HEAD",
]  # fmt: skip

V = DEFAULT_VOCABULARY


# ---------------------------------------------------------------------------------------------
# the default vocabulary


def test_default_vocabulary_is_the_24_actions_of_the_design_in_order():
    assert V.num_actions == 24
    assert V.tokens == EXPECTED_TOKENS
    assert V.head_action == 23
    assert V.tokens[V.head_action] == HEAD
    assert V.max_layers == DEFAULT_MAX_LAYERS == 15
    assert Vocabulary() == V


def test_default_vocabulary_actions_map_to_their_layers():
    assert V.layer_of(0) == Conv(32, 1)
    assert V.layer_of(11) == Conv(128, 5)
    assert V.layer_of(12) == Residual(32, 1)
    assert V.layer_of(13) == Residual(32, 2)
    assert V.layer_of(18) == Pool("max", 2)
    assert V.layer_of(21) == Pool("avg", 3)
    assert V.layer_of(22) == Dropout()
    for action, token in enumerate(EXPECTED_TOKENS[:-1]):
        assert V.action_of(layer_from_token(token)) == action


@pytest.mark.parametrize("action", [23, 24, -1, 100])
def test_layer_of_rejects_head_and_out_of_range_actions(action):
    with pytest.raises(OutOfSpaceError):
        V.layer_of(action)


def test_action_of_a_layer_outside_the_vocabulary_raises():
    with pytest.raises(OutOfSpaceError, match="C7k9"):
        V.action_of(Conv(7, 9))


def test_custom_vocabulary_and_max_layers():
    v = Vocabulary.from_tokens(["C16k3", "MP2", "DR"], max_layers=3)
    assert v.num_actions == 4
    assert v.tokens == ["C16k3", "MP2", "DR", HEAD]
    assert v.head_action == 3
    assert v.is_valid(Architecture.parse("C16k3-MP2-DR"), 28)
    assert not v.is_valid(Architecture.parse("C16k3-MP2-DR-DR"), 28)  # 4 > max_layers
    assert not v.is_valid(Architecture.parse("C32k3"), 28)  # in the default, not in this one
    assert V.num_actions == 24  # the default is untouched


def test_vocabulary_rejects_bad_configurations():
    with pytest.raises(ValueError, match="twice"):
        Vocabulary.from_tokens(["C16k3", "C16k3"])
    with pytest.raises(ValueError):
        Vocabulary(())
    with pytest.raises(ValueError, match="max_layers"):
        Vocabulary.from_tokens(["C16k3"], max_layers=0)
    with pytest.raises(ArchitectureSyntaxError, match="C16"):
        Vocabulary.from_tokens(["C16"])


# ---------------------------------------------------------------------------------------------
# text form


@pytest.mark.parametrize(
    "text",
    [
        POSTER_BEST,
        "C32k3",
        "R32s2-R64s2-R128s2",
        "MP2-MP3-AP2-AP3-DR",
        "C7k9-R300s2-R5-MP7-AP11",  # outside the vocabulary but well-formed
        "C65536k64",
        "",
    ],
)
def test_parse_and_str_round_trip_exactly(text):
    arch = Architecture.parse(text)
    assert str(arch) == text
    assert Architecture.parse(str(arch)) == arch
    assert len(arch) == (0 if text == "" else text.count("-") + 1)


def test_parse_builds_the_layers_named_by_the_tokens():
    arch = Architecture.parse("C7k9-R300s2-R64-MP3-AP2-DR")
    assert list(arch) == [
        Conv(7, 9),
        Residual(300, 2),
        Residual(64, 1),
        Pool("max", 3),
        Pool("avg", 2),
        Dropout(),
    ]


def test_architecture_is_an_immutable_hashable_value():
    a, b = Architecture.parse(POSTER_BEST), Architecture.parse(POSTER_BEST)
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != Architecture.parse("R128-C32k3")
    assert eval(repr(a), {"Architecture": Architecture}) == a
    longer = a.append(Dropout())
    assert str(a) == POSTER_BEST  # append returns a new value
    assert str(longer) == POSTER_BEST + "-DR"
    assert isinstance(a[:2], Architecture) and str(a[:2]) == "R128-C32k3"
    assert a[0] == Residual(128)
    assert [str(p) for p in Architecture.parse("C32k3-MP2-DR").prefixes()] == [
        "C32k3",
        "C32k3-MP2",
        "C32k3-MP2-DR",
    ]


@pytest.mark.parametrize(
    "text, bad",
    [
        ("C32k", "C32k"),
        ("C32k3-X1", "X1"),
        ("C032k3", "C032k3"),
        ("C0k3", "C0k3"),
        ("C32k0", "C32k0"),
        ("R64s3", "R64s3"),
        ("R064", "R064"),
        ("MP02", "MP02"),
        ("MP0", "MP0"),
        ("c32k3", "c32k3"),
        ("HEAD", "HEAD"),
        ("R64-DR-dr", "dr"),
        ("C32k3 R64", "C32k3 R64"),
        ("C99999999k3", "C99999999k3"),
    ],
)
def test_malformed_text_raises_a_syntax_error_naming_the_token(text, bad):
    with pytest.raises(ArchitectureSyntaxError) as info:
        Architecture.parse(text)
    assert isinstance(info.value, ValueError)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("text", ["C32k3--R64", "-C32k3", "C32k3-", "--"])
def test_empty_tokens_raise_a_syntax_error_showing_the_text(text):
    with pytest.raises(ArchitectureSyntaxError) as info:
        Architecture.parse(text)
    assert repr(text) in str(info.value)
    assert "-" in str(info.value)


def test_parse_rejects_non_strings():
    with pytest.raises(ArchitectureSyntaxError):
        Architecture.parse(None)  # type: ignore[arg-type]
    with pytest.raises(ArchitectureSyntaxError):
        Architecture.parse(["C32k3"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# validity: in the space or not


def test_the_posters_best_is_valid_on_all_image_sizes():
    arch = Architecture.parse(POSTER_BEST)
    for size in (14, 28, 32):
        V.validate(arch, size)
        assert V.is_valid(arch, size)


def test_layers_outside_the_vocabulary_are_out_of_space_not_a_syntax_error():
    arch = Architecture.parse("C32k3-C7k9")  # parses fine
    with pytest.raises(OutOfSpaceError, match="C7k9") as info:
        V.validate(arch, 28)
    assert not isinstance(info.value, ArchitectureSyntaxError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(OutOfSpaceError, match="R300s2"):
        V.validate(Architecture.parse("R300s2"), 28)
    assert not issubclass(ArchitectureSyntaxError, OutOfSpaceError)
    assert not issubclass(OutOfSpaceError, ArchitectureSyntaxError)


def test_too_many_layers_is_out_of_space():
    V.validate(Architecture.parse("-".join(["C32k3"] * 15)), 28)
    with pytest.raises(OutOfSpaceError, match="16"):
        V.validate(Architecture.parse("-".join(["C32k3"] * 16)), 28)


def test_shrinking_below_1x1_is_out_of_space_and_names_the_layer():
    arch = Architecture.parse("MP2-MP2-MP2-MP2-AP2")  # 28 -> 14 -> 7 -> 3 -> 1 -> 0
    with pytest.raises(OutOfSpaceError, match=r"layer 5 \(AP2\)"):
        V.validate(arch, 28)
    assert V.is_valid(arch[:4], 28)
    assert not V.is_valid(arch, 28)
    assert V.is_valid(arch, 32)  # 32 -> 16 -> 8 -> 4 -> 2 -> 1


@pytest.mark.parametrize(
    "text, size",
    [("C7k9", 28), ("-".join(["DR"] * 16), 28), ("MP3-MP3-MP3", 14), ("AP2", 1), ("", 28), ("R32", 1)],
)
def test_is_valid_never_raises(text, size):
    arch = Architecture.parse(text)
    expected = text in ("", "R32")
    assert V.is_valid(arch, size) is expected


# ---------------------------------------------------------------------------------------------
# shapes


@pytest.mark.parametrize(
    "text, size, expected",
    [
        ("MP3", 14, [6]),
        ("MP2", 14, [7]),
        ("AP3", 7, [3]),
        ("R32s2", 7, [4]),
        ("R32s2", 28, [14]),
        ("R32s2", 1, [1]),
        ("R32", 5, [5]),
        ("C32k4-C32k5-C32k1-DR", 28, [28, 28, 28, 28]),
        ("AP2", 1, [0]),
        ("MP3", 2, [0]),
        ("R64s2-R64s2-R64s2-MP2", 32, [16, 8, 4, 2]),
        (POSTER_BEST, 28, [28, 28, 28, 28, 14, 14, 14, 14, 14]),
        ("", 28, []),
    ],
)
def test_spatial_sizes(text, size, expected):
    arch = Architecture.parse(text)
    assert arch.spatial_sizes(size) == expected
    assert arch.output_size(size) == (expected[-1] if expected else size)
    assert arch.fits(size) == all(s >= 1 for s in expected)


# ---------------------------------------------------------------------------------------------
# masks


def _allowed(mask: np.ndarray) -> set[str]:
    return {V.tokens[i] for i in np.flatnonzero(mask)}


def test_mask_of_the_empty_architecture_masks_only_head():
    mask = V.action_mask(Architecture(), 28)
    assert mask.dtype == bool and mask.shape == (24,)
    assert not mask[V.head_action]
    assert mask[: V.head_action].all()


def test_mask_allows_head_once_a_layer_is_there():
    mask = V.action_mask(Architecture.parse("C32k3"), 28)
    assert mask.all()


def test_mask_blocks_pools_that_do_not_fit():
    # at 2x2 only the 2-pools fit, at 1x1 no pool fits, at 3x3 all do
    at_2 = V.action_mask(Architecture.parse("R32s2-R32s2-R32s2-R32s2"), 32)  # 32 -> 2
    assert Architecture.parse("R32s2-R32s2-R32s2-R32s2").output_size(32) == 2
    assert _allowed(at_2) == set(EXPECTED_TOKENS) - {"MP3", "AP3"}
    at_1 = V.action_mask(Architecture.parse("MP2-MP2-MP2-MP2"), 28)
    assert _allowed(at_1) == set(EXPECTED_TOKENS) - {"MP2", "MP3", "AP2", "AP3"}
    at_3 = V.action_mask(Architecture.parse("MP2-MP2-MP2"), 28)
    assert at_3.all()


def test_mask_at_max_layers_leaves_only_head():
    arch = Architecture.parse("-".join(["DR"] * 15))
    mask = V.action_mask(arch, 28)
    assert _allowed(mask) == {HEAD}
    small = Vocabulary(max_layers=2)
    assert _allowed(small.action_mask(Architecture.parse("C32k3-DR"), 28)) == {HEAD}
    assert small.action_mask(Architecture.parse("C32k3"), 28).all()


# ---------------------------------------------------------------------------------------------
# observations


def test_encode_decode_round_trip():
    arch = Architecture.parse(POSTER_BEST)
    obs = V.encode(arch)
    assert obs.shape == (15,) and obs.dtype == np.int64
    assert obs.tolist() == [a + 1 for a in V.actions_of(arch)] + [0] * 6
    assert V.decode(obs) == arch
    assert V.encode(Architecture()).tolist() == [0] * 15
    assert V.decode(np.zeros(15, dtype=np.int64)) == Architecture()
    full = Architecture.parse("-".join(EXPECTED_TOKENS[:15]))
    assert V.encode(full).tolist() == list(range(1, 16))
    assert V.decode(V.encode(full)) == full


def test_decode_rejects_values_without_a_layer():
    with pytest.raises(OutOfSpaceError):
        V.decode([1, 24])  # HEAD
    with pytest.raises(OutOfSpaceError):
        V.decode([25])


def test_encode_rejects_layers_outside_the_vocabulary():
    with pytest.raises(OutOfSpaceError, match="C7k9"):
        V.encode(Architecture.parse("C7k9"))


# ---------------------------------------------------------------------------------------------
# properties


@st.composite
def masked_episode(draw):
    """Actions a masked agent could take: (image_size, layer actions, ended by HEAD?)."""
    size = draw(st.sampled_from([1, 2, 3, 7, 14, 28, 32]))
    arch, actions = Architecture(), []
    while True:
        mask = V.action_mask(arch, size)
        allowed = np.flatnonzero(mask).tolist()
        action = draw(st.sampled_from(allowed))
        if action == V.head_action:
            return size, actions
        actions.append(action)
        arch = arch.append(V.layer_of(action))


@settings(max_examples=150, deadline=None)
@given(masked_episode())
def test_masked_episodes_stay_valid_and_round_trip_through_text(episode):
    size, actions = episode
    assert len(actions) <= V.max_layers
    arch = V.architecture(actions)
    assert V.is_valid(arch, size)
    assert len(arch) == len(actions)
    text = str(arch)
    parsed = Architecture.parse(text)
    assert parsed == arch
    assert V.actions_of(parsed) == actions
    assert V.decode(V.encode(arch)) == arch
    # the mask after it is exactly "appending this layer stays valid"
    mask = V.action_mask(arch, size)
    for action in range(V.head_action):
        assert mask[action] == V.is_valid(arch.append(V.layer_of(action)), size), V.tokens[action]
    assert mask[V.head_action] == (len(arch) > 0)


_layers = st.one_of(
    st.builds(Conv, st.integers(1, 1 << 16), st.integers(1, 64)),
    st.builds(Residual, st.integers(1, 1 << 16), st.sampled_from([1, 2])),
    st.builds(Pool, st.sampled_from(["max", "avg"]), st.integers(1, 64)),
    st.just(Dropout()),
    st.sampled_from(V.layers),  # the vocabulary's own layers, so that valid architectures occur too
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_layers, max_size=20))
def test_any_well_formed_architecture_round_trips(layers):
    arch = Architecture(tuple(layers))
    assert Architecture.parse(str(arch)) == arch
    assert str(Architecture.parse(str(arch))) == str(arch)
    # valid: at most max_layers layers, all of the vocabulary, and the feature map never below 1x1
    expected = len(arch) <= V.max_layers and all(layer in V.layers for layer in arch) and arch.fits(32)
    assert V.is_valid(arch, 32) == expected


# ---------------------------------------------------------------------------------------------
# the dependency rule


def test_search_space_imports_no_torch():
    code = "import sys, nas_gym, nas_gym.search_space; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_the_reward_modes_are_stated_once_for_single_and_vector_envs():
    import numpy as np

    from nas_gym.search_space import check_reward_mode, step_reward

    # a layer to 0.6 from 0.5, then HEAD closing it
    assert step_reward("prefix", 0.6, 0.5, False, False) == 0.6
    assert step_reward("prefix", 0.6, 0.6, True, True) == 0.6
    assert step_reward("improvement", 0.6, 0.5, False, False) == pytest.approx(0.1)
    assert step_reward("improvement", 0.6, 0.6, True, True) == 0.0
    assert step_reward("final", 0.0, 0.0, False, False) == 0.0
    assert step_reward("final", 0.6, 0.0, True, True) == 0.6
    # elementwise, as the vector env asks
    got = step_reward(
        "final", np.array([0.0, 0.7]), np.zeros(2), np.array([False, True]), np.array([False, True])
    )
    assert got.tolist() == [0.0, 0.7]
    with pytest.raises(ValueError, match="reward must be one of"):
        check_reward_mode("best")
    with pytest.raises(ValueError, match="reward must be one of"):
        step_reward("best", 0.5, 0.0, False, False)
