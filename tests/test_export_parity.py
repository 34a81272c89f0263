"""Exported files act like ``predict``: same actions, same state (1e-5), over whole episodes with resets.

Each case builds an untrained policy (parity needs no good policy, only real episodes), exports it to ONNX and
TorchScript, then steps the env with ``predict``'s actions while onnxruntime and ``torch.jit.load`` each carry their
own state from the env's raw observations (before VecNormalize, channel-last images). VecNormalize statistics are
set far from identity, with clipping that bites, so baking them in is tested too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from rlgru import RecurrentPPO
from rlgru.cores import register_core, registry
from rlgru.cores.gru import GRUCore
from rlgru.cores.registry import BUILTIN_CORES
from rlgru.export import ExportError, export_policy
from tests.helpers import ACTION_SPACES as HELPER_ACTION_SPACES
from tests.helpers import RandomEpisodeEnv

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
TOLERANCE = 1e-5
#: every action space SB3 supports; the Box is narrow, so clipping to it bites
ACTION_SPACES = {**HELPER_ACTION_SPACES, "box": spaces.Box(-0.1, 0.1, (2,), np.float32)}
N_ENVS = 3  # the files are traced at batch 2: a different batch size here shows the batch axis is free
EPISODES_PER_ENV = 2


def _example_core() -> type:
    """README's own-core example (``examples/user_core.py``), loaded from its file as a user's module would be."""
    path = Path(__file__).resolve().parents[1] / "examples" / "user_core.py"
    spec = importlib.util.spec_from_file_location("export_test_user_core", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.LeakyCore


LeakyCore = _example_core()

#: every core, each with a different actor/critic layout
CORE_CASES: dict[str, dict[str, Any]] = {
    "gru": {"n_layers": 2, "core_kwargs": {"dropout": 0.3}},  # dropout: off in the file, as in predict
    "lstm": {"shared_core": True, "n_layers": 2},
    "rnn": {"critic_core": False, "core_kwargs": {"nonlinearity": "relu"}},
    "mingru": {"n_layers": 2, "share_features_extractor": False},
    "lru": {"n_layers": 2},
    "memoryless": {"n_layers": 2},
}

DICT_SPACE = spaces.Dict(
    {
        "vec": spaces.Box(-2.0, 2.0, (3,), np.float32),
        "count": spaces.Discrete(5),
        "grid": spaces.MultiDiscrete([3, 4]),
        "flags": spaces.MultiBinary(2),
        "camera": spaces.Box(0, 255, (36, 36, 1), np.uint8),
    }
)


# --------------------------------------------------------------------------------------------------- helpers
def skewed_normalization(venv: VecEnv, keys: list[str] | None = None, seed: int = 0) -> VecNormalize:
    """VecNormalize with statistics far from (0, 1) and a clip that some observations hit."""
    norm = VecNormalize(venv, norm_reward=False, clip_obs=1.5, norm_obs_keys=keys)
    rng = np.random.default_rng(seed)
    for rms in norm.obs_rms.values() if isinstance(norm.obs_rms, dict) else [norm.obs_rms]:
        rms.mean = rng.normal(0.3, 0.5, size=rms.mean.shape)
        rms.var = rng.uniform(0.04, 0.6, size=rms.var.shape)
    norm.training = False
    return norm


def random_env(observation_space: spaces.Space, action_space: spaces.Space, n_envs: int = N_ENVS) -> DummyVecEnv:
    def make(index: int) -> Any:
        return lambda: RandomEpisodeEnv(observation_space, action_space, min_len=2, max_len=6)

    venv = DummyVecEnv([make(i) for i in range(n_envs)])
    venv.seed(7)
    return venv


def tiny_model(policy: str, env: VecEnv, **policy_kwargs: Any) -> RecurrentPPO:
    # no orthogonal init: its 0.01-gain action layer would keep Box actions far from narrow bounds
    kwargs = {"hidden_size": 12, "net_arch": [16], "ortho_init": False, **policy_kwargs}
    return RecurrentPPO(policy, env, n_steps=8, batch_size=8, policy_kwargs=kwargs, seed=0, device="cpu")


class OnnxFile:
    def __init__(self, path: Path) -> None:
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.inputs = [(i.name, i.type) for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.outputs, feed)


class TorchScriptFile:
    def __init__(self, path: Path, input_names: list[str]) -> None:
        self.module = torch.jit.load(str(path))
        self.input_names = input_names

    def __call__(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in self.module(*(torch.from_numpy(feed[name]) for name in self.input_names))]


def obs_feed(obs: np.ndarray | dict[str, np.ndarray], session: OnnxFile) -> dict[str, np.ndarray]:
    """The raw observations under the graph's input names, in the dtypes onnxruntime reports."""
    dtypes = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(uint8)": np.uint8,
        "tensor(int64)": np.int64,
        "tensor(int8)": np.int8,
    }
    parts = obs if isinstance(obs, dict) else {"": obs}
    return {
        name: np.ascontiguousarray(parts["" if name == "obs" else name[len("obs.") :]], dtype=dtypes[kind])
        for name, kind in session.inputs
        if name.startswith("obs")
    }


def assert_files_match_predict(
    model: RecurrentPPO, venv: VecEnv, directory: Path, value: bool = False, max_steps: int = 200
) -> int:
    """Export ``model`` in both formats, then compare them with ``predict`` over whole episodes; returns steps."""
    onnx = OnnxFile(export_policy(model, directory / "policy.onnx", "onnx", value=value).path)
    input_names = [name for name, _ in onnx.inputs]
    script = TorchScriptFile(
        export_policy(model, directory / "policy.pt", "torchscript", value=value).path, input_names
    )
    policy = model.policy
    obs = venv.reset()
    n_envs = venv.num_envs
    starts = np.ones(n_envs, dtype=bool)
    predict_state = None
    file_states = {"onnx": None, "torchscript": None}
    ended = np.zeros(n_envs, dtype=int)
    steps, clipped, at_bounds = 0, False, False
    while ended.min() < EPISODES_PER_ENV:
        assert steps < max_steps, f"episodes too long: only {ended} ended in {max_steps} steps"
        raw = venv.get_original_obs() if isinstance(venv, VecNormalize) else obs
        if isinstance(venv, VecNormalize):
            normalized = [obs[key] for key in venv.norm_obs_keys] if isinstance(obs, dict) else [obs]
            clipped |= any(np.any(np.abs(part) >= venv.clip_obs) for part in normalized)
        state_before = policy.initial_state(n_envs) if predict_state is None else torch.as_tensor(predict_state)
        action, predict_state = model.predict(obs, predict_state, starts, deterministic=True)
        for name, run in (("onnx", onnx), ("torchscript", script)):
            state = file_states[name]
            if state is None:
                state = np.zeros_like(predict_state)
            feed = {**obs_feed(raw, onnx), "state": state, "episode_start": starts.astype(np.float32)}
            outputs = run(feed)
            file_action, file_states[name] = outputs[0], outputs[1]
            where = f"{name}, step {steps}"
            assert file_action.shape == np.shape(action), where
            if isinstance(policy.action_space, spaces.Box):
                np.testing.assert_allclose(file_action, action, atol=TOLERANCE, rtol=0, err_msg=where)
                at_bounds |= bool(np.any(np.abs(action) >= policy.action_space.high))
            else:
                np.testing.assert_array_equal(file_action, action, err_msg=where)
            np.testing.assert_allclose(file_states[name], predict_state, atol=TOLERANCE, rtol=0, err_msg=where)
            if value:
                obs_tensor, _ = policy.obs_to_tensor(obs)
                with torch.no_grad():
                    expected = policy.predict_values(obs_tensor, state_before, torch.as_tensor(starts)).numpy()
                np.testing.assert_allclose(outputs[2], expected[:, 0], atol=TOLERANCE, rtol=0, err_msg=where)
        obs, _, dones, _ = venv.step(action)
        starts = np.asarray(dones, dtype=bool)
        ended += starts
        steps += 1
    assert clipped or not isinstance(venv, VecNormalize), "the statistics must make VecNormalize clip sometimes"
    assert at_bounds or policy.action_space != ACTION_SPACES["box"], "the narrow Box must clip some actions"
    return steps


# ----------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("core", list(BUILTIN_CORES))
def test_every_core_matches_predict_with_vecnormalize_baked_in(core: str, tmp_path: Path) -> None:
    venv = skewed_normalization(random_env(spaces.Box(-1.0, 1.0, (4,), np.float32), ACTION_SPACES["discrete"]))
    model = tiny_model("MlpPolicy", venv, core=core, **CORE_CASES[core])
    assert_files_match_predict(model, venv, tmp_path, value=True)


@pytest.mark.parametrize("action", list(ACTION_SPACES))
def test_dict_observations_match_predict_for_every_action_space(action: str, tmp_path: Path) -> None:
    """Box (normalised), Discrete, MultiDiscrete, MultiBinary and a channel-last image in one Dict."""
    venv = skewed_normalization(random_env(DICT_SPACE, ACTION_SPACES[action]), keys=["vec"])
    model = tiny_model("MultiInputPolicy", venv, core="gru", features_extractor_kwargs={"cnn_output_dim": 8})
    assert_files_match_predict(model, venv, tmp_path)


def test_image_task_matches_predict_with_channels_first_and_scaling_baked_in(tmp_path: Path) -> None:
    """KeyDoor (40x40x3 uint8, channel-last): SB3 transposes and divides by 255; the files take the env's frames."""
    venv = make_vec_env("rlgru/KeyDoor-Easy-v0", n_envs=2, seed=3)
    model = tiny_model("CnnPolicy", venv, core="lstm", features_extractor_kwargs={"features_dim": 16})
    assert type(model.get_env()).__name__ == "VecTransposeImage"
    assert_files_match_predict(model, venv, tmp_path)


def test_box_actions_of_a_control_task_match_predict_with_gsde(tmp_path: Path) -> None:
    """PendulumNoVel: Box actions clipped to the space; gSDE's deterministic action is its mean."""
    venv = make_vec_env("rlgru/PendulumNoVel-Easy-v1", n_envs=2, seed=1, env_kwargs={"max_episode_steps": 15})
    model = tiny_model("MlpPolicy", venv, core="mingru", log_std_init=-1.0)
    assert_files_match_predict(model, venv, tmp_path / "gaussian")
    gsde = RecurrentPPO(
        "MlpPolicy",
        venv,
        use_sde=True,
        n_steps=8,
        batch_size=8,
        seed=0,
        device="cpu",
        policy_kwargs={"hidden_size": 12, "net_arch": [16], "squash_output": True},
    )
    assert_files_match_predict(gsde, venv, tmp_path / "gsde")


def test_sampling_gsde_is_refused_in_one_line(tmp_path: Path) -> None:
    venv = make_vec_env("rlgru/PendulumNoVel-Easy-v1", n_envs=1, seed=1)
    model = RecurrentPPO(
        "MlpPolicy", venv, use_sde=True, n_steps=8, batch_size=8, device="cpu", policy_kwargs={"hidden_size": 8}
    )
    with pytest.raises(ExportError, match="gSDE") as refused:
        export_policy(model, tmp_path / "gsde.onnx", sample=True)
    assert "\n" not in str(refused.value)


def test_a_users_registered_core_exports_through_its_own_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_user_cores", {})
    register_core("leaky", LeakyCore)
    venv = skewed_normalization(random_env(spaces.Box(-1.0, 1.0, (4,), np.float32), ACTION_SPACES["box"]))
    model = tiny_model("MlpPolicy", venv, core="leaky", core_kwargs={"leak": 0.7})
    assert_files_match_predict(model, venv, tmp_path)


class KernelGRUCore(GRUCore):
    """A user's subclass of the GRU core: its forward runs the fused kernel unless export switches kernels off."""


def test_a_kernel_core_of_a_user_exports_with_kernels_switched_off(tmp_path: Path) -> None:
    venv = random_env(spaces.Box(-1.0, 1.0, (4,), np.float32), ACTION_SPACES["multidiscrete"])
    model = tiny_model("MlpPolicy", venv, core=KernelGRUCore)
    assert_files_match_predict(model, venv, tmp_path)


class _Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return 2 * x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return 2 * grad


class PythonOpCore(LeakyCore):
    def recur(self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None) -> Any:
        return super().recur(_Double.apply(x), state, keep)


class BatchBranchingCore(LeakyCore):
    """Takes a shortcut for two envs, which a trace at batch size 2 would freeze."""

    def recur(self, x: torch.Tensor, state: torch.Tensor, keep: torch.Tensor | None) -> Any:
        return super().recur(-x if x.shape[1] == 2 else x, state, keep)


@pytest.mark.parametrize(("core", "reason"), [(PythonOpCore, "autograd.Function"), (BatchBranchingCore, "sizes")])
def test_untraceable_cores_are_refused_in_one_line(core: type, reason: str, tmp_path: Path) -> None:
    venv = random_env(spaces.Box(-1.0, 1.0, (4,), np.float32), ACTION_SPACES["discrete"], n_envs=1)
    model = tiny_model("MlpPolicy", venv, core=core)
    for format in ("onnx", "torchscript"):
        with pytest.raises(ExportError, match=reason) as refused:
            export_policy(model, tmp_path / f"policy.{format}", format)
        assert "\n" not in str(refused.value)


# ---------------------------------------------------------------------------------------------- sampling
def _one_situation(model: RecurrentPPO, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """One observation and a non-zero state, repeated ``batch`` times."""
    obs = np.tile(np.linspace(-0.8, 0.8, 4, dtype=np.float32), (batch, 1))
    state = np.tile(np.linspace(-0.5, 0.5, model.policy.state_size, dtype=np.float32), (1, batch, 1))
    return obs, state


#: wide Box bounds, so the sampled Gaussian is not clipped
SAMPLED_SPACES = {
    "discrete": ACTION_SPACES["discrete"],
    "multibinary": ACTION_SPACES["multibinary"],
    "box": spaces.Box(-5.0, 5.0, (2,), np.float32),
}


@pytest.mark.parametrize("action", list(SAMPLED_SPACES))
def test_sampled_actions_follow_the_policy_distribution(action: str, tmp_path: Path) -> None:
    venv = random_env(spaces.Box(-1.0, 1.0, (4,), np.float32), SAMPLED_SPACES[action], n_envs=1)
    model = tiny_model("MlpPolicy", venv, core="gru", log_std_init=-0.5)
    with torch.no_grad():  # an untrained policy is nearly uniform; sharpen it, so a wrong temperature would show
        model.policy.action_net.weight.mul_(6.0)
    batch = 4000
    obs, state = _one_situation(model, batch)
    with torch.no_grad():
        distribution, _ = model.policy.get_distribution(torch.as_tensor(obs[:1]), torch.as_tensor(state[:, :1]))
    onnx = OnnxFile(export_policy(model, tmp_path / "s.onnx", sample=True).path)
    script = TorchScriptFile(
        export_policy(model, tmp_path / "s.pt", "torchscript", sample=True).path, [name for name, _ in onnx.inputs]
    )
    feed = {"obs": obs, "state": state, "episode_start": np.zeros(batch, np.float32)}
    for run in (onnx, script):
        actions = run(feed)[0]
        assert all(model.action_space.contains(a) for a in actions[:50])
        if action == "box":
            mean, std = distribution.distribution.mean[0].numpy(), distribution.distribution.stddev[0].numpy()
            assert np.all(np.abs(mean) + 4 * std < 5.0), "the bounds must not clip the distribution"
            np.testing.assert_allclose(actions.mean(0), mean, atol=5 * std.max() / np.sqrt(batch))
            np.testing.assert_allclose(actions.std(0), std, rtol=0.1)
        else:
            if action == "discrete":
                probs = distribution.distribution.probs[0].numpy()
                frequencies = np.bincount(actions, minlength=probs.size) / batch
            else:
                probs = distribution.distribution.probs[0].numpy()
                frequencies = actions.mean(0)
            bound = 5 * np.sqrt(probs * (1 - probs) / batch) + 1e-3
            assert np.all(np.abs(frequencies - probs) <= bound), (frequencies, probs)
        assert len({tuple(np.atleast_1d(a)) for a in actions[:200]}) > 1, "draws must differ"
