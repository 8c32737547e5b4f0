"""Env ids and their child configurations (each a :class:`~nas_gym.config.ChildConfig`). Registers with string
entry points: importing this imports no torch."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from nas_gym.config import ChildConfig

__all__ = ["ENV_IDS", "IMAGES_ID", "SURROGATE_ID", "SURROGATE_IDS", "TABULAR_ID", "env_kind", "register_envs"]

_ENTRY_POINT = "nas_gym.envs:NASEnv"
# what answers each kind of env's steps: the ``kind`` of its evaluator, known from the id before
# any env is made
_KINDS = {
    _ENTRY_POINT: "train",
    "nas_gym.envs:NASTabularEnv": "table",
    "nas_gym.envs:NASSurrogateEnv": "surrogate",
    "nas_gym.envs:NASImagesEnv": "train",
}
# the user's own images (gym.make(IMAGES_ID, data=...)): a child's configuration sized for a CPU
IMAGES_ID = "NASImages-v0"
_IMAGES_KWARGS: dict[str, Any] = dict(train_size=None, epochs=3.0, batch_size=64, lr=0.1, width=0.25)

# The child configuration of each id. Changing what an id's reward means (its data, epochs, sizes) needs a
# new version of the id, so results under one id stay comparable.
# MNIST and Fashion-MNIST share one configuration: 55,000 / 5,000 images at 28x28, 2 epochs
_MNIST: dict[str, Any] = dict(
    train_size=55_000, val_size=5_000, epochs=2.0, batch_size=256, lr=0.1, width=1.0
)

_CONFIGS: dict[str, dict[str, Any]] = {
    # the headline env; sized for a GPU: about 50 child epochs a minute for small children
    "NASCifar10-v0": dict(
        dataset="cifar10",
        train_size=45_000,
        val_size=5_000,
        epochs=5.0,
        batch_size=256,
        lr=0.1,
        width=1.0,
    ),
    "NASMnist-v0": dict(dataset="mnist", **_MNIST),
    "NASFashionMNIST-v0": dict(dataset="fashion_mnist", **_MNIST),
    # the offline default, sized for a 2-core CPU: a 3-layer child trains in 1 to 9 s, the
    # poster's 9-layer best in about 7 s (width 0.25: C128 layers have 32 channels)
    "NASFashionMini-v0": dict(
        dataset="fashion_mini",
        train_size=8_000,
        val_size=2_000,
        image_size=14,
        epochs=3.0,
        batch_size=64,
        lr=0.1,
        width=0.25,
    ),
}


# the configurations as values, validated when the package is imported: what gym.make(id) trains
ENV_IDS: dict[str, ChildConfig] = {env_id: ChildConfig(**settings) for env_id, settings in _CONFIGS.items()}

# rewards read from a table of trained architectures (None: the table shipped in the package)
TABULAR_ID = "NASTabular-v0"
_TABULAR_KWARGS: dict[str, Any] = dict(table=None, accuracy="seed")


# rewards predicted by a model fitted to real trainings across the full space (None: the shipped one)
SURROGATE_ID = "NASSurrogate-v0"
# each version its own shipped file (nas_gym.surrogate.SHIPPED_SURROGATES): v1 is fitted with the
# data of the region searches reach (benchmarks/data/surrogate_top) and draws its seed noise by
# accuracy; v0 stays as it was, so results on it stay reproducible
SURROGATE_IDS: dict[str, dict[str, Any]] = {
    SURROGATE_ID: dict(surrogate=None, noise=False),
    "NASSurrogate-v1": dict(surrogate="v1", noise=False),
    # v2: a fidelity per request (epochs 1 to 9) and the curve of a 9-epoch training
    "NASSurrogate-v2": dict(surrogate="v2", noise=False, epochs=None),
}


def env_kind(env_id: str) -> str:
    """What answers the steps of the registered env ``env_id``: ``"train"`` (children trained for
    real), ``"table"`` or ``"surrogate"``, as its evaluator's ``kind`` says once it is made; a
    ValueError naming the known ids for an id that is not a NAS env."""
    spec = gym.registry.get(env_id)
    kind = None if spec is None else _KINDS.get(str(spec.entry_point))
    if kind is None:
        known = ", ".join(i for i, s in gym.registry.items() if str(s.entry_point) in _KINDS)
        raise ValueError(f"unknown env id {env_id!r}; known: {known}")
    return kind


def register_envs() -> None:
    for env_id in ENV_IDS:
        if env_id not in gym.registry:
            # the spec's kwargs are the configuration as written (a search's run.json records them)
            gym.register(id=env_id, entry_point=_ENTRY_POINT, kwargs=dict(_CONFIGS[env_id]))
    if IMAGES_ID not in gym.registry:
        gym.register(id=IMAGES_ID, entry_point="nas_gym.envs:NASImagesEnv", kwargs=dict(_IMAGES_KWARGS))
    if TABULAR_ID not in gym.registry:
        gym.register(id=TABULAR_ID, entry_point="nas_gym.envs:NASTabularEnv", kwargs=dict(_TABULAR_KWARGS))
    for env_id, kwargs in SURROGATE_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="nas_gym.envs:NASSurrogateEnv",
                # gym.make_vec(env_id, num_envs=N): one batched prediction per step for all N
                vector_entry_point="nas_gym.vector:NASSurrogateVectorEnv",
                kwargs=dict(kwargs),
            )
