"""Masked PPO in one file, CleanRL style, over the surrogate's batched vector env.

    python examples/masked_ppo.py [--num-envs 16] [--total-steps 200000] [--seed 0]

The vector env runs in Gymnasium's same-step autoreset mode (what CleanRL's scripts assume: the
step that ends an episode already returns the next episode's first observation), and the policy
samples only allowed actions (``info["action_mask"]``), so no episode ends on an invalid layer.
Each episode builds one architecture; its return is the accuracy the surrogate predicts for its
prefixes (``reward="prefix"``). Prints, every update, the steps done, the mean final accuracy of
the episodes that ended in it and the best architecture seen.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import nas_gym  # noqa: F401  (registers the env ids)


class Agent(nn.Module):
    """An MLP actor-critic over the one-hot slots of the observation."""

    def __init__(self, slots: int, values: int, actions: int, hidden: int = 128) -> None:
        super().__init__()
        self.values = values
        self.body = nn.Sequential(
            nn.Linear(slots * values, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.actor = nn.Linear(hidden, actions)
        self.critic = nn.Linear(hidden, 1)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(nn.functional.one_hot(obs, self.values).float().flatten(1))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)

    def act(self, obs: torch.Tensor, mask: torch.Tensor, action: torch.Tensor | None = None):
        h = self.features(obs)
        logits = self.actor(h).masked_fill(~mask, -1e9)  # masked actions are never drawn
        dist = torch.distributions.Categorical(logits=logits)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.critic(h).squeeze(-1)


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env-id", default="NASSurrogate-v1")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=32, help="steps per env per rollout")
    p.add_argument("--total-steps", type=int, default=200_000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=1.0)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    envs = gym.make_vec(args.env_id, args.num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    slots, values = envs.single_observation_space.shape[0], int(envs.single_observation_space.nvec[0])
    agent = Agent(slots, values, int(envs.single_action_space.n))
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)
    n, t_len = args.num_envs, args.num_steps
    obs_buf = torch.zeros((t_len, n, slots), dtype=torch.long)
    mask_buf = torch.zeros((t_len, n, envs.single_action_space.n), dtype=torch.bool)
    act_buf, logp_buf = torch.zeros((t_len, n), dtype=torch.long), torch.zeros((t_len, n))
    rew_buf, done_buf, val_buf = torch.zeros((t_len, n)), torch.zeros((t_len, n)), torch.zeros((t_len, n))

    obs_np, info = envs.reset(seed=args.seed)
    obs, mask = torch.as_tensor(obs_np), torch.as_tensor(info["action_mask"], dtype=torch.bool)
    best, steps, start, finals = (0.0, ""), 0, time.time(), []
    while steps < args.total_steps:
        for t in range(t_len):
            obs_buf[t], mask_buf[t] = obs, mask
            with torch.no_grad():
                action, logp, _, value = agent.act(obs, mask)
            obs_np, reward, terminated, truncated, info = envs.step(action.numpy())
            act_buf[t], logp_buf[t], val_buf[t] = action, logp, value
            rew_buf[t] = torch.as_tensor(reward, dtype=torch.float32)
            done_buf[t] = torch.as_tensor(terminated | truncated, dtype=torch.float32)
            for i in np.flatnonzero(terminated | truncated):  # same-step: the ended episode's info
                accuracy, arch = float(info["final_info"]["accuracy"][i]), info["final_info"]["arch"][i]
                finals.append(accuracy)
                best = max(best, (accuracy, arch))
            obs, mask = torch.as_tensor(obs_np), torch.as_tensor(info["action_mask"], dtype=torch.bool)
        steps += t_len * n
        # GAE; an episode that ended at step t contributes nothing after it (same-step autoreset)
        with torch.no_grad():
            next_value = agent.value(obs)
        adv, last = torch.zeros_like(rew_buf), torch.zeros(n)
        for t in reversed(range(t_len)):
            nxt = next_value if t == t_len - 1 else val_buf[t + 1]
            alive = 1.0 - done_buf[t]
            delta = rew_buf[t] + args.gamma * nxt * alive - val_buf[t]
            last = delta + args.gamma * args.gae_lambda * alive * last
            adv[t] = last
        ret = adv + val_buf
        b = [x.reshape(t_len * n, *x.shape[2:]) for x in (obs_buf, mask_buf, act_buf, logp_buf, adv, ret)]
        size = t_len * n // args.minibatches
        for _ in range(args.epochs):
            for idx in torch.randperm(t_len * n).split(size):
                _, logp, entropy, value = agent.act(b[0][idx], b[1][idx], b[2][idx])
                ratio = (logp - b[3][idx]).exp()
                a = (b[4][idx] - b[4][idx].mean()) / (b[4][idx].std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                loss = pg + 0.5 * ((value - b[5][idx]) ** 2).mean() - args.ent_coef * entropy.mean()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
        recent = float(np.mean(finals[-200:])) if finals else float("nan")
        print(f"steps {steps}: mean final accuracy {recent:.4f} over the last {min(200, len(finals))} episodes; "
              f"best {best[0]:.4f} {best[1]} ({steps / (time.time() - start):.0f} steps/s)", flush=True)  # fmt: skip
    envs.close()
    return best[0]


if __name__ == "__main__":
    main()
