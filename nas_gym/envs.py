"""The Gymnasium environments: one step appends one layer and trains the prefix."""

from __future__ import annotations

import math
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from nas_gym.config import ChildConfig
from nas_gym.evaluation import ArchEvaluator, EvalResult, Evaluator, ResultStore, evaluator_members
from nas_gym.search_space import (
    DEFAULT_MAX_LAYERS,
    REWARD_MODES,
    Architecture,
    Vocabulary,
    check_reward_mode,
    step_reward,
)

__all__ = ["REWARD_MODES", "NASEnv", "NASEnvBase", "NASImagesEnv", "NASSurrogateEnv", "NASTabularEnv"]

# what NASEnv() trains with no settings given (the registered ids give theirs)
_ENV_DEFAULTS: dict[str, Any] = dict(dataset="fashion_mini", train_size=None, val_size=5000)


class NASEnvBase(gym.Env[np.ndarray, np.int64]):
    """Spaces, masks, rewards and episodes of every NAS env, over any *evaluator*.

    ``vocabulary`` (default: the 24-action one) fixes the layers an action can append; a step
    follows :meth:`nas_gym.search_space.Vocabulary.step`, the episode rules every agent plans
    with. The evaluator is any :class:`nas_gym.evaluation.ArchEvaluator`: :class:`NASEnv` trains
    children for real; the tabular and surrogate envs, or a test, supply another.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        evaluator: ArchEvaluator,
        max_layers: int = DEFAULT_MAX_LAYERS,
        reward: str = "prefix",
        train_seed: int | None = None,
        render_mode: str | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        check_reward_mode(reward)
        if isinstance(max_layers, bool) or not isinstance(max_layers, int) or max_layers < 1:
            raise ValueError(f"max_layers must be a positive int, got {max_layers!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = ", ".join(repr(m) for m in self.metadata["render_modes"])
            raise ValueError(f"render_mode must be None or one of {modes}, got {render_mode!r}")
        if not isinstance(evaluator, ArchEvaluator):
            missing = ", ".join(m for m in evaluator_members() if not hasattr(evaluator, m))
            raise TypeError(
                f"{type(evaluator).__name__} is not an evaluator: "
                + (f"it lacks {missing}" if missing else "a method it has is not callable")
                + " (what nas_gym.evaluation.ArchEvaluator lists)"
            )
        self.evaluator = evaluator
        if vocabulary is None:
            vocabulary = Vocabulary(max_layers=max_layers)
        elif vocabulary.max_layers != max_layers:
            vocabulary = Vocabulary(vocabulary.layers, max_layers)
        self.vocabulary = vocabulary
        self.image_size = int(evaluator.image_size)
        self.reward_mode = reward
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(self.vocabulary.num_actions)
        self.observation_space = spaces.MultiDiscrete(
            [self.vocabulary.num_actions + 1] * max_layers, dtype=np.int64
        )
        self._fixed_train_seed = train_seed
        self.train_seed: int | None = train_seed
        # the fidelity of this episode's children: None = the evaluator's own epochs; set per
        # episode by reset(options={"epochs": e})
        self.epochs: float | None = None
        self.arch = Architecture()
        self._slots = self.vocabulary.encode(self.arch)
        self._accuracy = 0.0
        self._num_params = 0
        self._mask = self.vocabulary.action_mask(self.arch, self.image_size)
        self._needs_reset = True
        self._last_result: EvalResult | None = None
        self._prefix_accuracies: list[float | None] = []  # measured accuracy of each prefix (render)
        self._closed = False

    # -- Gymnasium API ------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.epochs = self._episode_epochs(options)
        if self._fixed_train_seed is None and (seed is not None or self.train_seed is None):
            # children of this env all train with one seed, so the store answers repeats
            self.train_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self.arch = Architecture()
        self._slots = self.vocabulary.encode(self.arch)
        self._accuracy = 0.0
        self._num_params = 0
        self._mask = self.vocabulary.action_mask(self.arch, self.image_size)
        self._needs_reset = False
        self._prefix_accuracies, self._closed = [], False
        return self._obs(), self._info(invalid=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        index = self._check_action(action)
        if self._needs_reset:
            raise RuntimeError("the episode has ended: call reset() before step()")
        vocab = self.vocabulary
        step = vocab.step(self.arch, index, self.image_size, self.reward_mode, self._mask)
        if step.invalid:
            self._needs_reset = True
            return self._obs(), 0.0, True, False, self._info(invalid=True)

        previous = self._accuracy
        if len(step.arch) > len(self.arch):  # a layer was appended: its slot holds action + 1
            self._slots[len(step.arch) - 1] = index + 1
        self.arch, terminated = step.arch, step.terminated
        if len(self._prefix_accuracies) < len(step.arch):
            self._prefix_accuracies.append(None)
        if step.evaluated is not None:
            self._record(self._evaluate(step.evaluated))
            if len(step.evaluated) == len(step.arch):
                self._prefix_accuracies[-1] = self._accuracy
        elif index != vocab.head_action:  # reward="final" mid-episode: nothing is trained yet
            self._accuracy, self._num_params = 0.0, self.evaluator.num_params(self.arch)

        head = index == vocab.head_action
        reward = float(step_reward(self.reward_mode, self._accuracy, previous, head, terminated))
        self._mask = vocab.action_mask(self.arch, self.image_size)
        self._needs_reset = terminated
        self._closed = index == vocab.head_action
        return self._obs(), float(reward), terminated, False, self._info(invalid=False)

    def action_masks(self) -> np.ndarray:
        """Allowed next actions as ``np.int8`` 1 / 0: what Gymnasium's ``Discrete.sample(mask=)``
        takes and what sb3-contrib's MaskablePPO reads (it calls this)."""
        return self._mask.astype(np.int8)

    def set_ledger_tag(self, tag: str) -> None:
        """Write this env's trainings to the store's ledger under ``tag``, a search's id: what the
        search's ``TrackedEnv`` does once for its env and for the copies of it in other processes."""
        self.evaluator.ledger_tag = tag

    def close(self) -> None:
        self.evaluator.close()
        super().close()

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: the architecture and its accuracy as a line of text. ``"rgb_array"``: a picture
        of the architecture (:func:`nas_gym.drawing.draw_architecture`), every frame of this env the
        same size; each box shows its layer, the feature map after it and its prefix's accuracy."""
        if self.render_mode == "ansi":
            return f"{self.arch or '(empty)'} -> {self._accuracy:.4f}"
        if self.render_mode == "rgb_array":
            from nas_gym.drawing import draw_architecture

            title = f"{self.arch or '(empty)'}   accuracy {100 * self._accuracy:.2f}%   params {self._num_params:,}"
            return draw_architecture(
                self.arch,
                self.image_size,
                self.vocabulary.max_layers,
                self._prefix_accuracies,
                self._closed,
                title,
            )
        return None

    # -- helpers ------------------------------------------------------------------------------

    def _check_action(self, action: Any) -> int:
        if isinstance(action, np.ndarray) and action.shape == (1,):
            action = action[0]  # what a vectorised agent hands a single env
        if not self.action_space.contains(action):
            hint = ""
            if isinstance(action, float) and math.isfinite(action) and action.is_integer():
                hint = " (pass an int, not a float)"
            n = self.vocabulary.num_actions
            raise ValueError(
                f"action {action!r} is outside the action space Discrete({n}): "
                f"expected an int in 0..{n - 1}{hint}"
            )
        return int(action)

    def _episode_epochs(self, options: dict[str, Any] | None) -> float | None:
        """The fidelity ``reset(options={"epochs": e})`` asks for this episode (None: the
        evaluator's own); other options are refused by name."""
        options = {} if options is None else dict(options)
        unknown = sorted(set(options) - {"epochs"})
        if unknown:
            raise ValueError(f"unknown reset option {unknown[0]!r}: this env takes 'epochs'")
        epochs = options.get("epochs")
        if epochs is None:
            return None
        if (
            isinstance(epochs, bool)
            or not isinstance(epochs, int | float | np.number)
            or not (math.isfinite(epochs) and epochs > 0)
        ):
            raise ValueError(f"reset option 'epochs' must be a positive number, got {epochs!r}")
        if not self.evaluator.takes_epochs and float(epochs) != float(self.evaluator.epochs):
            raise ValueError(
                f"this env's {self.evaluator.kind} answers children trained {self.evaluator.epochs:g} epochs "
                f"only, not {epochs!r} (an env that trains its children answers at any epochs)"
            )
        check = getattr(self.evaluator, "check_epochs", None)  # an evaluator with a range of fidelities
        return float(epochs) if check is None else float(check(epochs))

    def _evaluate(self, arch: Architecture) -> EvalResult:
        assert self.train_seed is not None
        return self.evaluator.evaluate(arch, self.train_seed, epochs=self.epochs)

    def _record(self, result: EvalResult) -> None:
        self._accuracy, self._num_params = result.accuracy, result.num_params
        self._last_result = result

    def _obs(self) -> np.ndarray:
        return self._slots.copy()  # vocabulary.encode(self.arch), kept up to date by step

    def _info(self, invalid: bool) -> dict[str, Any]:
        return {
            "arch": str(self.arch),
            "accuracy": float(self._accuracy),
            "num_params": int(self._num_params),
            "action_mask": self._mask.astype(np.int8),  # as action_masks()
            "invalid_action": invalid,
        }


class NASEnv(NASEnvBase):
    """
    ## Description

    Neural Architecture Search as an episodic MDP, after "Augmented Neural Architecture Search
    with REINFORCE" (Xu). Each action appends one layer to a child CNN; the prefix built so far,
    closed by a global-average-pool + Linear head, is *trained for real* on the env's dataset and
    its validation accuracy is the reward. Layers are written as tokens: ``C{c}k{k}`` conv,
    ``R{c}`` / ``R{c}s2`` residual block, ``MP{k}`` / ``AP{k}`` pooling, ``DR`` dropout
    (see :mod:`nas_gym.search_space`). Trained children go to a result store (SQLite); an
    architecture already stored for the same dataset, configuration and seed is never trained again.

    ## Action Space

    ``Discrete(24)`` with the default vocabulary:

    | actions | layer |
    | --- | --- |
    | 0-11  | ``C{c}k{k}``, c in 32, 64, 128 (slowest), k in 1, 3, 4, 5 |
    | 12-17 | ``R32 R32s2 R64 R64s2 R128 R128s2`` |
    | 18-21 | ``MP2 MP3 AP2 AP3`` |
    | 22    | ``DR`` |
    | 23    | HEAD: close the architecture and end the episode |

    ``action_masks()`` (sb3-contrib's MaskablePPO convention) and ``info["action_mask"]`` give the
    allowed actions: HEAD is masked on the empty architecture, and a layer is masked when it would
    shrink the feature map below 1x1 or the architecture already has ``max_layers`` layers.

    ## Observation Space

    ``MultiDiscrete([25] * 15)``: slot i holds layer i's action + 1, and 0 marks an empty slot.

    ## Rewards

    With ``reward="prefix"`` (default): the validation accuracy in [0, 1] of the architecture after
    the step. HEAD returns the accuracy of the architecture it closes, without retraining.
    ``reward="final"``: 0 until the episode ends, then the closed architecture's accuracy (only
    the final architecture is trained). ``reward="improvement"``: the change in accuracy from the
    previous prefix (the empty prefix counts 0), so an episode's rewards sum to its final accuracy.
    A child that diverges, runs out of memory, overruns ``time_limit``, hangs or crashes scores
    0.0 (its status is in the store). ``diverged`` is final; the other failures depend on the
    circumstances: an isolated child that crashes, hangs, runs out of memory or errs is trained
    once more at once, a ``timeout`` is trained again under a larger limit, and ``retry_failed``
    retries the rest. Every training, retries included, counts against a search's budget.

    ## Starting State

    The empty architecture: an all-zero observation.

    ## Episode End

    Terminates on HEAD, on reaching ``max_layers`` layers, or on a masked action (reward 0.0 and
    ``info["invalid_action"] = True``). There is no truncation. An action outside the action space
    (24, -1, 2.5, a string) raises ``ValueError``.

    ## Arguments

    ```python
    import gymnasium as gym
    import nas_gym

    env = gym.make("NASFashionMini-v0", epochs=1.0, store="results.sqlite")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)  # C32k3
    print(info["arch"], reward, info["num_params"])
    ```

    | kwarg | meaning |
    | --- | --- |
    | ``config`` | a :class:`nas_gym.config.ChildConfig` holding the settings below that say how a child trains; settings given beside it change it |
    | ``dataset`` | ``cifar10``, ``mnist``, ``fashion_mnist`` or ``fashion_mini`` |
    | ``data_dir`` | folder searched first for the data (then ``$NAS_GYM_DATA``, ``~/.cache/nas_gym``, Debian's folder, download) |
    | ``download`` | allow torchvision's download when the data are nowhere on disk |
    | ``device`` | ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``None`` = CUDA when available |
    | ``max_layers`` | at most this many layers (15) |
    | ``epochs`` | training epochs per child (float) |
    | ``train_size`` / ``val_size`` | images used for training / validation, both from the training set |
    | ``batch_size``, ``lr`` | SGD batch size and peak learning rate |
    | ``image_size`` | side the images are resized to (area downsampling) |
    | ``width`` | channel multiplier applied to every layer |
    | ``store`` | path of the SQLite result store; ``None`` keeps it in memory |
    | ``reward`` | ``"prefix"``, ``"final"`` or ``"improvement"`` |
    | ``time_limit`` | wall-clock seconds per child; ``None`` = no limit |
    | ``train_seed`` | seed of every child's training; ``None`` = the seed of the first ``reset(seed=...)`` |
    | ``threads`` | torch threads for this env's children on the CPU; ``None`` = torch's default, or the cores shared out in a vector env's worker. Part of the store key: it changes the order of sums |
    | ``isolate`` | train children in a watched worker process (default ``True``): a child that hangs or crashes in native code is recorded as ``hung`` / ``crashed`` and the search goes on |
    | ``hang_limit`` | seconds without a training step before an isolated child counts as ``hung`` (120) |
    | ``retry_failed`` | train again children stored as ``out_of_memory``, ``crashed``, ``hung`` or ``error`` (a retry counts as a training) |
    | ``inherit`` | prefix weight inheritance (below); ``False``: every child from scratch, as the poster |
    | ``inherit_epochs`` | epochs of a child that inherits its prefix's weights (its first layer trains ``epochs``) |
    | ``split_seed`` | seed of the train / validation split (0) |
    | ``model_builder`` | ``"module:function"`` building a child (default ``nas_gym.models:build_model``); part of the store key when not the default |
    | ``weights_cache_mb`` | disk kept for the trained weights inheriting children start from (512) |

    Each registered id fixes its child configuration as a ``ChildConfig`` (``nas_gym.ENV_IDS[id]``; its
    settings are ``gym.spec(id).kwargs``); any of them can be overridden in ``gym.make``. All but
    ``max_layers``, ``store``, ``reward``, ``train_seed`` and ``render_mode`` are the
    configuration's (``env.unwrapped.evaluator.child``), whose ``key()`` files each training in
    the store.

    ## Prefix weight inheritance

    With ``inherit=True`` the child of step t starts from the trained weights of its prefix (the
    child of step t-1, kept on disk next to the store) and trains for ``inherit_epochs`` only; the
    new layer starts as an identity where its shape allows (:func:`nas_gym.models.inherit_from`).
    A 1-layer child trains ``epochs`` from scratch; a prefix whose weights are missing is trained
    first (and counts as a training). Each architecture has one chain of prefixes, so its result
    is still a function of (architecture, seed, configuration); the mode and ``inherit_epochs``
    are in the store key, so inherited and from-scratch results never mix. How well inherited
    accuracies rank architectures, and what they cost: ``benchmarks/RESULTS.md``.

    ## Many envs at once

    ``gym.make_vec(id, num_envs=N, vectorization_mode="async", store="results.sqlite")`` trains N
    children at once in N worker processes sharing one store (SQLite, WAL: each result is written
    once). In a worker, ``device=None`` picks GPU ``index % GPUs`` when there are several, and
    ``threads=None`` gives each worker its share of the CPU cores. On the CPU the number of torch
    threads changes the order of floating-point sums, so fix ``threads`` (e.g. ``threads=1``) to
    get the same accuracies whatever N is.

    ## Version History

    * v0: initial release.
    """

    def __init__(
        self,
        config: ChildConfig | None = None,
        *,
        max_layers: int = DEFAULT_MAX_LAYERS,
        store: str | ResultStore | None = None,
        reward: str = "prefix",
        train_seed: int | None = None,
        render_mode: str | None = None,
        **settings: Any,
    ) -> None:
        from nas_gym.workers import round_robin_device, worker_index

        unknown = sorted(set(settings) - set(ChildConfig.names()))
        if unknown:
            raise TypeError(f"NASEnv.__init__() got an unexpected keyword argument {unknown[0]!r}")
        given = config.kwargs() if config is not None else dict(_ENV_DEFAULTS)
        config = ChildConfig(**{**given, **settings})
        if config.device is None:  # in a vector env's worker on a machine with several GPUs: its own GPU
            device = round_robin_device(worker_index())
            config = config if device is None else config.replace(device=device)
        elif config.device != "cpu":  # a device that is not here is refused now, not at the first step
            from nas_gym.training.trainer import resolve_device

            resolve_device(config.device)
        super().__init__(Evaluator(config, store=store), max_layers, reward, train_seed, render_mode)

    @property
    def torch_threads(self) -> int:
        """The torch threads this env's children train with on the CPU."""
        return int(cast(Evaluator, self.evaluator).setup.torch_threads)


class NASImagesEnv(NASEnv):
    """
    ## Description

    :class:`NASEnv` over the user's own images: ``gym.make("NASImages-v0", data=...)`` where
    ``data`` is a folder in torchvision's ``ImageFolder`` layout (one subfolder per class;
    ``train/`` and ``test/`` subfolders where there is a test split) or ``(images, labels)``
    arrays (optionally ``(images, labels, test_images, test_labels)``). The images are read once
    (:mod:`nas_gym.training.images`: modes and sizes converted, one size), kept in a cache file
    named by a digest of their contents, and that digest names the dataset in the store, so
    results on different data never mix. Everything else is :class:`NASEnv`'s.

    ## Arguments

    ``data`` (required); ``image_size`` (default: the images' own when they share one square size,
    else 32); ``augment`` (random 4 px crops, and horizontal flips unless ``flip=False``);
    ``test_fraction`` (held out as the test set where the data has none; 0.1); ``classes`` (names of
    arrays' labels); ``val_fraction`` (of the training images, the validation set; 0.1, unless
    ``val_size`` is given); and every kwarg of :class:`NASEnv`.
    """

    def __init__(
        self,
        data: Any = None,
        *,
        augment: bool = False,
        flip: bool = True,
        test_fraction: float = 0.1,
        val_fraction: float = 0.1,
        classes: Any = None,
        **kwargs: Any,
    ) -> None:
        from nas_gym.training.datasets import DATASETS, DatasetError
        from nas_gym.training.images import load_images, prepare_images

        if data is None:
            raise DatasetError(
                "NASImages-v0 needs data=...: a folder of one subfolder per class, or (images, labels) arrays"
            )
        name = prepare_images(data, kwargs.pop("image_size", None), augment, flip, test_fraction, classes)
        info = DATASETS[name]
        if kwargs.get("val_size") is None:
            n = len(load_images(name).train_y)
            if not 0 < val_fraction < 1:
                raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
            kwargs["val_size"] = max(1, int(round(val_fraction * n)))
        kwargs.pop("dataset", None)
        super().__init__(None, dataset=name, image_size=info.image_size, **kwargs)


class _SecondsInInfo(NASEnvBase):
    """An env whose evaluator knows what training an architecture takes (a table's recorded
    seconds, a surrogate's prediction): ``info["train_seconds"]`` says it for each step."""

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._last_result = None
        obs, reward, terminated, truncated, info = super().step(action)
        result = self._last_result
        seed = self.train_seed if self.train_seed is not None else 0
        info["train_seconds"] = (
            0.0 if result is None else self.evaluator.recorded_seconds(result.arch, seed, epochs=self.epochs)
        )
        return obs, reward, terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        info["train_seconds"] = 0.0
        return obs, info


class NASTabularEnv(_SecondsInInfo):
    """
    ## Description

    The NAS env of :class:`NASEnv` with its rewards read from a *table* of architectures trained
    beforehand (:mod:`nas_gym.tabular`), so a step costs microseconds and agents can be compared
    over many seeds. The default table ships with the package: every architecture of up to 3
    layers over 8 layer types, trained for real at ``NASFashionMini-v0``'s configuration with 2 seeds
    (``nas-gym table show`` prints it). Build another with ``nas-gym table build``.

    ## Action and Observation Spaces

    The table's space: its layers then HEAD, ``Discrete(len(layers) + 1)`` (9 for the shipped
    table), and ``MultiDiscrete([len(layers) + 2] * depth)`` with the same encoding as
    :class:`NASEnv` (slot i = layer i's action + 1, 0 = empty). Masks, episode end and invalid
    actions behave exactly as in :class:`NASEnv`; the depth of the table is ``max_layers``.

    ## Rewards

    Those of :class:`NASEnv` (``reward="prefix"``, ``"final"``, ``"improvement"``), with each
    architecture's accuracy looked up in the table: ``accuracy="seed"`` (default) reads the seed
    column ``train_seed % number of seeds``, as a real env trains each child with one seed;
    ``accuracy="mean"`` reads the mean over the table's seeds.

    ## Info

    What :class:`NASEnv` gives, and ``train_seconds``: the seconds that training this step's
    architecture took when the table was built (0.0 on HEAD, on an invalid action and on the
    steps of ``reward="final"`` that train nothing). A real env trains an architecture once per
    store, so only first visits cost time: ``env.unwrapped.evaluator.trainings`` and
    ``.train_seconds`` count those, as a real evaluator counts store misses.

    ## Arguments

    ```python
    env = gym.make("NASTabular-v0")                      # the shipped table
    env = gym.make("NASTabular-v0", table="my_table.json", accuracy="mean")
    ```

    ``store``: where the rows this env has read go (``None``: in memory). A file store makes a
    tabular search resumable exactly as a real one; a row there is not counted again.
    ``max_layers``: a shorter bound than the table's depth (observations then have that many
    slots); more than the table's depth is an error that says so.

    ## Version History

    * v0: initial release.
    """

    def __init__(
        self,
        table: str | None = None,
        accuracy: str = "seed",
        store: str | ResultStore | None = None,
        reward: str = "prefix",
        train_seed: int | None = None,
        render_mode: str | None = None,
        max_layers: int | None = None,
    ) -> None:
        from nas_gym.tabular import TableEvaluator, load_table

        evaluator = TableEvaluator(load_table(table), accuracy, store)
        space = evaluator.table.space
        if max_layers is None:
            max_layers = space.max_layers
        elif (
            isinstance(max_layers, bool)
            or not isinstance(max_layers, int)
            or not 1 <= max_layers <= space.max_layers
        ):
            raise ValueError(
                f"max_layers must be an int in 1..{space.max_layers} for this table (it holds every "
                f"architecture of up to {space.max_layers} layers), got {max_layers!r}"
            )
        super().__init__(evaluator, max_layers, reward, train_seed, render_mode, evaluator.vocabulary)
        self.table = evaluator.table


class NASSurrogateEnv(_SecondsInInfo):
    """
    ## Description

    The 24-action, 15-layer env of :class:`NASEnv` with its rewards predicted by a *surrogate*
    (:mod:`nas_gym.surrogate`): a model fitted to real trainings sampled across the whole space at
    ``NASFashionMini-v0``'s configuration, so a step costs microseconds and agents can be compared on the
    space users come for (about 10^20 architectures), as NAS-Bench-301 does for the DARTS space.
    How well the surrogate ranks held-out trainings, and on how many trainings it was fitted, is in
    ``benchmarks/RESULTS.md`` and ``env.unwrapped.surrogate.meta``.

    ## Action and Observation Spaces, Rewards, Episode End

    Those of :class:`NASEnv` with the default vocabulary: ``Discrete(24)``,
    ``MultiDiscrete([25] * 15)``, the same masks, reward modes and episode ends.

    ## Info

    What :class:`NASEnv` gives, and ``train_seconds``: the predicted training time of this step's
    architecture at the surrogate's configuration (0.0 when the step evaluates nothing).

    ## Arguments

    ```python
    env = gym.make("NASSurrogate-v1")                 # the shipped surrogate, no noise
    env = gym.make("NASSurrogate-v1", noise=True)     # seed-to-seed noise of the measured size
    env = gym.make("NASSurrogate-v2", epochs=9)       # children trained 9 epochs (1 to 9)
    obs, info = env.reset(options={"epochs": 1})      # this episode's children: 1 epoch
    ```

    ``surrogate``: the model, a shipped version's name (``"v0"``, ``"v1"``, ``"v2"``; ``None`` is
    ``"v0"``) or the path of a file ``benchmarks/surrogate.py --out`` (or
    ``benchmarks/surrogate_v2.py --out``) wrote. ``epochs``: the fidelity of v2's children (any
    number from 1 to 9; default 3, the configuration of v0 and v1, which answer at 3 only); an
    episode may ask for another with ``reset(options={"epochs": e})``. ``noise``: add to each
    (architecture, seed) a Gaussian draw of the seed-to-seed standard deviation measured where
    the architecture's predicted accuracy lies (a file without that curve: the pooled one), from a
    generator seeded by both (deterministic). ``store``: where the rows this env has answered go (a
    file makes a search resumable; a row there is not counted again).

    ## Version History

    * v2: a fidelity per request: the accuracy and seconds of children trained 1, 3 or 9 epochs
      (read between them in log epochs), and the curve of a 9-epoch training
      (``env.unwrapped.evaluator.curve(arch, seed, upto=k)``); fitted on the 3-epoch data of v1
      and the real 1- and 9-epoch trainings of ``benchmarks/data/fidelity``.
    * v1: fitted also on the real trainings of the region searches reach (searches of five
      searchers, neighbours of the best measured architectures, second seeds of the top decile:
      ``benchmarks/data/surrogate_top``); seed noise measured by accuracy band.
    * v0: initial release (the full-space samples and the shipped table; one pooled seed noise).
    """

    def __init__(
        self,
        surrogate: str | None = None,
        noise: bool = False,
        store: str | ResultStore | None = None,
        reward: str = "prefix",
        max_layers: int = DEFAULT_MAX_LAYERS,
        train_seed: int | None = None,
        render_mode: str | None = None,
        epochs: float | None = None,
    ) -> None:
        from nas_gym.surrogate import SurrogateEvaluator, load_surrogate

        if (
            isinstance(max_layers, int)
            and not isinstance(max_layers, bool)
            and max_layers > DEFAULT_MAX_LAYERS
        ):
            raise ValueError(
                f"max_layers must be an int in 1..{DEFAULT_MAX_LAYERS} (the space the surrogate was fitted on), "
                f"got {max_layers!r}"
            )
        evaluator = SurrogateEvaluator(load_surrogate(surrogate), noise, store, epochs)
        super().__init__(evaluator, max_layers, reward, train_seed, render_mode)
        self.surrogate = evaluator.surrogate
