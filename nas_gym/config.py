"""A child's training configuration as one value: what it trains on, how, where, and how it runs.

:class:`ChildConfig` is validated once, when it is made; :meth:`ChildConfig.key` is the store key
(the only one: every stored training is filed under it), and :meth:`ChildConfig.from_kwargs` is
the one place where ``gym.make`` keyword arguments (or any mapping of settings) become a
configuration. Every registered id's configuration is an instance of it (:mod:`nas_gym.registration`); a
pool, Ray, the table and sample builders send it to their processes as it is.

Numpy and the standard library only: the trainer's own configuration (``TrainConfig``, torch) is
made on demand by :meth:`ChildConfig.train_config`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_BUILDER", "ChildConfig"]

DEFAULT_BUILDER = "nas_gym.models:build_model"


def _positive_int(value: Any) -> bool:
    return bool(isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0)


def _positive_number(value: Any) -> bool:
    return bool(
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@dataclass(frozen=True)
class ChildConfig:
    """Everything that says how one child trains. The fields that change a child's result are in
    :meth:`key`; the others (where the data is, isolation, retries, the weights cache) say how the
    training runs and never change the result.

    ``image_size=None`` becomes the dataset's own size; ``device=None`` means CUDA when available
    and ``threads=None`` torch's thread count, both resolved where the child trains.
    """

    dataset: str
    train_size: int | None
    val_size: int
    image_size: int | None = None  # None: the dataset's own size
    width: float = 1.0
    epochs: float = 1.0
    batch_size: int = 128
    lr: float = 0.05
    time_limit: float | None = None  # seconds per child
    data_dir: str | None = None
    download: bool = True
    device: str | None = None  # None: CUDA when available
    split_seed: int = 0
    threads: int | None = None  # torch threads on the CPU; None: torch's count when first needed
    isolate: bool = True
    hang_limit: float = 120.0  # seconds without a training step before a child counts as hung
    retry_failed: bool = False
    model_builder: str = DEFAULT_BUILDER
    inherit: bool = False  # start each child from its trained prefix
    inherit_epochs: float = 0.75  # epochs of an inheriting child (benchmarks/RESULTS.md)
    weights_cache_mb: float = 512.0  # disk kept for trained weights, next to the store

    def __post_init__(self) -> None:
        from nas_gym.training.datasets import DATASETS  # numpy only

        if isinstance(self.dataset, str) and self.dataset.startswith("images:"):
            from nas_gym.training.images import register_images  # the user's prepared images

            register_images(self.dataset)
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}")
        info = DATASETS[self.dataset]
        if self.image_size is None:
            object.__setattr__(self, "image_size", info.image_size)
        for name in ("val_size", "image_size"):
            value = getattr(self, name)
            if not _positive_int(value):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.train_size is not None and not _positive_int(self.train_size):
            raise ValueError(f"train_size must be a positive int or None, got {self.train_size!r}")
        if self.image_size > info.image_size:  # type: ignore[operator]
            raise ValueError(f"image_size {self.image_size} exceeds {self.dataset}'s {info.image_size}")
        if not _positive_number(self.width):
            raise ValueError(f"width must be a positive number, got {self.width!r}")
        if self.threads is not None and not _positive_int(self.threads):
            raise ValueError(f"threads must be a positive int or None, got {self.threads!r}")
        if not _positive_number(self.inherit_epochs):
            raise ValueError(f"inherit_epochs must be a positive number, got {self.inherit_epochs!r}")
        for name in ("inherit", "isolate", "retry_failed", "download"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not _positive_number(self.hang_limit):
            raise ValueError(f"hang_limit must be a positive number of seconds, got {self.hang_limit!r}")
        if not (isinstance(self.weights_cache_mb, int | float) and self.weights_cache_mb >= 0):
            raise ValueError(f"weights_cache_mb must be a number >= 0, got {self.weights_cache_mb!r}")
        if not (isinstance(self.split_seed, int | np.integer) and not isinstance(self.split_seed, bool)):
            raise ValueError(f"split_seed must be an int, got {self.split_seed!r}")
        if self.data_dir is not None and not Path(self.data_dir).expanduser().is_dir():
            raise ValueError(f"data_dir {self.data_dir!r} does not exist or is not a folder")
        self._check_training()

    # -- making one ---------------------------------------------------------------------------

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings a configuration has (what :meth:`from_kwargs` reads)."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], **changes: Any) -> ChildConfig:
        """The configuration named by ``kwargs`` (``gym.make``'s, an env spec's, a CLI's), with
        ``changes`` on top; keys that are not settings of a child (``reward``, ``store``, ...)
        are left to their owners."""
        given = {**kwargs, **changes}
        return cls(**{name: given[name] for name in cls.names() if name in given})

    def replace(self, **changes: Any) -> ChildConfig:
        """This configuration with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments (``gym.make(id, **config.kwargs())`` trains as it)."""
        return dataclasses.asdict(self)

    # -- what it means --------------------------------------------------------------------------

    @property
    def dataset_info(self) -> Any:
        from nas_gym.training.datasets import DATASETS

        return DATASETS[self.dataset]

    def train_config(self, epochs: float | None = None) -> Any:
        """The trainer's configuration (a ``TrainConfig``; imports torch); ``epochs`` replaces the
        configured epochs (an inheriting child's)."""
        from nas_gym.training.trainer import TrainConfig

        return TrainConfig(
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            augment=self.dataset_info.augment,
            flip=self.dataset_info.flip,
            time_limit=self.time_limit,
        )

    def _check_training(self) -> None:
        # the trainer's own checks (TrainConfig's), without importing torch
        for name in ("epochs", "batch_size", "lr"):
            if not _positive_number(getattr(self, name)):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not isinstance(self.batch_size, int):
            raise ValueError(f"batch_size must be an int, got {self.batch_size!r}")
        if self.time_limit is not None and not (
            isinstance(self.time_limit, int | float) and self.time_limit > 0
        ):
            raise ValueError(f"time_limit must be > 0 seconds or None, got {self.time_limit}")

    def key(self, device_type: str, threads: int | None) -> str:
        """The store key: canonical JSON of everything that changes a child's result. The
        training configuration, the sizes, the split, the width, the device kind (``"cpu"``,
        ``"cuda"``) and, on the CPU, the torch thread count (it changes the order of sums); the
        model builder where it is not the default one; and, for inheriting children, their
        epochs, so inherited and from-scratch results never mix."""
        key: dict[str, Any] = {
            **self.train_config().key(),
            "train_size": self.train_size,
            "val_size": self.val_size,
            "image_size": self.image_size,
            "width": float(self.width),
            "split_seed": self.split_seed,
            "device": device_type,
        }
        if device_type == "cpu":
            if threads is None:
                raise ValueError("a CPU store key needs the torch thread count")
            key["threads"] = int(threads)
        if self.model_builder != DEFAULT_BUILDER:
            key["builder"] = self.model_builder
        if self.inherit:
            key["inherit_epochs"] = float(self.inherit_epochs)
        return json.dumps(key, sort_keys=True, separators=(",", ":"))
