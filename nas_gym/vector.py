"""``gym.make_vec("NASSurrogate-v0", num_envs=N)``: N surrogate envs stepped as arrays, with one
batched prediction per step for every architecture the N steps evaluate.

RL users run millions of steps through vector envs; N copies of the single env in a
``SyncVectorEnv`` pay Python's cost per copy and a prediction per architecture. Here the episode
state of all N envs lives in arrays (the observation slots, the feature map's side, the length),
masks come from a table indexed by (side, room left, non-empty), and the architectures the step
evaluates are predicted together (:meth:`nas_gym.surrogate.Surrogate.predict_keys`, the cache the
single env uses too). Rewards, observations, terminations and ``info`` are those of N single envs
under Gymnasium's ``SyncVectorEnv`` (``tests/test_vector.py`` checks them step for step), in
either of its autoreset modes, chosen with the ``autoreset_mode`` kwarg (a custom vector env
takes its settings as kwargs: ``gym.make_vec(id, N, autoreset_mode=AutoresetMode.SAME_STEP)``):
next-step (the default: the step after an episode ends resets that env and returns its first
observation with reward 0) or same-step (the step that ends an episode returns the next
episode's first observation, the last one in ``info["final_obs"]`` and its info in
``info["final_info"]``, as CleanRL's scripts expect).

What the single env has and this one does not: a result store (nothing here is resumable; a
search that needs one uses ``gym.make``) and rendering. Imports no torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from nas_gym.search_space import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_VOCABULARY,
    Architecture,
    Vocabulary,
    check_reward_mode,
    step_reward,
)
from nas_gym.surrogate import _STAGES, SurrogateEvaluator, _layer_table, load_surrogate

__all__ = ["NASSurrogateVectorEnv"]


class NASSurrogateVectorEnv(VectorEnv):
    """``num_envs`` copies of ``NASSurrogate-v0`` in arrays (see the module). Takes the single env's
    kwargs (``surrogate``, ``noise``, ``reward``, ``max_layers``, ``train_seed``) but ``store``
    and ``render_mode``, which it refuses."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        surrogate: str | None = None,
        noise: bool = False,
        store: Any = None,
        reward: str = "prefix",
        max_layers: int = DEFAULT_MAX_LAYERS,
        train_seed: int | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        epochs: float | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.autoreset_mode = mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        if store is not None:
            raise ValueError(
                "the surrogate's vector env keeps no result store; for a resumable search use "
                "gym.make('NASSurrogate-v0', store=...)"
            )
        if render_mode is not None:
            raise ValueError("the surrogate's vector env does not render; render a single env instead")
        check_reward_mode(reward)
        if isinstance(max_layers, bool) or not isinstance(max_layers, int) or not 1 <= max_layers <= 15:
            raise ValueError(f"max_layers must be an int in 1..15, got {max_layers!r}")
        self.num_envs = num_envs
        # its noise and its fidelities, never its store
        self.evaluator = SurrogateEvaluator(load_surrogate(surrogate), noise, epochs=epochs)
        self.surrogate = self.evaluator.surrogate  # at this env's epochs (reset options may change them)
        self._epochs: float | None = None
        self.noise = bool(noise)
        self.reward_mode = reward
        vocab = DEFAULT_VOCABULARY
        if max_layers != DEFAULT_MAX_LAYERS:
            vocab = Vocabulary(DEFAULT_VOCABULARY.layers, max_layers)
        self.vocabulary = vocab
        self.image_size = image_size = self.surrogate.image_size
        self.max_layers = max_layers
        n_actions = vocab.num_actions
        self.single_action_space = spaces.Discrete(n_actions)
        self.single_observation_space = spaces.MultiDiscrete([n_actions + 1] * max_layers, dtype=np.int64)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.render_mode = None
        self._head = vocab.head_action
        self._tokens = [layer.token for layer in vocab.layers]
        self._joined = [f"-{token}" for token in self._tokens]  # a token after another
        # the feature map's side after each layer, from each side (0..image_size)
        self._next_side = np.array(
            [[layer.out_hw(hw) for hw in range(image_size + 1)] for layer in vocab.layers]
            + [list(range(image_size + 1))]
        )
        self._masks = _mask_table(self._next_side, self._head)
        self._features = _Features(vocab, image_size, self.surrogate.meta, num_envs)
        self._fixed_train_seed = train_seed
        self._train_seeds = np.full(num_envs, -1 if train_seed is None else int(train_seed), dtype=np.int64)
        self._rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(num_envs)]
        # the episode state of every env
        self._obs = np.zeros((num_envs, max_layers), dtype=np.int64)
        self._length = np.zeros(num_envs, dtype=np.int64)
        self._side = np.full(num_envs, image_size, dtype=np.int64)
        self._texts = [""] * num_envs
        self._accuracy = np.zeros(num_envs)
        self._num_params = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.ones(num_envs, dtype=bool)
        self._started = False

    # -- Gymnasium's vector API -----------------------------------------------------------------

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} envs")
        if options:
            self._apply_epochs_option(options)
        for i, s in enumerate(seeds):
            self._reset_one(i, s)
        self._started = True
        return self._obs.copy(), self._info(np.zeros(self.num_envs, dtype=bool), np.zeros(self.num_envs))

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        n = self.num_envs
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        invalid = np.zeros(n, dtype=bool)
        seconds = np.zeros(n)
        resetting = np.flatnonzero(self._needs_reset)  # (never any in the same-step mode)
        for i in resetting:  # next-step autoreset: this step only resets the env
            self._reset_one(int(i), None)
        live = ~self._needs_reset
        live[resetting] = False
        room = (self._length < self.max_layers).astype(np.int64)
        nonempty = (self._length > 0).astype(np.int64)
        allowed = self._masks[self._side, room, nonempty, actions]
        bad = live & ~allowed
        invalid[bad] = True
        terminated[bad] = True
        head = live & allowed & (actions == self._head)
        layer = live & allowed & ~head
        previous = self._accuracy.copy()
        # layers: append to every architecture that takes one
        final = self.reward_mode == "final"
        grown = np.flatnonzero(layer)
        texts, joined, tokens = self._texts, self._joined, self._tokens
        for g, a in zip(grown.tolist(), actions[grown].tolist(), strict=True):
            texts[g] = texts[g] + joined[a] if texts[g] else tokens[a]
        self._obs[grown, self._length[grown]] = actions[grown] + 1
        self._side[layer] = self._next_side[actions[layer], self._side[layer]]
        self._features.append(np.flatnonzero(layer), actions[layer], self._length[layer], self._side[layer])
        self._length[layer] += 1
        terminated[head] = True
        terminated[layer & (self._length >= self.max_layers)] = True
        # what the step evaluates: every new prefix, or under reward="final" what the episode closes
        evaluated = np.flatnonzero((head | (layer & terminated)) if final else layer)
        if len(evaluated):
            values = self._predict([int(i) for i in evaluated])
            for i, (accuracy, sec) in zip(evaluated, values, strict=True):
                self._accuracy[i], seconds[i] = accuracy, sec
            self._num_params[evaluated] = self._features.num_params(evaluated)
        if final:
            mid = layer & ~terminated  # nothing trained yet: accuracy 0, the parameters of the prefix
            self._accuracy[mid] = 0.0
            self._num_params[mid] = self._features.num_params(np.flatnonzero(mid))
        valid = head | layer
        rewards[valid] = step_reward(
            self.reward_mode, self._accuracy[valid], previous[valid], head[valid], terminated[valid]
        )
        self._needs_reset |= terminated
        info = self._info(invalid, seconds)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and terminated.any():
            info = self._reset_ended(np.flatnonzero(terminated), info, invalid, seconds)
        return self._obs.copy(), rewards, terminated, np.zeros(n, dtype=bool), info

    def _reset_ended(
        self, ended: np.ndarray, info: dict[str, Any], invalid: np.ndarray, seconds: np.ndarray
    ) -> dict[str, Any]:
        """Same-step autoreset: the ended envs' last observation and info go to ``final_obs`` /
        ``final_info`` (as ``SyncVectorEnv`` files them), then they are reset, and the step
        returns their first observation and reset info."""
        final: dict[str, Any] = {}
        for i in ended:
            single = {key: _scalar(value[i]) for key, value in info.items() if not key.startswith("_")}
            final = self._add_info(final, {"final_obs": self._obs[i].copy(), "final_info": single}, int(i))
            self._reset_one(int(i), None)
        invalid, seconds = invalid.copy(), seconds.copy()
        invalid[ended], seconds[ended] = False, 0.0
        return {**final, **self._info(invalid, seconds)}

    def action_masks(self) -> np.ndarray:
        """The allowed next actions of every env, shape (num_envs, actions), as ``np.int8`` 1 / 0
        (each row what Gymnasium's ``Discrete.sample(mask=)`` takes; sb3-contrib reads them too)."""
        room = (self._length < self.max_layers).astype(np.int64)
        return self._masks[self._side, room, (self._length > 0).astype(np.int64)].astype(np.int8)

    # -- helpers --------------------------------------------------------------------------------

    def _reset_one(self, i: int, seed: int | None) -> None:
        if seed is not None:
            self._rngs[i] = np.random.default_rng(seed)
        if self._fixed_train_seed is None and (seed is not None or self._train_seeds[i] < 0):
            # as the single env: its reset seed, or one drawn from its generator the first time
            self._train_seeds[i] = int(seed) if seed is not None else int(self._rngs[i].integers(2**31 - 1))
        self._obs[i] = 0
        self._length[i] = 0
        self._side[i] = self.image_size
        self._texts[i] = ""
        self._accuracy[i] = 0.0
        self._num_params[i] = 0
        self._needs_reset[i] = False
        self._features.reset(i)

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.num_envs,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"actions must be {self.num_envs} ints in 0..{self._head}, one per env; got {actions!r}"
            )
        if array.min() < 0 or array.max() > self._head:
            raise ValueError(f"actions must be ints in 0..{self._head}; got {actions!r}")
        return array.astype(np.int64)

    def _apply_epochs_option(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - {"epochs"})
        if unknown:
            raise ValueError(f"unknown reset option {unknown[0]!r}: this env takes 'epochs'")
        if options.get("epochs") is not None:
            epochs = self.evaluator.check_epochs(options["epochs"])
            self.surrogate, self._epochs = self.evaluator._at(epochs)[0], epochs

    def _predict(self, envs: list[int]) -> list[tuple[float, float]]:
        """(accuracy, train seconds) of the architectures of ``envs``: one batched prediction for
        those the surrogate has not predicted yet, then its seed noise where asked for."""
        keys = [self._texts[i] for i in envs]
        values = self.surrogate.predict_keys(
            keys, lambda js: self._features.rows([envs[j] for j in js], self._length)
        )
        if self.noise:
            values = [
                self.evaluator._values(self._architecture(i), int(self._train_seeds[i]), key, self._epochs)
                for i, key in zip(envs, keys, strict=True)
            ]
        return values

    def _architecture(self, i: int) -> Architecture:
        layers = self.vocabulary.layers
        return Architecture(tuple(layers[a - 1] for a in self._obs[i, : self._length[i]].tolist()))

    def _info(self, invalid: np.ndarray, seconds: np.ndarray) -> dict[str, Any]:
        everywhere = np.ones(self.num_envs, dtype=bool)
        values = {
            "arch": np.array(self._texts, dtype=object),
            "accuracy": self._accuracy.copy(),
            "num_params": self._num_params.copy(),
            "action_mask": self.action_masks(),
            "invalid_action": invalid,
            "train_seconds": seconds,
        }
        out: dict[str, Any] = {}
        for key, value in values.items():
            out[key], out[f"_{key}"] = value, everywhere
        return out


def _autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    modes = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
    try:
        mode = AutoresetMode(value)
    except ValueError:
        mode = None
    if mode not in modes:
        raise ValueError(f"autoreset_mode must be one of {', '.join(str(m) for m in modes)}, got {value!r}")
    return mode


def _mask_table(next_side: np.ndarray, head: int) -> np.ndarray:
    """The mask after an architecture, by (its side, room for a layer, non-empty):
    ``vocab.action_mask``'s rule, from the side after each layer (``next_side``)."""
    sides = next_side.shape[1]
    masks = np.zeros((sides, 2, 2, head + 1), dtype=bool)
    for hw in range(sides):
        for room in (0, 1):
            for nonempty in (0, 1):
                mask = masks[hw, room, nonempty]
                if room and hw >= 1:
                    mask[:-1] = next_side[:-1, hw] >= 1
                mask[head] = bool(nonempty)
    return masks


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python value a single env puts in its info (arrays stay arrays)."""
    return value.item() if isinstance(value, np.generic) else value


class _Features:
    """:func:`nas_gym.surrogate.features` and :func:`~nas_gym.surrogate.count_params` of every env's
    architecture, kept up to date layer by layer in arrays instead of recomputed from the whole
    architecture: the same running sums in the same order, so the same numbers (the scalars use
    the same ``math`` functions)."""

    def __init__(self, vocab: Vocabulary, image_size: int, meta: dict[str, Any], n: int) -> None:
        table = _layer_table(vocab)
        rows = [table[layer] for layer in vocab.layers]
        self.index = np.array([r[0] for r in rows])
        self.kind = np.array([r[1] for r in rows])
        self.channels_of = np.array([0 if r[2] is None else r[2] for r in rows])
        self.kernel2 = np.array([r[3] for r in rows])
        self.residual = np.array([r[4] for r in rows])
        self.stride2 = np.array([r[5] for r in rows])
        self.downsample = np.array([r[6] for r in rows]).astype(np.int64)
        top = int(max(self.channels_of.max(), 1))
        # the scalars of features(), by channel count and side, with the same math functions
        self.log2_channels = np.array([0.0] + [math.log2(c) / 7 for c in range(1, top + 1)])
        self.increment = 1 + self.log2_channels  # a layer's weight in its (kind, stage) count
        self.log2_volume = np.array(
            [
                [math.log2(s * s * c) / 14 if s and c else 0.0 for c in range(top + 1)]
                for s in range(image_size + 1)
            ]
        )
        self.in_channels, self.num_classes = int(meta["in_channels"]), int(meta["num_classes"])
        width = float(meta["width"])
        # count_params, layer by layer: each layer's parameters and output channels (as the layer
        # counts them, nas_gym.search_space) for every channel count its input can have
        cins = sorted(
            {self.in_channels, *(layer.out_channels(self.in_channels, width) for layer in vocab.layers)}
        )
        self.cin_index = np.zeros(max(cins) + 1, dtype=np.int64)
        self.cin_index[cins] = np.arange(len(cins))
        self.layer_params = np.array([[layer.num_params(c, width) for c in cins] for layer in vocab.layers])
        self.layer_out = np.array([[layer.out_channels(c, width) for c in cins] for layer in vocab.layers])
        self.image_size = image_size
        self.n_layers = len(rows)
        self.counts = np.zeros((n, self.n_layers))
        self.staged = np.zeros((n, 8, _STAGES))
        self.first = np.zeros((n, 8))
        self.present = np.zeros((n, 8))
        self.stage = np.zeros(n, dtype=np.int64)
        self.channels = np.ones(n, dtype=np.int64)
        self.params = np.zeros(n)
        self.run = np.zeros(n, dtype=np.int64)
        self.plain = np.zeros(n, dtype=np.int64)
        self.size = np.full(n, image_size, dtype=np.int64)
        self.min_size = np.full(n, image_size, dtype=np.int64)
        self.body = np.zeros(n, dtype=np.int64)  # count_params without the head
        self.head_in = np.full(n, self.in_channels, dtype=np.int64)

    def reset(self, i: int) -> None:
        for array in (self.counts, self.staged, self.first, self.present, self.params):
            array[i] = 0
        self.stage[i] = self.run[i] = self.plain[i] = self.body[i] = 0
        self.channels[i] = 1
        self.size[i] = self.min_size[i] = self.image_size
        self.head_in[i] = self.in_channels

    def append(self, envs: np.ndarray, actions: np.ndarray, lengths: np.ndarray, sides: np.ndarray) -> None:
        """Each of ``envs`` appends the layer of its action to an architecture of ``lengths`` layers;
        ``sides``: the feature map's side after it."""
        if len(envs) == 0:
            return
        kind, k2 = self.kind[actions], self.kernel2[actions]
        own = self.channels_of[actions]
        before = self.channels[envs]
        c = np.where(own > 0, own, before)
        self.counts[envs, self.index[actions]] += 1
        self.staged[envs, kind, np.minimum(self.stage[envs], _STAGES - 1)] += self.increment[c]
        residual, stride2 = self.residual[actions], self.stride2[actions]
        convs = k2 > 0
        added = np.where(convs, before * c * k2, 0)
        shortcut = np.where(stride2 | (before != c), before * c, 0)
        added = np.where(residual, 9 * (before * c + c * c) + shortcut, added)
        self.params[envs] += added
        self.channels[envs] = c
        self.stage[envs] += self.downsample[actions]
        starts = lengths == 0
        self.first[envs[starts], kind[starts]] = 1
        self.present[envs, kind] = 1
        self.run[envs] = np.where(convs, self.run[envs] + 1, 0)
        self.plain[envs] = np.maximum(self.plain[envs], self.run[envs])
        self.size[envs] = sides
        self.min_size[envs] = np.where(starts, sides, np.minimum(self.min_size[envs], sides))
        # count_params: the layer's parameters at its input's channels, and its output channels
        cin = self.cin_index[self.head_in[envs]]
        self.body[envs] += self.layer_params[actions, cin]
        self.head_in[envs] = self.layer_out[actions, cin]

    def num_params(self, envs: np.ndarray) -> np.ndarray:
        return self.body[envs] + self.head_in[envs] * self.num_classes + self.num_classes

    def rows(self, envs: list[int], lengths: np.ndarray) -> np.ndarray:
        """The :func:`~nas_gym.surrogate.features` rows of ``envs`` (float32)."""
        idx = np.asarray(envs, dtype=np.int64)
        size, channels = self.size[idx], self.channels[idx]
        scalars = np.empty((len(idx), 8))
        scalars[:, 0] = lengths[idx] / 15
        scalars[:, 1] = self.stage[idx] / 3
        scalars[:, 2] = size / self.image_size
        scalars[:, 3] = self.log2_channels[channels]
        scalars[:, 4] = [math.log1p(p) / 15 for p in self.params[idx].tolist()]
        scalars[:, 5] = self.log2_volume[size, channels]
        scalars[:, 6] = self.plain[idx] / 15
        scalars[:, 7] = self.min_size[idx] / self.image_size
        return np.concatenate(
            [
                self.counts[idx],
                self.staged[idx].reshape(len(idx), -1),
                self.first[idx],
                self.present[idx],
                scalars,
            ],
            axis=1,
        ).astype(np.float32)
