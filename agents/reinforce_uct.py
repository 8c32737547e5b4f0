"""The poster's agent, augmented: the replay tree decides where to search, by PUCT over its nodes
with the REINFORCE controller as the prior.

The poster's tree keeps, for every prefix, the accuracy and the *count* of what was found there;
its agent only replays from it. Here the tree is searched as AlphaZero and MuZero search theirs
(PUCT: Silver et al. 2017, Schrittwieser et al. 2020), as AlphaX (Wang et al. 2019) and LaNAS
(Wang et al. 2021) did for NAS: each architecture is built from the root, one layer at a time,
choosing at prefix ``s`` the action

    a* = argmax_a  Q(s, a) + c * P(a | s) * sqrt(N(s)) / (1 + N(s, a))

where ``P`` is the controller's masked softmax (the poster's LSTM), ``N`` the tree's counts of
architectures evaluated through each node, and ``Q`` the best accuracy found below the child,
min-max normalised over the search so far (MuZero's normalisation); a child never visited gets
its parent's value less ``fpu`` (first-play urgency, as in Leela Zero), so the search extends the
best prefixes first, and the counts push it elsewhere as they grow. HEAD is a child like the
others: choosing it closes the architecture. The built architecture is then trained once
(``env.evaluate``) and its accuracy backed up along its path (``evaluate="direct"``), or the env is
stepped through it, training every prefix as the poster's agent does, each prefix's accuracy
backed up into its own node (``evaluate="prefix"``).

The controller learns from both sides: REINFORCE on the architectures the tree chose (reward the
accuracy, baseline the running average: the poster's update), and every update replays the
``replay_k`` best architectures of the tree into it ("what the tree has learned"). What this
takes from where: PUCT and the value normalisation from AlphaZero / MuZero, the first-play
urgency from Leela Zero, the prior from the poster's controller and the statistics from its tree.

Section order: config, tree statistics, run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from agents.common.replay_tree import ReplayTree
from agents.common.tracked_env import BudgetExhausted, TrackedEnv
from agents.reinforce import Controller
from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["ReinforceUCTConfig", "run"]


# -- config -------------------------------------------------------------------------------------


@dataclass
class ReinforceUCTConfig:
    c_puct: float = 1.0
    """Weight of the exploration term (AlphaZero's c_puct; 1.0 with values in [0, 1], as MuZero's
    normalised values)."""
    fpu: float = 0.1
    """An unvisited child's value: its parent's normalised value minus this (first-play urgency).
    Small: extend good prefixes before trying elsewhere."""
    noise: float = 0.1
    """Scale of Gumbel noise added to every action's score, so ties between unvisited children are
    broken at random rather than always by the prior's order."""
    completion: str = "controller"
    """How an architecture goes on once the search leaves the visited tree (picks a child never
    visited): ``best`` copies the rest of the best architecture found below the parent after the
    new layer (in place of its next layer, or before it: a one-layer edit of the best, where the
    tree chose the position and the layer); ``controller``: the controller samples the rest."""
    value_floor: float = 0.0
    """The quantile of the accuracies found so far that a node's value is normalised from (values
    below clip at 0; the best found is 1). 0.0: MuZero's min-max. Higher spreads the values of the
    good prefixes apart, where min-max squeezes them (accuracies span 10-88%, the top differs by
    tenths of a point)."""
    counts: bool = True
    """Use the tree's counts in the exploration term. False ("counts ignored", an ablation): the
    term is c * P(a | s), and only the noise moves the search off its best path."""
    guidance: bool = True
    """Choose actions by PUCT over the tree. False ("tree guidance off", an ablation): actions are
    sampled from the controller alone, which still learns from the tree's replays."""
    evaluate: str = "direct"
    """``direct``: train only the architecture the tree built (one training each); ``prefix``: step
    the env through it, every prefix trained and scored, as the poster's agent does."""
    batch_size: int = 4
    """Architectures built per controller update (trained at once where the env has a pool)."""
    hidden_size: int = 64
    """LSTM units of the controller (the poster's agent's default)."""
    lr: float = 0.01
    """Adam step size of the controller (the poster's agent's default)."""
    entropy_coef: float = 0.01
    """Entropy bonus of the REINFORCE loss."""
    replay_k: int = 4
    """The tree's best architectures replayed into the controller at every update."""
    explore_after: int = 8
    """After this many architectures in a row answered by the store (the tree keeps choosing what it
    has), the next one is sampled from the controller alone, as with ``guidance=False``: keeps a
    search spending its budget (this project's choice)."""
    max_idle: int = 300
    """Architectures in a row answered by the store (no training) after which the search stops."""

    def __post_init__(self) -> None:
        if self.completion not in ("best", "controller"):
            raise ValueError(f"completion must be 'best' or 'controller', got {self.completion!r}")
        if self.evaluate not in ("direct", "prefix"):
            raise ValueError(f"evaluate must be 'direct' or 'prefix', got {self.evaluate!r}")
        for name in ("c_puct", "fpu", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "hidden_size", "max_idle", "explore_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.value_floor < 1.0:
            raise ValueError(f"value_floor must be a quantile in [0, 1), got {self.value_floor}")
        if self.replay_k < 0:
            raise ValueError(f"replay_k must be >= 0, got {self.replay_k}")


# -- tree statistics ----------------------------------------------------------------------------


class _Stats:
    """Per prefix (token text, "" the root; a closed architecture is its text + "|"): how many
    evaluated architectures passed through it and the best accuracy among them."""

    def __init__(self, floor: float = 0.0) -> None:
        self.visits: dict[str, int] = {}
        self.best: dict[str, float] = {}
        self.best_arch: dict[str, Architecture] = {}  # the architecture behind ``best``
        self.floor = floor
        self.found: list[float] = []  # every accuracy backed up
        self.low, self.high = math.inf, -math.inf

    def backup(self, path: list[str], accuracy: float, arch: Architecture) -> None:
        for key in path:
            self.visits[key] = self.visits.get(key, 0) + 1
            if accuracy > self.best.get(key, -math.inf):
                self.best[key], self.best_arch[key] = accuracy, arch
        self.found.append(accuracy)
        self.high = max(self.high, accuracy)
        self.low = (
            min(self.low, accuracy) if self.floor == 0.0 else float(np.quantile(self.found, self.floor))
        )

    def value(self, key: str) -> float | None:
        """The node's best accuracy normalised from the ``floor`` quantile (0: the lowest) to the
        best found so far, clipped at 0; None if unvisited."""
        if key not in self.best:
            return None
        if self.high <= self.low:
            return 0.5
        return max(0.0, (self.best[key] - self.low) / (self.high - self.low))


def _key(arch: Architecture) -> str:
    return str(arch)


# -- run ----------------------------------------------------------------------------------------


def run(env: TrackedEnv, seed: int, config: ReinforceUCTConfig | None = None) -> ReplayTree:
    """Search until ``env.exhausted``; return the replay tree of everything evaluated."""
    config = config or ReinforceUCTConfig()
    rng = np.random.default_rng(seed)
    controller = Controller.seeded(env.vocabulary.num_actions, config.hidden_size, seed)
    optimizer = torch.optim.Adam(controller.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    search = _Search(
        config, env.vocabulary, env.image_size, controller, _Stats(config.value_floor), rng, generator
    )
    tree = ReplayTree()
    baseline_sum, baseline_n = 0.0, 0
    env.reset(seed=seed)
    idle = 0
    while not env.exhausted and idle < config.max_idle:
        guided = config.guidance and idle < config.explore_after
        plans = [search.build(guided) for _ in range(config.batch_size)]
        archs = [search.path_of(actions)[-1][1] for actions, _ in plans]
        if config.evaluate == "direct":
            env.prefetch(archs)
        else:
            env.prefetch(p for arch in archs for p in arch.prefixes())
        done: list[tuple[list[int], list[np.ndarray], float]] = []
        for (actions, masks), arch in zip(plans, archs, strict=True):
            if env.exhausted or idle >= config.max_idle:
                break
            before = env.trainings
            accuracy = _evaluate_plan(env, search, tree, actions, arch)
            if accuracy is None:
                break
            idle = idle + 1 if env.trainings == before else 0
            done.append((actions, masks, accuracy))
        if not done:
            break
        b = baseline_sum / baseline_n if baseline_n else float(np.mean([d[2] for d in done]))
        _update_controller(search, optimizer, tree, done, b)
        for _, _, accuracy in done:
            baseline_sum, baseline_n = baseline_sum + accuracy, baseline_n + 1
    return tree


@dataclass
class _Search:
    """What building an architecture needs: the controller, the tree's statistics, the random streams."""

    config: ReinforceUCTConfig
    vocab: Vocabulary
    image_size: int
    controller: Controller
    stats: _Stats
    rng: np.random.Generator
    generator: torch.Generator

    def build(self, guided: bool) -> tuple[list[int], list[np.ndarray]]:
        """One architecture's actions (HEAD last) and the masks they were chosen under."""
        vocab, image_size, head = self.vocab, self.image_size, self.vocab.head_action
        arch = Architecture()
        actions: list[int] = []
        masks: list[np.ndarray] = []
        prev, state = torch.tensor([self.controller.num_actions]), None
        while True:
            mask = vocab.action_mask(arch, image_size)
            with torch.no_grad():
                logits, state = self.controller.step(prev, state)
                prior = torch.softmax(Controller.masked(logits, mask), dim=-1).numpy().astype(np.float64)
            if not guided:
                action = int(torch.multinomial(torch.from_numpy(prior), 1, generator=self.generator))
            else:
                action = self._puct_action(arch, prior, np.flatnonzero(mask))
                edited = self._edit_of_best(arch, action)
                if edited is not None:
                    return [*actions, *vocab.actions_of(edited[len(arch) :]), head], [
                        *masks,
                        *(
                            vocab.action_mask(edited[:t], image_size)
                            for t in range(len(arch), len(edited) + 1)
                        ),
                    ]
            actions.append(action)
            masks.append(mask)
            if action == head:
                return actions, masks
            arch = arch.append(vocab.layer_of(action))
            prev = torch.tensor([action])

    def _puct_action(self, arch: Architecture, prior: np.ndarray, allowed: np.ndarray) -> int:
        """The allowed action after ``arch`` with the highest PUCT score (plus Gumbel noise)."""
        config, stats, head = self.config, self.stats, self.vocab.head_action
        parent = _key(arch)
        n_parent = stats.visits.get(parent, 0)
        v_parent = stats.value(parent)
        fpu = (0.5 if v_parent is None else v_parent) - config.fpu
        scores = np.full(len(prior), -np.inf)
        for a in allowed:
            child = parent + "|" if a == head else _key(arch.append(self.vocab.layer_of(int(a))))
            q = stats.value(child)
            n = stats.visits.get(child, 0)
            explore = math.sqrt(n_parent + 1) / (1 + n) if config.counts else 1.0
            scores[a] = (fpu if q is None else q) + config.c_puct * prior[a] * explore
        scores[allowed] += config.noise * self.rng.gumbel(size=len(allowed))
        return int(np.argmax(scores))

    def _edit_of_best(self, arch: Architecture, action: int) -> Architecture | None:
        """Under ``completion="best"``, leaving the tree: a one-layer edit of the best below ``arch``."""
        vocab, stats = self.vocab, self.stats
        parent = _key(arch)
        if not (
            self.config.completion == "best" and parent in stats.best_arch and action != vocab.head_action
        ):
            return None
        branch = arch.append(vocab.layer_of(action))
        if _key(branch) in stats.visits:
            return None
        best = stats.best_arch[parent]
        skip = 1 if self.rng.random() < 0.5 else 0  # replace its next layer, or insert before it
        for rest in (best[len(arch) + skip :], best[len(arch) + 1 - skip :], ()):
            edited = Architecture((*branch.layers, *rest))
            if len(edited) <= vocab.max_layers and vocab.is_valid(edited, self.image_size):
                break
        return edited

    def path_of(self, actions: list[int]) -> list[tuple[str, Architecture]]:
        """(node key, the node's architecture) from the root to the closed architecture."""
        arch, out = Architecture(), [("", Architecture())]
        for a in actions:
            if a == self.vocab.head_action:
                out.append((_key(arch) + "|", arch))
            else:
                arch = arch.append(self.vocab.layer_of(a))
                out.append((_key(arch), arch))
        return out

    def loss_of(self, actions: list[int], masks: list[np.ndarray], reward: float, b: float) -> torch.Tensor:
        """The controller's REINFORCE loss on one architecture's actions."""
        return self.controller.episode_loss(
            actions, masks, [reward - b] * len(actions), self.config.entropy_coef
        )


def _evaluate_plan(
    env: TrackedEnv, search: _Search, tree: ReplayTree, actions: list[int], arch: Architecture
) -> float | None:
    """Score one built architecture and back it up into stats and tree; None: the budget ran out mid-way."""
    path = search.path_of(actions)
    if search.config.evaluate == "direct":
        accuracy = env.evaluate(arch)
        search.stats.backup([k for k, _ in path], accuracy, arch)
        tree.insert(arch, accuracy)
        return accuracy
    env.reset()
    accuracy = 0.0
    try:
        for t, action in enumerate(actions):
            _, reward, terminated, _, info = env.step(action)
            if action != search.vocab.head_action:
                # a prefix's accuracy is a real measurement of its node and those above
                search.stats.backup([k for k, _ in path[: t + 2]], float(reward), path[t + 1][1])
                tree.insert(info["arch"], float(reward))
            accuracy = float(reward)
            if terminated:
                break
    except BudgetExhausted:
        return None
    search.stats.backup([path[-1][0]], accuracy, arch)  # the closed architecture's own node
    return accuracy


def _update_controller(
    search: _Search,
    optimizer: torch.optim.Optimizer,
    tree: ReplayTree,
    done: list[tuple[list[int], list[np.ndarray], float]],
    b: float,
) -> None:
    """One REINFORCE step on the architectures built, with the tree's best replayed."""
    vocab, image_size = search.vocab, search.image_size
    loss = torch.zeros(())
    for actions, masks, accuracy in done:
        loss = loss + search.loss_of(actions, masks, accuracy, b)
    for arch_text, accuracy, _count in sorted(tree.architectures(), key=lambda x: -x[1])[
        : search.config.replay_k
    ]:
        parsed = Architecture.parse(arch_text)
        actions = [*vocab.actions_of(parsed), vocab.head_action]
        masks = [vocab.action_mask(parsed[:t], image_size) for t in range(len(actions))]
        loss = loss + search.loss_of(actions, masks, accuracy, b)
    optimizer.zero_grad()
    (loss / len(done)).backward()
    optimizer.step()
