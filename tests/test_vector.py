"""``gym.make_vec("NASSurrogate-v0", num_envs=N)``: the batched vector env gives what N single envs
in Gymnasium's ``SyncVectorEnv`` give, step for step."""

from __future__ import annotations

import shutil

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401  (registers the env ids)
from nas_gym.surrogate import SHIPPED_SURROGATE
from nas_gym.vector import NASSurrogateVectorEnv

INFO_KEYS = ("arch", "accuracy", "num_params", "action_mask", "invalid_action", "train_seconds")


def test_make_vec_gives_the_batched_env_by_default():
    env = gym.make_vec("NASSurrogate-v0", num_envs=3)
    assert isinstance(env, NASSurrogateVectorEnv)
    assert env.observation_space.shape == (3, 15) and env.single_action_space.n == 24
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    env.close()


@pytest.mark.parametrize("mode", [gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("reward", ["prefix", "improvement", "final"])
@pytest.mark.parametrize("noise", [False, True])
def test_the_same_steps_as_single_envs_in_a_sync_vector_env(tmp_path, reward, noise, mode):
    # the single envs read their own copy of the surrogate, so no prediction is shared between
    # the two: the batched predictions are compared with the one-by-one ones
    copy = tmp_path / "surrogate.npz"
    shutil.copy(SHIPPED_SURROGATE, copy)
    n = 6
    ours = gym.make_vec("NASSurrogate-v0", num_envs=n, reward=reward, noise=noise, autoreset_mode=mode)
    assert ours.metadata["autoreset_mode"] == mode
    ref = gym.make_vec(
        "NASSurrogate-v0",
        num_envs=n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": mode},
        reward=reward,
        noise=noise,
        surrogate=str(copy),
    )
    obs, info = ours.reset(seed=7)
    obs_ref, info_ref = ref.reset(seed=7)
    assert np.array_equal(obs, obs_ref)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(400):
        # mostly allowed actions, sometimes any action (a masked one ends the episode with reward 0)
        allowed = (rng.random(info["action_mask"].shape) * info["action_mask"]).argmax(axis=1)
        actions = np.where(rng.random(n) < 0.05, rng.integers(0, 24, size=n), allowed)
        out, out_ref = ours.step(actions), ref.step(actions)
        for mine, theirs in zip(out[:4], out_ref[:4], strict=True):
            assert np.array_equal(mine, theirs)
        info, info_ref = out[4], out_ref[4]
        for key in INFO_KEYS:
            assert np.array_equal(np.asarray(info[key]), np.asarray(info_ref[key])), key
        assert ("final_info" in info) == ("final_info" in info_ref)
        if "final_info" in info_ref:  # same-step: the ended episodes' last observation and info
            assert np.array_equal(info["_final_obs"], info_ref["_final_obs"])
            for mine, theirs in zip(info["final_obs"], info_ref["final_obs"], strict=True):
                assert (mine is None and theirs is None) or np.array_equal(mine, theirs)
            assert info["final_info"].keys() == info_ref["final_info"].keys()
            for key, value in info_ref["final_info"].items():
                assert np.array_equal(np.asarray(info["final_info"][key]), np.asarray(value)), key
                assert np.asarray(info["final_info"][key]).dtype == np.asarray(value).dtype, key
        ended += int(out[2].sum())
    assert ended > 20  # episodes ended and were reset along the way
    ours.close()
    ref.close()


def test_bad_input_is_refused_with_what_is_wrong():
    env = gym.make_vec("NASSurrogate-v0", num_envs=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0, 1]))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="2 ints in 0..23"):
        env.step(np.array([0]))
    with pytest.raises(ValueError, match="0..23"):
        env.step(np.array([0, 24]))
    with pytest.raises(ValueError, match="no result store"):
        gym.make_vec("NASSurrogate-v0", num_envs=2, store="x.sqlite")
    with pytest.raises(ValueError, match="num_envs"):
        NASSurrogateVectorEnv(num_envs=0)


def test_an_autoreset_mode_it_does_not_have_is_refused():
    with pytest.raises(ValueError, match="autoreset_mode must be one of"):
        gym.make_vec("NASSurrogate-v1", 2, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
