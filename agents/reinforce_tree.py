"""The poster's agent, augmented so that its replay tree steers the search: REINFORCE with the
experience replay tree, a value model over the tree's data, proposals next to the tree's best
leaves, and a last share of the budget spent at the highest fidelity.

The poster's REINFORCE controller and its replay tree stay at the core: every architecture trained
goes into the tree, and every round the controller takes one REINFORCE step on the architectures
trained (reward: the accuracy; baseline: the running average, as the poster's) plus, with
probability ``replay_p``, architectures replayed from the tree by a softmax over its accuracies.
What the tree adds here (``guidance=True``) is that it decides what is trained, in the ways tree
search was made to work for NAS elsewhere:

- **Node values from a predictor over the tree's data** (AlphaX's value network, Wang et al.
  2019): every round an ensemble of small MLPs (:class:`agents.bananas.Predictor`) is fitted on
  the tree's architectures and their accuracies. A leaf's value is the ensemble's mean, which pools
  what the tree knows about similar architectures, so one lucky noisy training does not make a
  leaf "best".
- **Proposals near what the tree holds**: most candidates are one-layer edits of the tree's
  ``parents`` best leaves (by that value), the rest are drawn from the controller, so the
  controller's learning still widens the search. Without this, children of a tree search land two
  or more edits from everything evaluated, where nothing the tree knows applies.
- **Exploration noise on the scale of the values**: the ``batch_size`` candidates trained are those
  with the highest draw from N(mean, std) of the ensemble (independent Thompson sampling), so the
  noise is the value model's own uncertainty, in accuracy units: never the fixed scale that swamps
  the tenths of a point between good leaves.
- **Several fidelities** (an env that answers at several epochs): the search runs at ``epochs``
  (the env's own when None), where a child is cheap; its last ``final_share`` of the budget
  retrains the tree's best leaves (by the value model) at ``final_epochs``, the fidelity that a
  returned architecture is worth. Rankings at few epochs and at many differ among good
  architectures, so the choice of the returned architecture among them is made where it counts.

``guidance=False`` is the ablation: the controller alone proposes what is trained (the poster's
agent with direct evaluations and its replay), and the final retraining takes the tree's best
leaves by their observed accuracy; the rest is unchanged.

Section order: config, proposals, run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from agents.bananas import BananasConfig, Predictor, encode
from agents.common.edits import mutate
from agents.common.replay_tree import ReplayTree
from agents.common.tracked_env import TrackedEnv
from agents.reinforce import Controller
from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["ReinforceTreeConfig", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class ReinforceTreeConfig:
    guidance: bool = True
    """Let the tree decide what is trained (value model, edits of its best leaves, Thompson
    draws). False ("tree guidance off", the ablation): the controller's samples are trained as
    drawn, and the final retraining ranks leaves by their observed accuracy."""
    batch_size: int = 8
    """Architectures trained per round, between two controller updates (at once with a pool)."""
    initial_samples: int = 10
    """Controller samples trained before the value model is first fitted."""
    candidates: int = 100
    """Candidates the value model scores per round."""
    edit_share: float = 0.8
    """Share of the candidates that are one-layer edits of the tree's best leaves; the rest are
    drawn from the controller."""
    parents: int = 10
    """The tree's best leaves (by the value model) that the edits are made from, in turn."""
    acquisition: str = "its"
    """``its``: a draw from N(mean, std) of the ensemble per candidate (Thompson sampling: noise on
    the values' own scale); ``mean``: the ensemble's mean (no exploration)."""
    epochs: float | None = None
    """The fidelity of the search (None: the env's own)."""
    final_epochs: float | None = 9.0
    """The fidelity the tree's best leaves are retrained at in the last ``final_share`` of the budget;
    None, or an env that answers at one fidelity: no retraining."""
    final_share: float = 0.15
    """The last share of the budget (of the trainings or the seconds) spent at ``final_epochs``."""
    ensemble_size: int = 5
    """MLPs in the value model's ensemble."""
    predictor_hidden: int = 32
    """Width of each hidden layer of the value model's MLPs."""
    predictor_layers: int = 3
    """Hidden layers per MLP."""
    predictor_epochs: int = 150
    """Full-batch Adam steps per fit of the value model."""
    hidden_size: int = 64
    """LSTM units of the controller (the poster's agent's default)."""
    lr: float = 0.01
    """Adam step size of the controller (the poster's agent's default)."""
    entropy_coef: float = 0.01
    """Entropy bonus of the REINFORCE loss."""
    replay_p: float = 0.5
    """Probability that an update also replays architectures from the tree (the poster's p)."""
    replay_k: int = 4
    """Architectures replayed per replay update."""
    replay_temperature: float | None = 0.02
    """Softmax temperature over the tree's accuracies when drawing replays; None = uniform."""
    max_idle: int = 300
    """Evaluations in a row answered by the store (no training) after which the search stops."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "candidates", "parents", "ensemble_size", "predictor_hidden",
                     "predictor_layers", "predictor_epochs", "hidden_size", "max_idle"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.initial_samples < 1:
            raise ValueError(f"initial_samples must be >= 1, got {self.initial_samples}")
        if self.acquisition not in ("its", "mean"):
            raise ValueError(f"acquisition must be 'its' or 'mean', got {self.acquisition!r}")
        for name in ("edit_share", "replay_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.final_share < 1.0:
            raise ValueError(f"final_share must be in [0, 1), got {self.final_share}")
        if self.replay_k < 0:
            raise ValueError(f"replay_k must be >= 0, got {self.replay_k}")


# -- proposals ----------------------------------------------------------------------------------


@dataclass
class _Proposal:
    """An architecture with the controller's actions for it (HEAD last) and their masks."""

    arch: Architecture
    actions: list[int]
    masks: list[np.ndarray]


def _sample(
    controller: Controller, generator: torch.Generator, vocab: Vocabulary, image_size: int
) -> _Proposal:
    """One architecture drawn from the controller, each action among those the env allows."""
    arch, actions, masks = Architecture(), list[int](), list[np.ndarray]()
    prev, state = torch.tensor([controller.num_actions]), None
    while True:
        mask = vocab.action_mask(arch, image_size)
        with torch.no_grad():
            logits, state = controller.step(prev, state)
            probs = torch.softmax(Controller.masked(logits, mask), dim=-1)
            action = int(torch.multinomial(probs, 1, generator=generator))
        actions.append(action)
        masks.append(mask)
        if action == vocab.head_action:
            return _Proposal(arch, actions, masks)
        arch = arch.append(vocab.layer_of(action))
        prev = torch.tensor([action])
        if len(arch) >= vocab.max_layers:
            return _proposal_of(arch, vocab, image_size)


def _proposal_of(arch: Architecture, vocab: Vocabulary, image_size: int) -> _Proposal:
    """The controller's actions for ``arch`` (HEAD closes it); a step the env's mask would refuse
    (an architecture at the bound, where only HEAD is left) is allowed in its mask, as the
    poster's replay does."""
    actions = [*vocab.actions_of(arch), vocab.head_action]
    masks = []
    for t, action in enumerate(actions):
        mask = vocab.action_mask(arch[:t], image_size)
        if not mask[action]:
            mask = mask.copy()
            mask[action] = True
        masks.append(mask)
    return _Proposal(arch, actions, masks)


class _Guide:
    """The tree's side of the search: the value model over its data and the candidates it proposes."""

    def __init__(self, config: ReinforceTreeConfig, vocab: Vocabulary, image_size: int, seed: int) -> None:
        self.config, self.vocab, self.image_size, self.seed = config, vocab, image_size, seed
        self.model_config = BananasConfig(
            ensemble_size=config.ensemble_size,
            hidden=config.predictor_hidden,
            layers=config.predictor_layers,
            epochs=config.predictor_epochs,
        )
        self.predictor: Predictor | None = None
        self.fits = 0

    def fit(self, tree: ReplayTree) -> None:
        """Fit the value model on every architecture of the tree and its mean accuracy."""
        entries = list(tree.architectures())
        archs = [Architecture.parse(a) for a, _, _ in entries]
        y = np.array([mean for _, mean, _ in entries], dtype=np.float64)
        self.predictor = Predictor(self.model_config, self.seed * 100_003 + self.fits)
        self.predictor.fit(encode(archs, self.vocab), y)
        self.fits += 1

    def values(self, archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """The value model's (mean, std) of ``archs``."""
        assert self.predictor is not None
        return self.predictor.predict(encode(archs, self.vocab))

    def ranked_leaves(self, tree: ReplayTree) -> list[Architecture]:
        """The tree's architectures, best first by the value model's mean (the observed mean breaks
        ties and stands in where no model is fitted)."""
        entries = list(tree.architectures())
        archs = [Architecture.parse(a) for a, _, _ in entries]
        observed = np.array([mean for _, mean, _ in entries], dtype=np.float64)
        if self.predictor is None or not self.config.guidance:
            order = np.argsort(-observed, kind="stable")
        else:
            order = np.lexsort((-observed, -self.values(archs)[0]))
        return [archs[int(i)] for i in order]

    def propose(
        self,
        tree: ReplayTree,
        sample: Callable[[], _Proposal],
        rng: np.random.Generator,
        seen: set[str],
    ) -> list[Architecture]:
        """The ``batch_size`` candidates, not trained yet, with the highest acquisition value."""
        config = self.config
        parents = self.ranked_leaves(tree)[: config.parents]
        n_edits = round(config.edit_share * config.candidates)
        pool: dict[str, Architecture] = {}
        for attempt in range(20 * config.candidates):
            if len(pool) >= n_edits:
                break
            child = mutate(parents[attempt % len(parents)], self.vocab, self.image_size, rng)
            if child is not None and str(child) not in seen:
                pool.setdefault(str(child), child)
        for _ in range(2 * (config.candidates - n_edits)):
            if len(pool) >= config.candidates:
                break
            drawn = sample().arch
            if str(drawn) not in seen:
                pool.setdefault(str(drawn), drawn)
        if not pool:
            return [sample().arch for _ in range(config.batch_size)]
        candidates = list(pool.values())
        mean, std = self.values(candidates)
        score = rng.normal(mean, std) if config.acquisition == "its" else mean
        return [candidates[int(i)] for i in np.argsort(-score, kind="stable")[: config.batch_size]]


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: ReinforceTreeConfig | None = None) -> ReplayTree:
    """Search until ``env.exhausted``; return the replay tree of the search fidelity's accuracies."""
    config = config or ReinforceTreeConfig()
    vocab, image_size = env.vocabulary, env.image_size
    rng = np.random.default_rng(seed)
    controller = Controller.seeded(vocab.num_actions, config.hidden_size, seed)
    optimizer = torch.optim.Adam(controller.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    guide = _Guide(config, vocab, image_size, seed)
    tree = ReplayTree()
    searched_at = env.evaluator.epochs if config.epochs is None else config.epochs
    final = config.final_epochs
    if not env.evaluator.takes_epochs or config.final_share == 0 or final == searched_at:
        final = None  # one fidelity: nothing to retrain at
    search_options = None if config.epochs is None else {"epochs": config.epochs}

    def sample() -> _Proposal:
        return _sample(controller, generator, vocab, image_size)

    env.reset(seed=seed, options=search_options)
    seen: set[str] = set()
    retrain: list[Architecture] | None = None  # the leaves to retrain at ``final``, best first
    baseline_sum, baseline_n, idle = 0.0, 0, 0
    while not env.exhausted and idle < config.max_idle:
        if final is not None and env.progress >= 1.0 - config.final_share:
            if retrain is None:
                if config.guidance and len(tree) >= config.initial_samples:
                    guide.fit(tree)
                retrain = guide.ranked_leaves(tree)
                env.reset(options={"epochs": final})
            if retrain:  # once every leaf is retrained, the search goes on at the final fidelity
                idle = _retrain(env, retrain[: config.batch_size], idle, config.max_idle)
                del retrain[: config.batch_size]
                continue
        if config.guidance and len(tree) >= config.initial_samples:
            guide.fit(tree)
            archs = guide.propose(tree, sample, rng, seen)
        else:
            archs = [sample().arch for _ in range(config.batch_size)]
        env.prefetch(archs)
        done: list[tuple[_Proposal, float]] = []
        for arch in archs:
            if env.exhausted or idle >= config.max_idle:
                break
            before = env.trainings
            accuracy = env.evaluate(arch)
            idle = idle + 1 if env.trainings == before else 0
            seen.add(str(arch))
            tree.insert(arch, accuracy)
            done.append((_proposal_of(arch, vocab, image_size), accuracy))
        if not done:
            break
        b = baseline_sum / baseline_n if baseline_n else float(np.mean([acc for _, acc in done]))
        _update_controller(controller, optimizer, config, done, b, tree, rng, vocab, image_size)
        for _, accuracy in done:
            baseline_sum, baseline_n = baseline_sum + accuracy, baseline_n + 1
    return tree


def _retrain(env: TrackedEnv, archs: list[Architecture], idle: int, max_idle: int) -> int:
    """Train ``archs`` at the env's current fidelity (prefetched at once with a pool); return the
    streak of evaluations answered by the store."""
    env.prefetch(archs)
    for arch in archs:
        if env.exhausted or idle >= max_idle:
            break
        before = env.trainings
        env.evaluate(arch)
        idle = idle + 1 if env.trainings == before else 0
    return idle


def _update_controller(
    controller: Controller,
    optimizer: torch.optim.Optimizer,
    config: ReinforceTreeConfig,
    done: list[tuple[_Proposal, float]],
    b: float,
    tree: ReplayTree,
    rng: np.random.Generator,
    vocab: Vocabulary,
    image_size: int,
) -> None:
    """One REINFORCE step on the architectures trained (reward minus the running-average baseline),
    replaying from the tree with probability ``replay_p``."""
    loss = torch.zeros(())
    episodes = list(done)
    if len(tree) > 0 and config.replay_k > 0 and rng.random() < config.replay_p:
        for arch, accuracy in tree.sample(rng, config.replay_k, config.replay_temperature):
            episodes.append((_proposal_of(Architecture.parse(arch), vocab, image_size), accuracy))
    for proposal, accuracy in episodes:
        weights = [accuracy - b] * len(proposal.actions)
        loss = loss + controller.episode_loss(proposal.actions, proposal.masks, weights, config.entropy_coef)
    optimizer.zero_grad()
    (loss / len(done)).backward()
    optimizer.step()
