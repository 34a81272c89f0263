"""Recurrent actor-critic policy: SB3 features extractor -> memory core(s) -> SB3 MLP heads.

The recurrent state is one tensor ``[n_layers, n_envs, state_size]``: the actor core's state, followed by the
critic core's when the critic has its own core. Keeping it plain data lets the buffer store it per step and
lets ``predict`` hand it to users as a single array.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    MlpExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from rlgru.algorithm import action_heads
from rlgru.cores import MemoryCore, core_names, resolve_core
from rlgru.cores._kernel_build import NO_FAST_PATHS_ENV
from rlgru.cores.grid import core_input, per_sample, to_grid
from rlgru.cores.registry import CoreSpec, core_label, core_spec, validate_core_settings
from rlgru.env_plumbing.wrappers import flatten_observation
from rlgru.fast import act as fused_act
from rlgru.fast.plan import plan_fast_paths

CORE_DEFAULTS: dict[str, Any] = {"hidden_size": 256, "n_layers": 1, "shared_core": False, "critic_core": True,
                                 "core_kwargs": None}

#: sb3-contrib's RecurrentActorCriticPolicy keyword -> rlgru keyword, so its code runs after an import change.
LEGACY_ALIASES = {
    "lstm_hidden_size": "hidden_size",
    "n_lstm_layers": "n_layers",
    "shared_lstm": "shared_core",
    "enable_critic_lstm": "critic_core",
    "lstm_kwargs": "core_kwargs",
}


class IncompatiblePolicyOptions(ValueError, AssertionError):
    """Options that contradict each other. Also an ``AssertionError``, which is what sb3-contrib raises for the
    same combinations, so code (and tests) written against it keep working after the import change."""


def resolve_legacy_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map sb3-contrib's LSTM keywords onto rlgru's; refuse conflicting ones clearly."""
    if kwargs.get("shared_lstm") and kwargs.get("enable_critic_lstm", True):
        # sb3-contrib's enable_critic_lstm defaults to True, so it refuses shared_lstm=True on its own as well.
        raise IncompatiblePolicyOptions(
            "shared_lstm=True needs enable_critic_lstm=False: a shared LSTM leaves no LSTM of the critic's own"
        )
    resolved = dict(kwargs)
    for old, new in LEGACY_ALIASES.items():
        if old in resolved:
            value = resolved.pop(old)
            if new in resolved and resolved[new] != value:
                raise ValueError(f"policy_kwargs gives both {old}={value!r} and {new}={resolved[new]!r}")
            resolved[new] = value
    return resolved


class RecurrentActorCriticPolicy(ActorCriticPolicy):
    """Actor-critic with a memory core between the features extractor and the MLP heads.

    :param hidden_size: width of each core (sb3-contrib's ``lstm_hidden_size``).
    :param n_layers: stacked recurrent layers per core.
    :param shared_core: one core for actor and critic (see ``critic_trains_core``); otherwise each has its own
        (sb3-contrib's ``enable_critic_lstm=True``).
    :param critic_core: with ``shared_core=False``, ``False`` gives the critic a linear layer instead of a core
        (sb3-contrib's ``enable_critic_lstm=False``); ignored with ``shared_core=True``.
    :param critic_trains_core: with ``shared_core=True``, whether the value loss also trains the shared core.
        Default True, except when sharing is asked for with sb3-contrib's ``shared_lstm=True``: its critic reads
        the shared LSTM's output without training it, and the alias keeps that meaning.
    :param core: the memory core: a registered name (``"gru"``, ``"lstm"``, ``"rnn"``, ``"mingru"``, ``"lru"``, the
        baseline ``"memoryless"``, or one given to ``rlgru.cores.register_core``), a ``"module:Class"`` path, or a
        ``MemoryCore`` subclass. The named policy classes (``MlpGruPolicy``, ...) fix it; ``"MlpPolicy"`` and
        friends default to ``"gru"``.
    :param core_kwargs: the core's own settings (its keyword-only constructor arguments, e.g. ``dropout``);
        sb3-contrib's ``lstm_kwargs`` is accepted as an alias.
    :param nested_observation_space: the env's own space when ``observation_space`` is its flattening (a Tuple, or
        a Tuple or Dict nested in one: ``rlgru.env_plumbing.wrappers``); ``predict`` then takes the env's own
        observations too. ``RecurrentPPO`` passes it.

    Other arguments are SB3's ``ActorCriticPolicy`` ones.
    """

    #: whether fast paths may run (``RecurrentPPO(fast_paths=...)`` sets it through ``set_fast_paths``)
    fast_paths: bool = True

    default_core: CoreSpec = "gru"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        hidden_size: int = 256,
        n_layers: int = 1,
        shared_core: bool = False,
        critic_core: bool = True,
        critic_trains_core: bool | None = None,
        core: CoreSpec | None = None,
        core_kwargs: dict[str, Any] | None = None,
        core_type: str | None = None,
        nested_observation_space: spaces.Space | None = None,
        **legacy_kwargs: Any,
    ) -> None:
        if core is not None and core_type is not None and core != core_type:
            raise ValueError(f"policy_kwargs gives both core={core!r} and core_type={core_type!r} (its old name)")
        chosen = {"hidden_size": hidden_size, "n_layers": n_layers, "shared_core": shared_core,
                  "critic_core": critic_core, "core_kwargs": core_kwargs}
        for name, value in resolve_legacy_kwargs(legacy_kwargs).items():
            if name not in chosen:
                raise TypeError(f"unexpected policy keyword: {name!r}")
            if chosen[name] != CORE_DEFAULTS[name] and chosen[name] != value:
                raise ValueError(f"policy_kwargs gives both {name}={chosen[name]!r} and its sb3-contrib alias "
                                 f"({value!r})")
            chosen[name] = value
        hidden_size, n_layers, shared_core, critic_core, core_kwargs = chosen.values()
        if shared_core and not share_features_extractor:
            raise IncompatiblePolicyOptions(
                "shared_core=True needs share_features_extractor=True: one core reads one features vector, so a "
                "separate critic extractor would never be used"
            )
        if critic_trains_core is None:
            critic_trains_core = not legacy_kwargs.get("shared_lstm", False)
        if optimizer_kwargs is None and optimizer_class in (th.optim.Adam, th.optim.AdamW):
            # SB3's Adam epsilon, with the fused kernel: a third of the single-tensor Adam's time on CPU.
            optimizer_kwargs = {"eps": 1e-5, "fused": True}
        if getattr(features_extractor_class, "takes_raw_images", False):
            normalize_images = False  # the extractor encodes raw values itself (GridCNN: symbols are not intensities)
        core_class = resolve_core(core or core_type or self.default_core)
        core_kwargs = validate_core_settings(core_class, core_kwargs)
        # Read by _build_mlp_extractor(), which the parent constructor calls.
        self.hidden_size = int(hidden_size)
        self.n_layers = int(n_layers)
        self.shared_core = bool(shared_core)
        self.critic_core_enabled = bool(critic_core)
        self.critic_trains_core = bool(critic_trains_core)
        self.core_class = core_class
        self.core_kwargs = core_kwargs
        self.nested_observation_space = nested_observation_space
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            ortho_init,
            use_sde,
            log_std_init,
            full_std,
            use_expln,
            squash_output,
            features_extractor_class,
            features_extractor_kwargs,
            share_features_extractor,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )
        self._build_cores()
        # rollouts and updates compute the action distribution directly where it has a plain form
        # (a subclass with its own distribution code keeps it)
        own_dist = type(self)._get_action_dist_from_latent is not ActorCriticPolicy._get_action_dist_from_latent
        self._head_kind = None if self.use_sde or own_dist else action_heads.head_kind(self.action_dist)
        self._action_dims = list(self.action_dist.action_dims) if self._head_kind == "multi_categorical" else []
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    # ----------------------------------------------------------------------------------------------- building
    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = MlpExtractor(
            self.hidden_size, net_arch=self.net_arch, activation_fn=self.activation_fn, device=self.device
        )

    def _build_cores(self) -> None:
        """Create the cores after SB3's heads, in sb3-contrib's order: with one seed, an LSTM policy starts from
        the very weights sb3-contrib's would, so runs switched over by one import can be compared seed by seed."""
        self.actor_core: MemoryCore = self._make_core()
        self.critic_core: MemoryCore | None = None
        self.critic_projection: nn.Module | None = None
        if not self.shared_core:
            if self.critic_core_enabled:
                self.critic_core = self._make_core()
            else:
                self.critic_projection = nn.Linear(self.features_dim, self.hidden_size)

    def _make_core(self) -> MemoryCore:
        # core_kwargs were validated against the core's settings in __init__
        return self.core_class(self.features_dim, self.hidden_size, self.n_layers, **self.core_kwargs)

    def _log_std(self) -> th.Tensor | None:
        return self.log_std if self._head_kind == "gaussian" else None

    @property
    def core(self) -> str:
        """The core as configs name it: its registered name, or ``module:Class``."""
        return core_spec(self.core_class)

    @property
    def core_type(self) -> str:
        """Old name of ``core``, kept for code written against rlgru 0.1."""
        return self.core

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            hidden_size=self.hidden_size,
            n_layers=self.n_layers,
            shared_core=self.shared_core,
            critic_core=self.critic_core_enabled,
            critic_trains_core=self.critic_trains_core,
            core=self.core,
            core_kwargs=dict(self.core_kwargs),
        )
        if self.nested_observation_space is not None:
            data["nested_observation_space"] = self.nested_observation_space
        return data

    # -------------------------------------------------------------------------------------------------- state
    @property
    def state_size(self) -> int:
        """Width of the packed recurrent state (actor core, then critic core if any)."""
        critic = self.critic_core.state_size if self.critic_core is not None else 0
        return self.actor_core.state_size + critic

    def initial_state(self, n_envs: int) -> th.Tensor:
        return th.zeros(self.n_layers, n_envs, self.state_size, device=self.device)

    def readout(self, state: th.Tensor) -> th.Tensor:
        """The actor core's last layer as worth looking at: ``[n_envs, ...]`` (memory probe, PCA plots)."""
        actor_state, _ = self._split_state(state)
        return self.actor_core.readout(actor_state[-1])

    def _split_state(self, state: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        actor_size = self.actor_core.state_size
        if self.critic_core is None:
            return state, None
        return state[..., :actor_size], state[..., actor_size:]

    # ------------------------------------------------------------------------------------------ the recurrence
    @property
    def native_resets(self) -> bool:
        """Whether every core resets mid-sequence for free (then training replays uncut rollout lanes)."""
        cores = (self.actor_core, self.critic_core)
        return all(core.resets_natively(self.device) for core in cores if core is not None)

    def _latents(
        self,
        obs: PyTorchObs,
        state: th.Tensor,
        mask: th.Tensor | None = None,
        resets: th.Tensor | None = None,
        critic: bool = True,
    ) -> tuple[th.Tensor, th.Tensor | None, th.Tensor]:
        """Features -> cores -> MLP latents.

        Without ``mask`` this is one step for every env from an already-reset ``state``. With ``mask``
        ``[T, n_seq]``, ``obs`` holds the real steps of padded sequences in time-major order; only the cores see
        the padded grid, with ``resets`` ``[T, n_seq]`` marking where the rollout zeroed the state.
        """
        core_pi, core_vf, new_state = self.core_outputs(obs, state, mask, resets, critic)
        latent_pi = self.mlp_extractor.forward_actor(core_pi)
        latent_vf = None if core_vf is None else self.mlp_extractor.forward_critic(core_vf)
        return latent_pi, latent_vf, new_state

    def core_outputs(
        self,
        obs: PyTorchObs,
        state: th.Tensor,
        mask: th.Tensor | None = None,
        resets: th.Tensor | None = None,
        critic: bool = True,
    ) -> tuple[th.Tensor, th.Tensor | None, th.Tensor]:
        """Features -> cores: ``(actor core output, what the critic's MLP reads or None, new state)`` per sample,
        with ``mask`` and ``resets`` as in ``_latents``."""
        features = self.extract_features(obs)
        pi_features, vf_features = features if isinstance(features, tuple) else (features, features)
        actor_state, critic_state = self._split_state(state)
        # flat positions of the real steps in the [T * n_seq] grid; one lookup serves both cores
        grid = None if mask is None else (mask, mask.flatten().nonzero().squeeze(1))
        if self.critic_core is not None:
            assert critic_state is not None
            (core_pi, new_actor_state), (core_vf, new_critic_state) = self._run_cores(
                pi_features, vf_features, actor_state, critic_state, grid, resets
            )
            return core_pi, core_vf if critic else None, th.cat((new_actor_state, new_critic_state), dim=-1)
        core_pi, new_state = self._run_core(self.actor_core, pi_features, actor_state, grid, resets)
        if not critic:
            return core_pi, None, new_state
        if self.critic_projection is not None:
            return core_pi, self.critic_projection(vf_features), new_state
        return core_pi, core_pi if self.critic_trains_core else core_pi.detach(), new_state

    @staticmethod
    def _run_core(
        core: MemoryCore,
        features: th.Tensor,
        state: th.Tensor,
        grid: tuple[th.Tensor, th.Tensor] | None,
        resets: th.Tensor | None,
    ) -> tuple[th.Tensor, th.Tensor]:
        """Run a core on per-sample features: one step per env, or scattered into a padded grid.

        ``grid`` is ``(mask [T, n_seq], flat indices of its True cells)``.
        """
        out, new_state = core(core_input(features, grid), state, resets)
        return per_sample(out, grid), new_state

    def _run_cores(
        self,
        pi_features: th.Tensor,
        vf_features: th.Tensor,
        actor_state: th.Tensor,
        critic_state: th.Tensor,
        grid: tuple[th.Tensor, th.Tensor] | None,
        resets: th.Tensor | None,
    ) -> tuple[tuple[th.Tensor, th.Tensor], tuple[th.Tensor, th.Tensor]]:
        """``_run_core`` for the actor's and the critic's core together (one kernel call for both where the core
        has one): ``((actor out, state), (critic out, state))``."""
        assert self.critic_core is not None
        inputs = (core_input(pi_features, grid), core_input(vf_features, grid))
        (out_pi, state_pi), (out_vf, state_vf) = self.actor_core.forward_beside(
            self.critic_core, inputs, (actor_state, critic_state), resets
        )
        return (per_sample(out_pi, grid), state_pi), (per_sample(out_vf, grid), state_vf)

    def forward(  # type: ignore[override]
        self, obs: PyTorchObs, state: th.Tensor, deterministic: bool = False
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """One rollout step for all envs: ``(actions, values, log_probs, next_state)``."""
        step = None if th.is_grad_enabled() else self._fused_act()
        if step is not None:  # one kernel call, the same numbers (rlgru.fast.act)
            actions, values, log_prob, new_state = step(self.extract_features(obs), state, deterministic)
            return actions.reshape((-1, *self.action_space.shape)), values, log_prob, new_state
        latent_pi, latent_vf, new_state = self._latents(obs, state)
        if self._head_kind is not None:
            actions, log_prob = action_heads.sample(
                self._head_kind, self.action_net(latent_pi), self._log_std(), deterministic, self._action_dims
            )
        else:
            distribution = self._get_action_dist_from_latent(latent_pi)
            actions = distribution.get_actions(deterministic=deterministic)
            log_prob = distribution.log_prob(actions)
        values = self.value_net(latent_vf)
        return actions.reshape((-1, *self.action_space.shape)), values, log_prob, new_state

    def _fused_act(self) -> fused_act.FusedAct | None:
        """The one-call rollout step where the fast-path plan allows it, decided once per device, dtype, setting and
        environment switches (``rlgru.fast.plan``)."""
        weight = self.action_net.weight
        switches = tuple(os.environ.get(name) for name in (fused_act.DISABLE_ENV, NO_FAST_PATHS_ENV))
        key = (weight.device, weight.dtype, self.fast_paths, switches)
        cached = self.__dict__.get("_fused_act_cache")
        if cached is None or cached[0] != key:
            plan = plan_fast_paths(self, enabled=self.fast_paths)
            cached = (key, fused_act.FusedAct(self) if plan.act.used else None)
            self.__dict__["_fused_act_cache"] = cached
        return cached[1]

    def set_fast_paths(self, enabled: bool) -> None:
        """Allow (default) or forbid every fast path for this policy, its cores' compiled kernels included."""
        self.fast_paths = bool(enabled)
        for core in {id(c): c for c in (self.actor_core, self.critic_core) if c is not None}.values():
            core.compiled_kernels = self.fast_paths
        self.__dict__.pop("_fused_act_cache", None)

    def evaluate_actions(  # type: ignore[override]
        self, obs: PyTorchObs, actions: th.Tensor, state: th.Tensor, mask: th.Tensor, resets: th.Tensor | None = None
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """Values, log-probs and entropy of the real steps of sequences that start from ``state``.

        ``mask`` ``[T, n_seq]`` says where those steps sit in the padded time-major grid and ``resets`` where
        the state was zeroed (see ``SequenceBatch``).
        """
        latent_pi, latent_vf, _ = self._latents(obs, state, mask, resets)
        if self._head_kind is not None:
            log_prob, entropy = action_heads.evaluate(
                self._head_kind, self.action_net(latent_pi), self._log_std(), actions, self._action_dims
            )
            return self.value_net(latent_vf), log_prob, entropy
        distribution = self._get_action_dist_from_latent(latent_pi)
        return self.value_net(latent_vf), distribution.log_prob(actions), distribution.entropy()

    def get_distribution(  # type: ignore[override]
        self, obs: PyTorchObs, state: th.Tensor, episode_starts: th.Tensor | None = None
    ) -> tuple[Distribution, th.Tensor]:
        state = self._reset(state, episode_starts)
        latent_pi, _, new_state = self._latents(obs, state, critic=False)
        return self._get_action_dist_from_latent(latent_pi), new_state

    def predict_values(  # type: ignore[override]
        self, obs: PyTorchObs, state: th.Tensor, episode_starts: th.Tensor | None = None
    ) -> th.Tensor:
        _, latent_vf, _ = self._latents(obs, self._reset(state, episode_starts))
        return self.value_net(latent_vf)

    @staticmethod
    def _reset(state: th.Tensor, episode_starts: th.Tensor | None) -> th.Tensor:
        if episode_starts is None:
            return state
        return state * (1.0 - episode_starts.to(state.dtype)).view(1, -1, 1)

    # ------------------------------------------------------------------------------------------------ predict
    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: np.ndarray | tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """SB3-style predict that threads the recurrent state: returns ``(actions, state)``.

        ``state=None`` starts from zeros; ``episode_start[i]=1`` zeroes env ``i``'s state before acting.
        A ``(h, c)`` tuple from sb3-contrib is accepted and packed. Where the env's observations are flattened
        for the policy (``nested_observation_space``), its own tuples and dicts are taken as well, one or a batch.
        """
        self.set_training_mode(False)
        if self.nested_observation_space is not None and isinstance(observation, tuple | dict):
            observation = flatten_observation(self.nested_observation_space, observation)
        obs_tensor, vectorized = self.obs_to_tensor(observation)
        n_envs = _batch_size(obs_tensor)
        if state is None:
            state_tensor = self.initial_state(n_envs)
        else:
            packed = np.concatenate(state, axis=-1) if isinstance(state, tuple) else np.asarray(state)
            expected = (self.n_layers, n_envs, self.state_size)
            if packed.shape != expected:
                raise ValueError(f"state has shape {packed.shape}, expected {expected} (n_layers, n_envs, size)")
            state_tensor = th.as_tensor(packed, dtype=th.float32, device=self.device)
        starts = None
        if episode_start is not None:
            starts = th.as_tensor(np.asarray(episode_start, dtype=np.float32).reshape(n_envs), device=self.device)
        with th.no_grad():
            distribution, new_state = self.get_distribution(obs_tensor, state_tensor, starts)
            actions = distribution.get_actions(deterministic=deterministic)
        actions_np = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if isinstance(self.action_space, spaces.Box):
            if self.squash_output:
                actions_np = self.unscale_action(actions_np)
            else:
                actions_np = np.clip(actions_np, self.action_space.low, self.action_space.high)
        if not vectorized:
            actions_np = actions_np.squeeze(axis=0)
        return actions_np, new_state.cpu().numpy()

    # ------------------------------------------------------------------------------------------- diagnostics
    @th.no_grad()
    def memory_diagnostics(
        self, obs: PyTorchObs, state: th.Tensor, mask: th.Tensor, resets: th.Tensor | None = None
    ) -> dict[str, float]:
        """Gate activations and hidden-state norm of the actor core over a sequence minibatch (for TensorBoard),
        with the state zeroed where the rollout zeroed it."""
        features = self.extract_features(obs)
        pi_features = features[0] if isinstance(features, tuple) else features
        actor_state, _ = self._split_state(state)
        padded = to_grid(pi_features, mask, mask.flatten().nonzero().squeeze(1))
        return self.actor_core.diagnose(padded, actor_state, mask, resets)


def _batch_size(obs: PyTorchObs) -> int:
    first = next(iter(obs.values())) if isinstance(obs, dict) else obs
    return int(first.shape[0])


def _named_policy(name: str, core: CoreSpec, extractor: type[BaseFeaturesExtractor], what: str) -> type:
    """A policy class with its core and features extractor fixed, like sb3-contrib's ``MlpLstmPolicy``."""

    def __init__(self: RecurrentActorCriticPolicy, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", extractor)
        RecurrentActorCriticPolicy.__init__(self, *args, **kwargs)

    doc = f"Recurrent actor-critic with {what} and SB3's {extractor.__name__}."
    return type(name, (RecurrentActorCriticPolicy,), {"default_core": core, "__init__": __init__,
                                                      "__doc__": doc, "__module__": __name__})


_EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {"Mlp": FlattenExtractor, "Cnn": NatureCNN,
                                                       "MultiInput": CombinedExtractor}


def _policy_aliases() -> dict[str, type[RecurrentActorCriticPolicy]]:
    """``MlpPolicy``/``CnnPolicy``/``MultiInputPolicy`` (core from ``policy_kwargs["core"]``, GRU by default) and
    ``<Extractor><Core>Policy`` for every built-in core."""
    aliases = {f"{prefix}Policy": _named_policy(f"{prefix}Policy", "gru", extractor, "the core policy_kwargs name")
               for prefix, extractor in _EXTRACTORS.items()}
    for name in core_names():
        label = core_label(resolve_core(name))
        for prefix, extractor in _EXTRACTORS.items():
            cls_name = f"{prefix}{label}Policy"
            aliases[cls_name] = _named_policy(cls_name, name, extractor, f"a {name} core")
    return aliases


POLICY_ALIASES: dict[str, type[RecurrentActorCriticPolicy]] = _policy_aliases()
globals().update(POLICY_ALIASES)  # MlpGruPolicy, CnnLstmPolicy, MultiInputMinGruPolicy, ...
