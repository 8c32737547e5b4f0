"""Stable-Baselines3 plumbing shared by the SB3 agents: the budget of trainings as the stop.

Steps answered by the result store are free, so the number of steps a budget buys is unknown in
advance: ``total_timesteps`` is only a cap, and the ``StopWhenExhausted`` callback ends ``learn``
after the step that spends the last training. ``TrackedEnv.step`` raises
:class:`~agents.common.tracked_env.BudgetExhausted` if a step would still train past the budget (it
cannot once the callback stops the run, but it is what guarantees the budget whatever SB3 does);
:func:`learn_to_budget` catches it and ends cleanly. With ``n_envs`` > 1 the copies of the env run
in a ``SubprocVecEnv`` and are counted against the one budget (:func:`vec_env`).

Stable-Baselines3 is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.common.tracked_env import BudgetExhausted, TrackedEnv

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import DummyVecEnv

__all__ = ["learn_to_budget", "stop_callback", "vec_env"]


def vec_env(env: TrackedEnv, n_envs: int) -> Any:
    """The vector env an SB3 model steps: ``env`` itself (n_envs=1) or counted copies of it."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    return _dummy_vec_env(env) if n_envs == 1 else _subproc_env(env, n_envs)


def stop_callback(env: TrackedEnv) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class StopWhenExhausted(BaseCallback):
        """Ends ``learn`` after the step that spends the last training of the budget."""

        def __init__(self, tracked: TrackedEnv) -> None:
            super().__init__(verbose=0)
            self.tracked = tracked

        def _on_step(self) -> bool:
            return not self.tracked.exhausted

    return StopWhenExhausted(env)


def _dummy_vec_env(env: TrackedEnv) -> DummyVecEnv:
    """DummyVecEnv > Monitor > ``env``. We keep ``env`` (the budget keeper) to
    check it; ``env_method("action_masks")`` reaches ``TrackedEnv.action_masks`` through
    ``get_wrapper_attr``."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    monitored = Monitor(env)
    return DummyVecEnv([lambda: monitored])


def _budgeted(venv: Any, tracked: TrackedEnv) -> Any:
    """Wrap a ``SubprocVecEnv`` of copies of the tracked env: count their trainings against the
    budget and record their steps in the tracked env's history, in env order.

    Before a step, each copy's next architecture is known (its observation and its action): one not
    in the store yet (and not already asked for by a lower-numbered copy) is a training. A copy
    whose training would pass the budget is given HEAD instead (or an action that ends the
    episode untrained); the stop callback ends ``learn`` after that step.
    """
    import numpy as np
    from stable_baselines3.common.vec_env import VecEnvWrapper

    vocab, image_size = tracked.vocabulary, tracked.image_size
    head = vocab.head_action

    class Budgeted(VecEnvWrapper):
        def reset(self) -> Any:
            self._obs = self.venv.reset()
            return self._obs

        def step_async(self, actions: Any) -> None:
            actions = np.array(actions, copy=True)
            self._new = []
            asked: set[str] = set()
            for i, action in enumerate(actions):
                arch = vocab.decode(self._obs[i])  # type: ignore[index]
                evaluated = vocab.step(arch, int(action), image_size).evaluated  # reward="prefix"
                nxt = None if evaluated is None else str(evaluated)
                trains = (
                    nxt is not None
                    and nxt not in asked
                    and tracked.evaluator.lookup(nxt, tracked.train_seed, tracked.epochs) is None
                )
                if trains and tracked.would_overspend(len(asked)):
                    actions[i], trains = head, False  # HEAD trains nothing (masked at t=0: ends it)
                elif trains:
                    asked.add(str(nxt))
                self._new.append(trains)
            self.venv.step_async(actions)

        def step_wait(self) -> Any:
            obs, rewards, dones, infos = self.venv.step_wait()
            for info, new, done in zip(infos, self._new, dones, strict=True):
                tracked.record_remote(info["arch"], info["accuracy"], new, bool(done))
            self._obs = obs
            return obs, rewards, dones, infos

    return Budgeted(venv)


def _subproc_env(env: TrackedEnv, n_envs: int) -> Any:
    """``n_envs`` copies of ``env`` (same id and kwargs, the store file shared), each in a process,
    each with its share of the cores; on several GPUs, copy i on GPU i % GPUs."""
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from nas_gym.workers import cpu_share, round_robin_device

    spec = env.env.spec
    if spec is None or spec.id is None:
        raise ValueError("n_envs > 1 needs an env made with gym.make (its id and kwargs are copied)")
    kwargs = dict(spec.kwargs)
    if env.base.reward_mode != "prefix":
        raise ValueError("n_envs > 1 needs reward='prefix' (each step trains the architecture it makes)")
    if kwargs.get("store") is None:
        raise ValueError("n_envs > 1 needs the env's store to be a file: the copies share it")
    kwargs["train_seed"] = env.train_seed
    trains = env.evaluator.kind == "train"
    if "threads" in kwargs or trains:
        kwargs["threads"] = kwargs.get("threads") or cpu_share(n_envs)
    devices = [kwargs.get("device")] * n_envs
    if kwargs.get("device") is None and trains:
        devices = [round_robin_device(i) for i in range(n_envs)]  # a GPU each where there are several

    def maker(device: Any) -> Any:
        extra = {} if device is None else {"device": device}
        return lambda: Monitor(gym.make(spec, **{**kwargs, **extra}))  # the spec: no registry needed

    venv = SubprocVecEnv([maker(d) for d in devices])
    venv.env_method("set_ledger_tag", env.tag)  # their trainings count for this search in the ledger
    return _budgeted(venv, env)


def learn_to_budget(model: BaseAlgorithm, env: TrackedEnv, max_steps_per_training: int) -> None:
    """Run ``model.learn`` until the budget is spent (or ``max_steps_per_training`` x the trainings
    left, a cap on steps the store answers for free)."""
    left = env.trainings_left()
    if left is None:  # a budget of seconds only: the cap on steps is what this sets
        left = 10_000
    try:
        model.learn(total_timesteps=left * max_steps_per_training, callback=stop_callback(env))
    except BudgetExhausted:
        # the budget is the stop: a step that would train past it ends the search, mid-rollout
        pass
