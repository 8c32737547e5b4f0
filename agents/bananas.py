"""A BANANAS-style predictor-guided search: White, Neiswanger, Savani, "BANANAS: Bayesian
Optimization with Neural Architectures for Neural Architecture Search" (AAAI 2021), Algorithm 1.

Bayesian optimisation with a neural predictor: after ``initial_samples`` random architectures,
each round fits an ensemble of small MLPs on every architecture trained so far, makes
``candidates`` architectures by mutating the best ones seen, scores each candidate with an
acquisition over the ensemble (independent Thompson sampling, the paper's choice for batches), and
trains the ``batch_size`` best-scoring candidates. On NAS-Bench-101 after 150 queries it reached
5.92% test error (local search 5.93, regularized evolution 6.11, random 6.34; the paper's Fig. 5).

What differs from the paper, and why: its *path encoding* enumerates the paths through a cell's
DAG; our architectures are chains, whose only path is the layer sequence itself, so the encoding
is that sequence one-hot by position plus the count of each layer (the "bag", which lets the
predictor share what it learns of a layer across positions). The ensemble members are fitted on
the same data from different initialisations (as in the paper), with full-batch Adam.

Every architecture is scored through ``env.evaluate``. Section order: config, predictor, run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.common.draws import EpisodeShape, random_architecture
from agents.common.edits import mutate
from agents.common.tracked_env import TrackedEnv
from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["BananasConfig", "Predictor", "encode", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class BananasConfig:
    initial_samples: int = 10
    """Random architectures trained before the predictor is first fitted (the paper: 10)."""
    batch_size: int = 10
    """Candidates trained per round (the paper's k = 10); trained at once where the env has a pool."""
    candidates: int = 100
    """Candidates made per round by mutating the best architectures seen (the paper: 100)."""
    parents: int = 10
    """The best architectures seen that the candidates are mutated from, in turn (the paper mutates
    "the best architectures seen so far"; NASLib's implementation takes the top 10)."""
    acquisition: str = "its"
    """``its``: independent Thompson sampling, one draw from N(mean, std) of the ensemble per
    candidate (the paper's batch acquisition); ``ucb``: mean + ``ucb_beta`` std; ``mean``: the
    ensemble's mean alone (no exploration: an ablation)."""
    ucb_beta: float = 0.5
    """The weight of the ensemble's standard deviation under ``acquisition="ucb"``."""
    ensemble_size: int = 5
    """MLPs in the ensemble (the paper: 5)."""
    hidden: int = 32
    """Width of each of the MLP's hidden layers. The paper's meta network has 10 layers of 20; on a
    few hundred points three layers of 32 fit as well here and take a fraction of the time."""
    layers: int = 3
    """Hidden layers per MLP."""
    epochs: int = 200
    """Full-batch Adam steps per fit (the paper: 200 epochs)."""
    lr: float = 0.01
    """Adam's learning rate (the paper: 0.01)."""
    max_idle: int = 1000
    """Evaluations in a row answered by the store after which the search stops (the reachable space
    is used up). A guard, not a budget."""
    initial: EpisodeShape | None = None
    """How the initial architectures are drawn; None: masked uniform actions (as random search)."""

    def __post_init__(self) -> None:
        for name in ("initial_samples", "batch_size", "candidates", "parents", "ensemble_size", "hidden",
                     "layers", "epochs", "max_idle"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.acquisition not in ("its", "ucb", "mean"):
            raise ValueError(f"acquisition must be its, ucb or mean, got {self.acquisition!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


# -- predictor ----------------------------------------------------------------------------------


def encode(archs: list[Architecture], vocabulary: Vocabulary) -> np.ndarray:
    """One row per architecture: each position's layer one-hot (``max_layers`` x layers), the count
    of each layer, and the depth over ``max_layers``; float32."""
    n_layers, depth = len(vocabulary.layers), vocabulary.max_layers
    out = np.zeros((len(archs), depth * n_layers + n_layers + 1), dtype=np.float32)
    for row, arch in enumerate(archs):
        for i, action in enumerate(vocabulary.actions_of(arch)):
            out[row, i * n_layers + action] = 1.0
            out[row, depth * n_layers + action] += 1.0
        out[row, -1] = len(arch) / depth
    return out


class Predictor:
    """An ensemble of MLPs fitted to (encoding, accuracy); ``predict`` gives the members' mean and
    standard deviation. The members are trained side by side as one batched network (their
    weights stacked, each initialised from its own generator; their losses are summed, so each
    member's gradient is its own), which costs one optimizer step per epoch instead of one per
    member. Deterministic for a given ``seed`` on the CPU."""

    def __init__(self, config: BananasConfig, seed: int) -> None:
        self.config, self.seed = config, seed
        self.layers: list = []
        self.shift, self.scale = 0.0, 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        import torch

        c = self.config
        # standardised targets: accuracies of good architectures differ by tenths of a point
        self.shift, self.scale = float(y.mean()), float(y.std()) or 1.0
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(((y - self.shift) / self.scale).astype(np.float32))
        gens = [torch.Generator().manual_seed(self.seed * 1000 + k) for k in range(c.ensemble_size)]
        dims = [x.shape[1]] + [c.hidden] * c.layers + [1]
        self.layers = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / np.sqrt(a)  # each member's weights from its own generator
            w = torch.stack([torch.empty(a, b).uniform_(-bound, bound, generator=g) for g in gens])
            self.layers.append((w.requires_grad_(), torch.zeros(c.ensemble_size, 1, b, requires_grad=True)))
        opt = torch.optim.Adam([p for layer in self.layers for p in layer], lr=c.lr, foreach=True)
        for _ in range(c.epochs):
            opt.zero_grad()
            out = self._forward(xt)  # (members, n)
            loss = ((out - yt) ** 2).mean(dim=1).sum()
            loss.backward()
            opt.step()

    def _forward(self, xt):
        import torch

        h = xt.expand(self.config.ensemble_size, *xt.shape)
        for i, (w, b) in enumerate(self.layers):
            h = torch.baddbmm(b, h, w)
            if i < len(self.layers) - 1:
                h = torch.relu(h)
        return h.squeeze(2)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad():
            preds = self._forward(torch.from_numpy(x)).numpy() * self.scale + self.shift
        return preds.mean(axis=0), preds.std(axis=0)


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: BananasConfig | None = None) -> None:
    """Search until ``env.exhausted``: random architectures, then rounds of fit, mutate, acquire."""
    config = config or BananasConfig()
    rng = np.random.default_rng(seed)
    vocabulary, image_size = env.vocabulary, env.image_size
    shape = config.initial or EpisodeShape()
    env.reset(seed=seed)  # the children's training seed derives from this seed
    seen: dict[str, tuple[Architecture, float]] = {}
    idle = 0

    def score(archs: list[Architecture]) -> bool:
        """Evaluate ``archs`` in order; False once the budget or the idle guard stops the search."""
        nonlocal idle
        env.prefetch(archs)
        for arch in archs:
            if env.exhausted or idle >= config.max_idle:
                return False
            before = env.trainings
            seen[str(arch)] = (arch, env.evaluate(arch))
            idle = idle + 1 if env.trainings == before else 0
        return True

    if not score(
        [random_architecture(vocabulary, image_size, rng, shape) for _ in range(config.initial_samples)]
    ):
        return
    round_ = 0
    while True:
        archs = [a for a, _ in seen.values()]
        y = np.array([acc for _, acc in seen.values()], dtype=np.float64)
        predictor = Predictor(config, seed * 100_003 + round_)
        predictor.fit(encode(archs, vocabulary), y)
        round_ += 1
        # candidates: mutations of the best architectures seen, none seen already
        parents = [archs[int(i)] for i in np.argsort(-y, kind="stable")[: config.parents]]
        pool: dict[str, Architecture] = {}
        for attempt in range(20 * config.candidates):
            if len(pool) >= config.candidates:
                break
            child = mutate(parents[attempt % len(parents)], vocabulary, image_size, rng)
            if child is not None and str(child) not in seen:
                pool.setdefault(str(child), child)
        if not pool:  # every mutation of the best is known: fresh random architectures (the known
            # among them are answered by the store for free, so the idle guard still ends a used-up space)
            fresh = [
                random_architecture(vocabulary, image_size, rng, shape) for _ in range(config.candidates)
            ]
            pool = {str(a): a for a in fresh}
        candidates = list(pool.values())
        mean, std = predictor.predict(encode(candidates, vocabulary))
        if config.acquisition == "its":
            value = rng.normal(mean, std)
        elif config.acquisition == "ucb":
            value = mean + config.ucb_beta * std
        else:
            value = mean
        chosen = [candidates[int(i)] for i in np.argsort(-value, kind="stable")[: config.batch_size]]
        if not score(chosen):
            return
