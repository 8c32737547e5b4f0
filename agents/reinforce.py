"""REINFORCE with an experience replay tree: the method of the poster "Augmented Neural
Architecture Search with REINFORCE" (Xu), after NASRL (Zoph and Le, 2017).

An LSTM controller emits one layer (action) per step, respecting the env's action mask. The
env trains every prefix a_1..a_t and returns its validation accuracy R_t. The controller is
updated every ``episodes_per_update`` episodes (m) with

    grad J = 1/m sum_k sum_t grad log P(a_t | a_<t) (G_t - b)

where ``b`` is the running average of the accuracies of the architectures sampled so far, and
the return is the poster's forward accumulation ``G_t = R_t + gamma G_{t-1}`` (or, as an option,
the usual discounted return ``G_t = R_t + gamma G_{t+1}``). Every episode goes into a
:class:`~agents.common.replay_tree.ReplayTree`; with probability ``replay_p`` an update also replays
architectures sampled from the tree, scored by the accuracies stored there (no retraining).
The optional curriculum raises the layer bound and the training epochs during the search, as
the poster did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agents.common.replay_tree import ReplayTree
from agents.common.tracked_env import BudgetExhausted, TrackedEnv
from nas_gym.search_space import Architecture, Vocabulary

__all__ = ["Controller", "ReinforceConfig", "run"]


@dataclass
class ReinforceConfig:
    hidden_size: int = 64
    """LSTM units of the controller."""
    lr: float = 0.01
    """Adam step size of the controller."""
    episodes_per_update: int = 2
    """m in the poster's 1/m sum over episodes."""
    gamma: float = 0.5
    """Weight of earlier prefixes in the poster's G_t = R_t + gamma G_{t-1}."""
    return_mode: str = "poster"
    """The return: "poster" (forward, as above) or "discounted" (R_t + gamma G_{t+1})."""
    normalize_return: bool = True
    """Divide G_t by its weights' sum, so G_t and b share a scale. This project's choice, not the
    poster's (which gives none)."""
    baseline_decay: float | None = None
    """None: b is the plain running average of the accuracies (the poster); else an EMA factor."""
    entropy_coef: float = 0.01
    """Entropy bonus: keeps the controller from collapsing before the budget is spent."""
    replay_p: float = 0.5
    """Probability that an update also replays architectures from the tree. The replay settings are
    this project's choices: the poster samples the tree "with probability p" and gives no values for
    p, the number replayed or how the tree is sampled."""
    replay_k: int = 4
    """Architectures replayed per replay update (this project's choice)."""
    replay_temperature: float | None = 0.02
    """Softmax temperature over the tree's accuracies when sampling replays; None = uniform (this
    project's choice)."""
    explore_after: int = 20
    """A converged controller samples only stored architectures and spends no budget: after k times
    this many episodes in a row that trained nothing, each action is drawn uniformly among the
    allowed ones with probability min(1, 0.1 * 2^(k-1)), for the rest of the search (this project's
    choice, so that a search uses its budget; its logits can be too peaked for a temperature to
    matter)."""
    max_free_episodes: int = 300
    """Give up after this many episodes in a row that trained nothing; the run's summary then says
    how much of the budget was left."""
    curriculum: list[tuple[float, int, float | None]] = field(
        default_factory=lambda: [(0.0, 4, None), (0.5, 6, None), (0.8, 15, None)]
    )
    """(fraction of the budget spent, max layers, epochs or None): the layer bound starts low and
    rises, as the poster's did, so early episodes (a random controller rarely picks HEAD) do not
    spend the budget on 15-layer children; empty = no curriculum."""

    def __post_init__(self) -> None:
        if self.return_mode not in ("poster", "discounted"):
            raise ValueError(f"return_mode must be 'poster' or 'discounted', got {self.return_mode!r}")
        if self.episodes_per_update < 1:
            raise ValueError("episodes_per_update must be >= 1")
        if not 0 <= self.gamma <= 1 or not 0 <= self.replay_p <= 1:
            raise ValueError("gamma and replay_p must be in [0, 1]")


class Controller(nn.Module):
    """LSTM policy over actions: input = previous action (a start token first)."""

    def __init__(self, num_actions: int, hidden_size: int) -> None:
        super().__init__()
        self.num_actions = num_actions
        self.embed = nn.Embedding(num_actions + 1, hidden_size)  # last index = start token
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, num_actions)

    @classmethod
    def seeded(cls, num_actions: int, hidden_size: int, seed: int) -> Controller:
        """A controller whose initial weights are a function of ``seed``; torch's global random
        state is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(num_actions, hidden_size)

    def step(self, prev: torch.Tensor, state):
        h, c = self.cell(self.embed(prev), state)
        return self.head(h)[0], (h, c)

    @staticmethod
    def masked(logits: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
        """``logits`` with the actions ``mask`` forbids at minus infinity."""
        return logits.masked_fill(~torch.from_numpy(np.asarray(mask, dtype=bool)), float("-inf"))

    def episode_loss(
        self, actions: list[int], masks: list[np.ndarray], weights: list[float], entropy_coef: float
    ) -> torch.Tensor:
        """-(sum_t log P(a_t) w_t) - entropy bonus, teacher-forced over one episode's actions (the
        policy-gradient loss both REINFORCE agents use; w_t is the return minus the baseline)."""
        prev, state = torch.tensor([self.num_actions]), None
        loss = torch.zeros(())
        for action, mask, w in zip(actions, masks, weights, strict=True):
            logits, state = self.step(prev, state)
            dist = torch.distributions.Categorical(logits=self.masked(logits, mask))
            loss = loss - dist.log_prob(torch.tensor(action)) * w - entropy_coef * dist.entropy()
            prev = torch.tensor([action])
        return loss


def returns(rewards: list[float], gamma: float, mode: str, normalize: bool) -> list[float]:
    """Per-step returns G_t of one episode (see the module docstring)."""
    out = [0.0] * len(rewards)
    weight, acc = 0.0, 0.0
    order = range(len(rewards)) if mode == "poster" else range(len(rewards) - 1, -1, -1)
    for t in order:
        acc = rewards[t] + gamma * acc
        weight = 1.0 + gamma * weight
        out[t] = acc / weight if normalize else acc
    return out


@dataclass
class _Episode:
    actions: list[int]
    masks: list[np.ndarray]
    rewards: list[float]
    archs: list[str]
    cut: bool = False  # the budget ran out before the episode ended


def _bound_mask(mask: np.ndarray, length: int, max_layers: int, head: int) -> np.ndarray:
    """Curriculum: past the current layer bound only HEAD is allowed."""
    if length >= max_layers and mask[head]:
        bounded = np.zeros_like(mask)
        bounded[head] = True
        return bounded
    return mask


def run(
    env: TrackedEnv,
    seed: int,
    config: ReinforceConfig | None = None,
    tree: ReplayTree | None = None,
    checkpoint: str | Path | None = None,
) -> ReplayTree:
    """Search until the budget is spent; return the replay tree (also saved as ``checkpoint``/tree.json)."""
    config = config or ReinforceConfig()
    tree = tree if tree is not None else ReplayTree()
    vocab = env.vocabulary
    rng = np.random.default_rng(seed)
    controller = Controller.seeded(vocab.num_actions, config.hidden_size, seed)
    optimizer = torch.optim.Adam(controller.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    baseline_sum, baseline_n, baseline_ema = 0.0, 0, None
    max_layers, epochs = vocab.max_layers, None

    env.reset(seed=seed)
    batch: list[_Episode] = []
    free_episodes = 0
    explore = 0.0  # once the controller has converged, it keeps exploring (it never goes back)
    image_size = env.image_size
    while not env.exhausted and free_episodes < config.max_free_episodes:
        max_layers, epochs = _curriculum(config, env, vocab.max_layers, max_layers, epochs)
        # the episodes of an update are drawn first (the controller samples from its own RNG and
        # never sees a reward mid-episode), and their prefixes trained at once where the env has a pool
        k = free_episodes // max(1, config.explore_after)
        explore = max(explore, 0.0 if k == 0 else min(1.0, 0.1 * 2 ** (k - 1)))
        plans = [
            _plan_episode(controller, generator, vocab, image_size, max_layers, explore, env.reward_mode)
            for _ in range(config.episodes_per_update - len(batch))
        ]
        env.prefetch((arch for plan in plans for arch in plan.archs), epochs=epochs)
        free_episodes, cut = _play_plans(
            env, plans, epochs, tree, batch, free_episodes, config.max_free_episodes
        )
        if cut:
            break
        if len(batch) < config.episodes_per_update and not env.exhausted:
            continue
        if not batch:
            break
        b = baseline_ema if baseline_ema is not None else (baseline_sum / baseline_n if baseline_n else 0.0)
        _update_controller(controller, optimizer, config, batch, b, tree, rng, vocab, image_size)
        for ep in batch:  # b: running average of the sampled architectures' accuracies
            final = ep.rewards[-1]
            baseline_sum, baseline_n = baseline_sum + final, baseline_n + 1
            if config.baseline_decay is not None:
                d = config.baseline_decay
                baseline_ema = final if baseline_ema is None else d * baseline_ema + (1 - d) * final
        batch = []
        if checkpoint is not None:
            _save(Path(checkpoint), controller, tree)
    if checkpoint is not None:
        _save(Path(checkpoint), controller, tree)
    return tree


def _play_plans(
    env: TrackedEnv,
    plans: list[_Plan],
    epochs: float | None,
    tree: ReplayTree,
    batch: list[_Episode],
    free_episodes: int,
    max_free_episodes: int,
) -> tuple[int, bool]:
    """Play the plans into ``tree`` and ``batch``; return the free-episode streak and whether one was cut."""
    for plan in plans:
        if env.exhausted or free_episodes >= max_free_episodes:
            break
        before = env.trainings
        episode = _play_episode(env, plan, epochs)
        free_episodes = free_episodes + 1 if env.trainings == before else 0
        # a HEAD step repeats the architecture it closes: score each architecture once
        for action, arch, accuracy in zip(episode.actions, episode.archs, episode.rewards, strict=True):
            if action != env.vocabulary.head_action:
                tree.insert(arch, accuracy)
        if episode.cut:  # the prefixes it trained are in the tree; the controller is not updated
            return free_episodes, True
        if episode.archs:
            batch.append(episode)
    return free_episodes, False


def _update_controller(
    controller: Controller,
    optimizer: torch.optim.Optimizer,
    config: ReinforceConfig,
    batch: list[_Episode],
    b: float,
    tree: ReplayTree,
    rng: np.random.Generator,
    vocab: Vocabulary,
    image_size: int,
) -> None:
    """One REINFORCE step on ``batch`` against baseline ``b``, replaying from the tree with ``replay_p``."""
    loss = torch.zeros(())
    for ep in batch:
        g = returns(ep.rewards, config.gamma, config.return_mode, config.normalize_return)
        loss = loss + _episode_loss(controller, ep, g, b, config.entropy_coef)
    if len(tree) > 0 and rng.random() < config.replay_p:
        for arch, _ in tree.sample(rng, config.replay_k, config.replay_temperature):
            replay = _replay_episode(arch, tree, vocab, image_size)
            g = returns(replay.rewards, config.gamma, config.return_mode, config.normalize_return)
            loss = loss + _episode_loss(controller, replay, g, b, config.entropy_coef)
    optimizer.zero_grad()
    (loss / len(batch)).backward()
    optimizer.step()


def _curriculum(config: ReinforceConfig, env: TrackedEnv, full: int, max_layers: int, epochs):
    if not config.curriculum:
        return full, epochs
    spent = env.progress  # of the trainings or the seconds, whichever budget is further spent
    for fraction, layers, new_epochs in sorted(config.curriculum):
        if spent >= fraction:
            max_layers, target = min(layers, full), new_epochs
            if target is not None and target != epochs:
                epochs = target  # the episodes ask for it (reset options): an env that answers
                # at one fidelity only refuses other epochs with a ValueError
    return max_layers, epochs


@dataclass
class _Plan:
    actions: list[int]
    masks: list[np.ndarray]
    archs: list[str]  # the architecture each layer action makes (HEAD adds none)


def _plan_episode(
    controller: Controller,
    generator: torch.Generator,
    vocab: Vocabulary,
    image_size: int,
    max_layers: int,
    explore: float = 0.0,
    reward: str = "prefix",
) -> _Plan:
    """Draw one episode's actions from the controller, each one uniform among the allowed actions
    with probability ``explore``: up to HEAD or the env's ``max_layers``; ``archs`` are what the
    episode's steps evaluate under the env's ``reward`` mode (what a pool trains ahead)."""
    plan = _Plan([], [], [])
    arch = Architecture()
    prev, state = torch.tensor([controller.num_actions]), None
    while True:
        mask = _bound_mask(vocab.action_mask(arch, image_size), len(arch), max_layers, vocab.head_action)
        with torch.no_grad():
            logits, state = controller.step(prev, state)
            probs = torch.softmax(Controller.masked(logits, mask), dim=-1)
            if explore > 0:
                uniform = torch.from_numpy(np.asarray(mask, dtype=np.float64)).to(probs.dtype)
                probs = (1 - explore) * probs + explore * uniform / uniform.sum()
            action = int(torch.multinomial(probs, 1, generator=generator))
        plan.actions.append(action)
        plan.masks.append(mask)
        step = vocab.step(arch, action, image_size, reward, mask)  # the env's rules, its reward mode
        if step.evaluated is not None:
            plan.archs.append(str(step.evaluated))
        if step.terminated:
            return plan
        arch = step.arch
        prev = torch.tensor([action])


def _play_episode(env: TrackedEnv, plan: _Plan, epochs: float | None = None) -> _Episode:
    """Step the env through a planned episode at ``epochs`` (None: the env's own); cut where the
    budget runs out."""
    env.reset(options=None if epochs is None else {"epochs": epochs})
    episode = _Episode([], [], [], [])
    for action, mask in zip(plan.actions, plan.masks, strict=True):
        try:
            _, reward, terminated, truncated, info = env.step(action)
        except BudgetExhausted:
            episode.cut = True
            break
        episode.actions.append(action)
        episode.masks.append(mask)
        episode.rewards.append(float(reward))
        episode.archs.append(info["arch"])
        if terminated or truncated:
            break
    return episode


def _episode_loss(controller: Controller, ep: _Episode, g: list[float], b: float, entropy_coef: float):
    """-(sum_t log P(a_t) (G_t - b)) - entropy bonus, teacher-forced over the episode."""
    return controller.episode_loss(ep.actions, ep.masks, [g_t - b for g_t in g], entropy_coef)


def _replay_episode(arch: str, tree: ReplayTree, vocab: Vocabulary, image_size: int) -> _Episode:
    """An episode rebuilt from the tree: the architecture's actions then HEAD, with stored rewards."""
    parsed = Architecture.parse(arch)
    actions = vocab.actions_of(parsed) + [vocab.head_action]
    masks, rewards, archs = [], [], []
    for t, action in enumerate(actions):
        prefix = parsed[:t]
        masks.append(vocab.action_mask(prefix, image_size))
        closed = parsed[: t + 1] if action != vocab.head_action else parsed
        stored = tree.get(str(closed))
        rewards.append(stored[0] if stored is not None else 0.0)
        archs.append(str(closed))
    for t, action in enumerate(actions):  # a tree path may run past this env's bound
        if not masks[t][action]:
            masks[t] = masks[t].copy()
            masks[t][action] = True
    return _Episode(actions, masks, rewards, archs)


def _save(folder: Path, controller: Controller, tree: ReplayTree) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "controller.pt.tmp"
    torch.save(controller.state_dict(), tmp)
    tmp.replace(folder / "controller.pt")
    tree.save(folder / "tree.json")
