"""TPE through Optuna: the Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for
Hyper-Parameter Optimization", NeurIPS 2011) as Optuna implements it (``optuna.samplers.TPESampler``;
Watanabe, "Tree-Structured Parzen Estimator: Understanding Its Algorithm Components", 2023).

The search space as Optuna distributions, asked define-by-run: the depth (an integer in
1..``max_layers``), then one categorical per position below the depth over the vocabulary's
layers. The space is conditional (position 9 exists only for depth >= 10), so the sampler runs
with ``multivariate=True, group=True``, which models each group of parameters that occur together
jointly. A layer that does not fit where it is asked (a pool that would shrink the feature map
below 1x1) is left out of the architecture, so every trial names a valid architecture and its
accuracy is what the trial reports. Optuna keeps its trials in memory; the store, the budget and
the history are ours (``env.evaluate``). Needs the ``tpe`` extra (``pip install "nas-gym[tpe]"``).

Section order (as in every agent file): config, run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from agents.common.tracked_env import TrackedEnv
from nas_gym.search_space import Architecture

__all__ = ["TPEConfig", "run", "suggest_architecture"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class TPEConfig:
    n_startup_trials: int = 10
    """Random trials before TPE models the results (Optuna's default)."""
    n_ei_candidates: int = 24
    """Candidates TPE draws from its good-trials density per parameter, keeping the one with the
    best density ratio (Optuna's default)."""
    multivariate: bool = True
    """Model the parameters jointly rather than one by one (Falkner et al., BOHB, 2018, found
    joint densities better on coupled spaces; a layer's worth depends on its neighbours)."""
    batch_size: int = 1
    """Trials asked before any is told (trained at once where the env has a pool); Optuna's
    constant liar keeps a batch's trials apart. 1 = sequential TPE."""
    max_idle: int = 1000
    """Trials in a row answered by the store (no new training) after which the search stops. A
    guard, not a budget."""

    def __post_init__(self) -> None:
        for name in ("n_startup_trials", "n_ei_candidates", "batch_size", "max_idle"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


# -- run ----------------------------------------------------------------------------------------


def suggest_architecture(trial, vocabulary, image_size: int) -> Architecture:
    """The architecture an Optuna trial names: a depth in 1..max_layers, then a categorical per
    position over the layers; a layer that does not fit where it is asked is left out."""
    tokens = [layer.token for layer in vocabulary.layers]
    arch = Architecture()
    for i in range(trial.suggest_int("depth", 1, vocabulary.max_layers)):
        layer = vocabulary.layers[tokens.index(trial.suggest_categorical(f"layer_{i}", tokens))]
        if vocabulary.is_valid(arch.append(layer), image_size):
            arch = arch.append(layer)
    return arch


def run(env: TrackedEnv, seed: int, config: TPEConfig | None = None) -> None:
    """Search until ``env.exhausted``: ask Optuna's TPE for architectures, tell it their accuracy."""
    try:
        import optuna
    except ImportError:
        raise ImportError(
            'the tpe agent needs Optuna: pip install "nas-gym[tpe]" (or pip install optuna)'
        ) from None

    config = config or TPEConfig()
    vocabulary, image_size = env.vocabulary, env.image_size
    env.reset(seed=seed)  # the children's training seed derives from this seed
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # ``group`` is marked experimental; its behaviour is what we want
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=config.n_startup_trials,
            n_ei_candidates=config.n_ei_candidates,
            multivariate=config.multivariate,
            group=config.multivariate,  # the conditional space needs groups for the joint model
            constant_liar=config.batch_size > 1,
        )
    study = optuna.create_study(direction="maximize", sampler=sampler)

    idle = 0
    while not env.exhausted and idle < config.max_idle:
        trials = [study.ask() for _ in range(config.batch_size)]
        archs = [suggest_architecture(t, vocabulary, image_size) for t in trials]
        env.prefetch([a for a in archs if len(a)])
        for trial, arch in zip(trials, archs, strict=True):
            if env.exhausted or idle >= config.max_idle or not len(arch):
                # no layer fitted (never with the default space: every layer fits a 1-layer
                # prefix of a 14x14 or larger input) or the search ended: the trial is dropped
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            before = env.trainings
            study.tell(trial, env.evaluate(arch))
            idle = idle + 1 if env.trainings == before else 0
