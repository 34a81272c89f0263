"""Turn the ``algorithm`` and ``policy`` sections into a ``RecurrentPPO``, or load one from a zip.

Configs name things as strings (``"gru"``, ``"relu"``, ``"lin_1e-3"``); this module is the one place that maps
them onto the library's classes and callables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.utils import LinearSchedule, check_for_correct_spaces
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from rlgru import RecurrentPPO
from rlgru.algorithm.extractor_choice import ExtractorChoice, choose_extractor, validate_extractor_settings
from rlgru.harness.config import LINEAR_PREFIX, NetArchConfig, PolicyConfig, RunConfig
from rlgru.harness.errors import HarnessError, UntrustedFileError
from rlgru.runtime.safe_load import UntrustedPickleError, load_algorithm

ACTIVATION_CLASSES: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def to_schedule(value: float | str) -> float | LinearSchedule:
    """A constant, or ``lin_<x>``: linear decay from ``x`` at the start of training to 0 at the end."""
    if isinstance(value, str) and value.startswith(LINEAR_PREFIX):
        return LinearSchedule(float(value[len(LINEAR_PREFIX) :]), 0.0, 1.0)
    return float(value)


def extractor_choice(policy: PolicyConfig, observation_space: spaces.Space) -> ExtractorChoice:
    """The features extractor ``policy.extractor`` gives this env's observations, its settings checked; a
    ``HarnessError`` at ``policy.extractor`` (naming the space) when it does not read them."""
    try:
        choice = choose_extractor(policy.extractor, observation_space)
    except ValueError as error:  # ExtractorMismatch, or a module:Class that no longer imports
        raise HarnessError(str(error), where="policy.extractor") from None
    try:  # (with auto, the class is only known now)
        validate_extractor_settings(choice.extractor_class, policy.features_extractor_kwargs)
    except ValueError as error:
        raise HarnessError(str(error), where="policy.features_extractor_kwargs") from None
    return choice


def policy_name(policy: PolicyConfig, observation_space: spaces.Space, core_label: str = "") -> str:
    """``MlpPolicy``, ``CnnPolicy`` or ``MultiInputPolicy`` (``extractor_choice`` says which extractor it gets)."""
    # rlgru takes the core from policy_kwargs (built-in or a user's); sb3-contrib's names carry it ("Lstm")
    return f"{extractor_choice(policy, observation_space).policy_prefix}{core_label}Policy"


def policy_kwargs(policy: PolicyConfig, choice: ExtractorChoice | None = None) -> dict[str, Any]:
    """The policy's keyword arguments; with ``choice``, its extractor too where the policy alias lacks it."""
    kwargs: dict[str, Any] = {
        "core": policy.core,
        "core_kwargs": dict(policy.core_kwargs),
        "hidden_size": policy.hidden_size,
        "n_layers": policy.n_layers,
        "shared_core": policy.shared_core,
        "critic_core": policy.critic_core,
        "critic_trains_core": policy.critic_trains_core,
        "activation_fn": ACTIVATION_CLASSES[policy.activation],
        "ortho_init": policy.ortho_init,
        "log_std_init": policy.log_std_init,
    }
    if isinstance(policy.net_arch, NetArchConfig):
        kwargs["net_arch"] = {"pi": list(policy.net_arch.pi), "vf": list(policy.net_arch.vf)}
    elif policy.net_arch is not None:
        kwargs["net_arch"] = list(policy.net_arch)
    if policy.features_extractor_kwargs:
        kwargs["features_extractor_kwargs"] = dict(policy.features_extractor_kwargs)
    if choice is not None and not choice.builtin_default:
        kwargs["features_extractor_class"] = choice.extractor_class
    if choice is not None and getattr(choice.extractor_class, "takes_raw_images", False):
        kwargs["normalize_images"] = False  # it encodes the values itself (GridCNN); sb3-contrib's policy needs telling
    return kwargs


def contrib_policy_kwargs(policy: PolicyConfig, choice: ExtractorChoice | None = None) -> dict[str, Any]:
    """The same network in sb3-contrib's LSTM vocabulary (its critic core is ``enable_critic_lstm``)."""
    kwargs = policy_kwargs(policy, choice)
    del kwargs["core"]  # always an LSTM there
    kwargs["lstm_kwargs"] = kwargs.pop("core_kwargs")
    kwargs["lstm_hidden_size"] = kwargs.pop("hidden_size")
    kwargs["n_lstm_layers"] = kwargs.pop("n_layers")
    kwargs["shared_lstm"] = kwargs.pop("shared_core")
    kwargs["enable_critic_lstm"] = kwargs.pop("critic_core") and not policy.shared_core
    del kwargs["critic_trains_core"]  # sb3-contrib's shared LSTM is never trained by the value loss
    return kwargs


def build_agent(config: RunConfig, env: VecEnv, tensorboard_log: Path | None, where: str | Path) -> RecurrentPPO:
    """A fresh agent for ``env``; constructor errors (bad combinations of values) name the config file."""
    algorithm = config.algorithm
    contrib = algorithm.implementation == "sb3-contrib"
    extra: dict[str, Any] = {}
    core_label = ""
    try:
        choice = extractor_choice(config.policy, env.observation_space)
    except HarnessError as error:
        raise error.within(where) from None
    if contrib:
        from sb3_contrib import RecurrentPPO as agent_class

        kwargs = contrib_policy_kwargs(config.policy, choice)
        core_label = "Lstm"
    else:
        agent_class = RecurrentPPO
        kwargs = policy_kwargs(config.policy, choice)
        extra = {"hidden_reset": config.policy.hidden_reset, "max_seq_len": algorithm.max_seq_len,
                 "fast_paths": algorithm.fast_paths}
    try:
        return agent_class(
            f"{choice.policy_prefix}{core_label}Policy",
            env,
            learning_rate=to_schedule(algorithm.learning_rate),
            n_steps=algorithm.n_steps,
            batch_size=algorithm.batch_size,
            n_epochs=algorithm.n_epochs,
            gamma=algorithm.gamma,
            gae_lambda=algorithm.gae_lambda,
            clip_range=to_schedule(algorithm.clip_range),
            clip_range_vf=None if algorithm.clip_range_vf is None else to_schedule(algorithm.clip_range_vf),
            normalize_advantage=algorithm.normalize_advantage,
            ent_coef=algorithm.ent_coef,
            vf_coef=algorithm.vf_coef,
            max_grad_norm=algorithm.max_grad_norm,
            use_sde=algorithm.use_sde,
            sde_sample_freq=algorithm.sde_sample_freq,
            target_kl=algorithm.target_kl,
            tensorboard_log=str(tensorboard_log) if tensorboard_log is not None else None,
            policy_kwargs=kwargs,
            verbose=config.training.verbose,
            seed=config.seed,
            device=config.training.device,
            **extra,
        )
    except (ValueError, TypeError, AssertionError, RuntimeError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HarnessError(f"cannot build the agent from this config: {detail}", where=where) from None


def check_model_fits(model: Any, env: VecEnv, env_id: str, where: str | Path) -> None:
    """Refuse an env whose spaces are not the model's, compared as the model sees the env: SB3 turns channel-last
    images channel-first before a model reads them (``predict`` does the same), so a 7x7x3 env fits a 3x7x7 model."""
    seen = RecurrentPPO._wrap_env(env, verbose=0, monitor_wrapper=False)  # adds VecTransposeImage where SB3 would
    try:
        check_for_correct_spaces(seen, model.observation_space, model.action_space)
    except ValueError as error:
        raise HarnessError(f"the model does not fit {env_id!r}: {error}", where=where) from None


def load_agent(
    path: Path,
    env: VecEnv | None = None,
    device: str = "cpu",
    implementation: str = "rlgru",
    *,
    trust_pickle: bool = False,
    **overrides: Any,
) -> RecurrentPPO:
    """An agent saved by ``model.save``; a missing, unreadable or untrusted file is a ``HarnessError`` naming it.

    Pickled attributes are built by ``rlgru.runtime.safe_load`` unless ``trust_pickle``: a crafted zip cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise HarnessError("no such model file", where=path)
    agent_class: Any = RecurrentPPO
    if implementation == "sb3-contrib":
        from sb3_contrib import RecurrentPPO as agent_class
    try:
        return load_algorithm(agent_class, str(path), trust_pickle=trust_pickle, env=env, device=device, **overrides)
    except UntrustedPickleError as error:
        raise UntrustedFileError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - a corrupt, truncated or foreign zip is bad input, not a bug
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HarnessError(f"not a readable rlgru model ({type(error).__name__}: {detail})", where=path) from None


__all__ = [
    "ACTIVATION_CLASSES",
    "build_agent",
    "check_model_fits",
    "contrib_policy_kwargs",
    "extractor_choice",
    "load_agent",
    "policy_kwargs",
    "policy_name",
    "to_schedule",
]
