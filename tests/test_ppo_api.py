"""RecurrentPPO behaves like sb3-contrib's: same constructor, predict/save/load, spaces, SB3 utilities."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO as ContribRecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from rlgru import RecurrentPPO
from rlgru.algorithm.policies import POLICY_ALIASES
from rlgru.cores import core_names, resolve_core
from rlgru.cores.registry import core_label
from tests.helpers import ACTION_SPACES, OBSERVATION_SPACES, RandomEpisodeEnv

SMALL = {"n_steps": 16, "batch_size": 32, "n_epochs": 2}


def vec_env(n_envs: int = 2, seed: int = 0, **env_kwargs) -> object:
    return make_vec_env(RandomEpisodeEnv, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)


def test_constructor_accepts_every_sb3_contrib_argument() -> None:
    ours = inspect.signature(RecurrentPPO.__init__).parameters
    theirs = inspect.signature(ContribRecurrentPPO.__init__).parameters
    missing = [name for name in theirs if name not in ours]
    assert not missing
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name


def test_sb3_contrib_policy_kwargs_are_aliases() -> None:
    model = RecurrentPPO("MlpLstmPolicy", vec_env(), policy_kwargs={
        "lstm_hidden_size": 12, "n_lstm_layers": 2, "shared_lstm": True, "enable_critic_lstm": False,
    }, **SMALL)
    policy = model.policy
    assert (policy.hidden_size, policy.n_layers, policy.shared_core) == (12, 2, True)
    assert policy.critic_core is None and policy.core_type == "lstm"
    assert not policy.critic_trains_core  # sb3-contrib's shared LSTM is trained by the policy loss only


@pytest.mark.parametrize("trains", [True, False])
def test_critic_trains_shared_core_only_when_asked(trains: bool) -> None:
    model = RecurrentPPO("MlpGruPolicy", vec_env(), policy_kwargs={"hidden_size": 8, "shared_core": True,
                                                                   "critic_trains_core": trains}, **SMALL)
    policy = model.policy
    obs = th.randn(3, *policy.observation_space.shape)
    policy.predict_values(obs, th.randn_like(policy.initial_state(3))).sum().backward()
    core_grads = [p.grad for p in policy.actor_core.parameters()]
    assert all(g is not None and bool(g.abs().sum() > 0) for g in core_grads) == trains
    assert RecurrentPPO("MlpGruPolicy", vec_env(), policy_kwargs={"shared_core": True}).policy.critic_trains_core


@pytest.mark.parametrize("bad_kwargs,message", [
    ({"hidden_size": 8, "lstm_hidden_size": 16}, "both"),
    ({"lstm_kwargs": {"bidirectional": True}}, "bidirectional"),
    ({"core_type": "transformer"}, "unknown core"),
    ({"core": "gru", "core_type": "lstm"}, "core_type"),
])
def test_bad_policy_kwargs_fail_clearly(bad_kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecurrentPPO("MlpGruPolicy", vec_env(), policy_kwargs=bad_kwargs, **SMALL)


@pytest.mark.parametrize("bad_kwargs,message", [
    ({"hidden_reset": "sometimes"}, "hidden_reset"),
    ({"max_seq_len": 0}, "max_seq_len"),
    ({"batch_size": 1}, "batch_size"),
])
def test_bad_algorithm_arguments_fail_clearly(bad_kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecurrentPPO("MlpGruPolicy", vec_env(), **{**SMALL, **bad_kwargs})


def test_policy_names_match_sb3_contrib_and_add_gru_and_rnn() -> None:
    assert {"MlpLstmPolicy", "CnnLstmPolicy", "MultiInputLstmPolicy"} <= set(ContribRecurrentPPO.policy_aliases)
    assert set(ContribRecurrentPPO.policy_aliases) <= set(POLICY_ALIASES)
    assert {"MlpGruPolicy", "CnnGruPolicy", "MultiInputGruPolicy", "MlpRnnPolicy"} <= set(POLICY_ALIASES)
    assert {"MlpMinGruPolicy", "CnnLruPolicy", "MlpPolicy", "MultiInputPolicy"} <= set(POLICY_ALIASES)


@pytest.mark.parametrize("core", core_names())
@pytest.mark.parametrize("shared", [False, True])
def test_predict_step_by_step_equals_sequence_forward(core: str, shared: bool) -> None:
    """predict() one step at a time, with resets, computes what one core call over the sequence computes."""
    model = RecurrentPPO("MlpGruPolicy", vec_env(action_space=ACTION_SPACES["box"]), seed=0, **SMALL,
                         policy_kwargs={"core": core, "hidden_size": 8, "n_layers": 2, "shared_core": shared})
    policy = model.policy
    rng = np.random.default_rng(0)
    seq_len, n_envs = 12, 3
    obs = rng.uniform(-1, 1, (seq_len, n_envs, 4)).astype(np.float32)
    starts = rng.random((seq_len, n_envs)) < 0.25
    starts[0] = True

    state, stepped = None, []
    for t in range(seq_len):
        action, state = model.predict(obs[t], state=state, episode_start=starts[t], deterministic=True)
        stepped.append(action)

    with th.no_grad():
        features = policy.extract_features(th.as_tensor(obs).view(seq_len * n_envs, -1))
        core_out, final_actor_state = policy.actor_core(
            features.view(seq_len, n_envs, -1), None, th.as_tensor(starts, dtype=th.float32)
        )
        mean_actions = policy.action_net(policy.mlp_extractor.forward_actor(core_out.view(seq_len * n_envs, -1)))
    expected = np.clip(mean_actions.numpy().reshape(seq_len, n_envs, -1), -1, 1)
    np.testing.assert_allclose(np.stack(stepped), expected, atol=1e-5)
    np.testing.assert_allclose(state[..., : policy.actor_core.state_size], final_actor_state.numpy(), atol=1e-5)


@pytest.mark.parametrize("policy", [f"Mlp{core_label(resolve_core(name))}Policy" for name in core_names()])
def test_save_load_reproduces_deterministic_actions(policy: str, tmp_path) -> None:
    env = vec_env()
    model = RecurrentPPO(policy, env, seed=0, policy_kwargs={"hidden_size": 8}, **SMALL)
    model.learn(64)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", env=env)
    assert loaded.hidden_reset == model.hidden_reset and loaded.max_seq_len == model.max_seq_len

    obs = env.reset()
    state_a = state_b = None
    starts = np.ones(env.num_envs, dtype=bool)
    for _ in range(10):
        action_a, state_a = model.predict(obs, state_a, starts, deterministic=True)
        action_b, state_b = loaded.predict(obs, state_b, starts, deterministic=True)
        np.testing.assert_array_equal(action_a, action_b)
        np.testing.assert_array_equal(state_a, state_b)
        obs, _, dones, _ = env.step(action_a)
        starts = dones


@pytest.mark.parametrize("obs_space", sorted(OBSERVATION_SPACES))
def test_observation_spaces_train_and_predict(obs_space: str) -> None:
    space = OBSERVATION_SPACES[obs_space]
    policy = {"dict": "MultiInputGruPolicy", "image": "CnnGruPolicy"}.get(obs_space, "MlpGruPolicy")
    env = vec_env(observation_space=space)
    model = RecurrentPPO(policy, env, seed=0, policy_kwargs={"hidden_size": 8}, **SMALL)
    model.learn(32)
    obs = model.get_env().reset()
    actions, state = model.predict(obs)
    assert actions.shape == (2,)
    assert state.shape == (1, 2, 16)
    if obs_space == "tuple":
        assert isinstance(model.observation_space, spaces.Box), "Tuple observations are flattened, not refused"


@pytest.mark.parametrize("action_space", sorted(ACTION_SPACES))
def test_action_spaces_predict_valid_actions(action_space: str) -> None:
    space = ACTION_SPACES[action_space]
    model = RecurrentPPO("MlpGruPolicy", vec_env(action_space=space), seed=0, policy_kwargs={"hidden_size": 8},
                         **SMALL)
    model.learn(32)
    single_obs = OBSERVATION_SPACES["box"].sample()
    action, state = model.predict(single_obs)
    assert space.contains(action.astype(space.dtype)), action
    assert state.shape == (1, 1, 16)


def test_vecnormalize_evaluate_policy_and_callbacks_work(tmp_path) -> None:
    class CountSteps(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def _on_step(self) -> bool:
            self.calls += 1
            return True

    env = VecNormalize(vec_env())
    model = RecurrentPPO("MlpGruPolicy", env, seed=0, policy_kwargs={"hidden_size": 8}, **SMALL)
    counter = CountSteps()
    model.learn(64, callback=[counter, CheckpointCallback(32, str(tmp_path), name_prefix="ckpt")])
    assert counter.calls == 64 // env.num_envs
    assert list(tmp_path.glob("ckpt_*_steps.zip"))
    mean, std = evaluate_policy(model, env, n_eval_episodes=4)
    assert np.isfinite(mean) and np.isfinite(std)


def test_learn_continues_timesteps_and_set_env_resets_memory() -> None:
    model = RecurrentPPO("MlpGruPolicy", vec_env(), seed=0, policy_kwargs={"hidden_size": 8}, **SMALL)
    model.learn(64)
    model.learn(64, reset_num_timesteps=False)
    assert model.num_timesteps == 128
    model.set_env(vec_env(seed=5))
    model.learn(32, reset_num_timesteps=False)
    assert model.num_timesteps == 160


def test_callback_can_stop_training() -> None:
    class StopAtOnce(BaseCallback):
        def _on_step(self) -> bool:
            return False

    model = RecurrentPPO("MlpGruPolicy", vec_env(), seed=0, policy_kwargs={"hidden_size": 8}, **SMALL)
    model.learn(1000, callback=StopAtOnce())
    assert model.num_timesteps == 2


def test_same_seed_gives_same_training() -> None:
    def train() -> list[np.ndarray]:
        model = RecurrentPPO("MlpGruPolicy", vec_env(seed=3), seed=7, policy_kwargs={"hidden_size": 8}, **SMALL)
        model.learn(64)
        return [p.detach().clone().numpy() for p in model.policy.parameters()]

    for first, second in zip(train(), train(), strict=True):
        np.testing.assert_array_equal(first, second)
