"""Multi-fidelity searchers through Optuna: successive halving, Hyperband, and BOHB-style TPE with
Hyperband, over the fidelity of the env (the epochs a child trains).

Each trial is an architecture (drawn as :mod:`agents.tpe` draws one: a depth, then a layer per
position). It is trained at the lowest fidelity first (``fidelities[0]`` epochs, asked through
``reset(options={"epochs": e})``), its accuracy reported to Optuna as the trial's value at rung 1,
and the pruner decides whether it goes on to the next fidelity (a fresh training at more epochs)
or stops there: Optuna's ``SuccessiveHalvingPruner`` (Jamieson and Talwalkar, AISTATS 2016; the
asynchronous form of Li et al., ASHA, MLSys 2020) keeps the top ``1 / reduction_factor`` of each
rung, and ``HyperbandPruner`` (Li et al., JMLR 2018) runs several such brackets that start at
different rungs. The sampler is random (successive halving, Hyperband) or TPE (BOHB-style:
Falkner et al., ICML 2018, used TPE-like densities with Hyperband's schedule). Every training at
every rung is one training of the budget, charged its own seconds.

Needs an env that answers at several fidelities (the real envs; a table or v0/v1 surrogate
refuses) and the ``tpe`` extra (Optuna). Section order: config, run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from agents.common.tracked_env import TrackedEnv
from agents.tpe import suggest_architecture

__all__ = ["BOHBConfig", "HyperbandConfig", "SuccessiveHalvingConfig", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class HyperbandConfig:
    fidelities: tuple[float, ...] = (1.0, 3.0, 9.0)
    """The epochs of each rung, lowest first (each a training of its own): NAS-Bench-style
    fidelities a factor of ``reduction_factor`` apart."""
    reduction_factor: int = 3
    """1 / this of a rung's trials go on to the next (Hyperband's eta; 3 as in Li et al.)."""
    sampler: str = "random"
    """``"random"`` (successive halving, Hyperband) or ``"tpe"`` (BOHB-style)."""
    pruner: str = "hyperband"
    """``"hyperband"`` (several brackets) or ``"successive_halving"`` (one, starting at rung 1)."""
    n_startup_trials: int = 10
    """With TPE: random trials before it models the results (Optuna's default)."""
    max_idle: int = 1000
    """Trials in a row answered by the store (no new training) after which the search stops."""

    def __post_init__(self) -> None:
        if not self.fidelities or list(self.fidelities) != sorted(set(self.fidelities)):
            raise ValueError(f"fidelities must be increasing epochs, got {self.fidelities!r}")
        if any(not e > 0 for e in self.fidelities):
            raise ValueError(f"fidelities must be positive epochs, got {self.fidelities!r}")
        if self.reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, got {self.reduction_factor}")
        if self.sampler not in ("random", "tpe"):
            raise ValueError(f"sampler must be 'random' or 'tpe', got {self.sampler!r}")
        if self.pruner not in ("hyperband", "successive_halving"):
            raise ValueError(f"pruner must be 'hyperband' or 'successive_halving', got {self.pruner!r}")
        if self.n_startup_trials < 1 or self.max_idle < 1:
            raise ValueError("n_startup_trials and max_idle must be >= 1")


@dataclass
class SuccessiveHalvingConfig(HyperbandConfig):
    pruner: str = "successive_halving"


@dataclass
class BOHBConfig(HyperbandConfig):
    sampler: str = "tpe"


# -- run ----------------------------------------------------------------------------------------


def _study(optuna, config: HyperbandConfig, seed: int, max_step: int):
    """An Optuna study with the config's sampler and pruner (rungs at steps 1, eta, ... max_step)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    eta = config.reduction_factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = (
            optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=config.n_startup_trials, multivariate=True, group=True
            )
            if config.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
    pruner = (
        optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_step, reduction_factor=eta)
        if config.pruner == "hyperband"
        else optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta)
    )
    # Hyperband puts a trial in a bracket by a checksum of the study's name and the trial number:
    # a name of the seed's (not Optuna's random default) makes a search a function of its seed
    return optuna.create_study(
        direction="maximize", sampler=sampler, pruner=pruner, study_name=f"nas-gym-{config.pruner}-{seed}"
    )


def run(env: TrackedEnv, seed: int, config: HyperbandConfig | None = None) -> None:
    """Search until ``env.exhausted``: trials promoted rung by rung as the pruner decides."""
    try:
        import optuna
    except ImportError:
        raise ImportError(
            'the multi-fidelity agents need Optuna: pip install "nas-gym[tpe]" (or pip install optuna)'
        ) from None

    config = config or HyperbandConfig()
    if not env.evaluator.takes_epochs:
        raise ValueError(
            f"a multi-fidelity search needs an env that answers at several epochs; this env's "
            f"{env.evaluator.kind} answers at {env.evaluator.epochs:g} only"
        )
    vocabulary, image_size = env.vocabulary, env.image_size
    env.reset(seed=seed)  # the children's training seed derives from this seed
    rungs = len(config.fidelities)
    # Optuna's rungs lie at steps 1, eta, eta^2, ...: fidelity k is reported at step eta^k
    steps = [config.reduction_factor**k for k in range(rungs)]
    study = _study(optuna, config, seed, steps[-1])

    idle = 0
    while not env.exhausted and idle < config.max_idle:
        trial = study.ask()
        arch = suggest_architecture(trial, vocabulary, image_size)
        before, value, pruned = env.trainings, None, False
        for rung, (epochs, step) in enumerate(zip(config.fidelities, steps, strict=True), start=1):
            if env.exhausted:
                break
            env.reset(options={"epochs": epochs})
            value = env.evaluate(arch)
            trial.report(value, step)
            if rung < rungs and trial.should_prune():
                pruned = True
                break
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        idle = idle + 1 if env.trainings == before else 0
