"""Recurrent PPO: a drop-in for ``sb3_contrib.RecurrentPPO`` with GRU, LSTM or RNN cores.

Rollouts thread the recurrent state through every step and store it; training replays the rollout as padded
sequences that start from their stored states, so each core runs once per minibatch.
"""

from __future__ import annotations

import io
import pathlib
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, explained_variance, obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from rlgru.algorithm.buffers import SequenceBatch, make_rollout_buffer
from rlgru.algorithm.hidden_reset import HIDDEN_RESET_MODES, HiddenResetMode, hidden_resets_after_step
from rlgru.algorithm.policies import POLICY_ALIASES, RecurrentActorCriticPolicy
from rlgru.env_plumbing.wrappers import nested_observation_space, wrap_tuple_observations
from rlgru.fast.heads import LossSettings, ppo_loss
from rlgru.fast.optim_step import GradientStep
from rlgru.fast.plan import FastPathPlan, plan_fast_paths
from rlgru.fast.update import FusedUpdate
from rlgru.runtime.safe_load import checked_custom_objects

SelfRecurrentPPO = TypeVar("SelfRecurrentPPO", bound="RecurrentPPO")


class RecurrentPPO(OnPolicyAlgorithm):
    """PPO with a recurrent policy (clipped surrogate objective, GAE, value clipping, target KL).

    Arguments match ``sb3_contrib.RecurrentPPO``; in addition:

    :param hidden_reset: when the recurrent state is zeroed: ``"episode"`` at every episode start,
        ``"trial"`` only when the env's info says ``trial_start=True`` (RL²-style meta-RL), ``"never"`` only
        when an env is created.
    :param max_seq_len: longest training sequence (truncated BPTT length). Defaults to
        ``min(n_steps, batch_size)``, the longest sequence sb3-contrib's minibatches can hold.
    :param fast_paths: ``False`` runs the definition only (autograd, the cores in PyTorch), as
        ``RLGRU_NO_FAST_PATHS=1`` does for the whole process; ``fast_path_plan()`` says what runs and why.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = dict(POLICY_ALIASES)
    policy: RecurrentActorCriticPolicy

    def __init__(
        self,
        policy: str | type[RecurrentActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 128,
        batch_size: int | None = 128,
        n_epochs: int = 10,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_range: float | Schedule = 0.2,
        clip_range_vf: float | Schedule | None = None,
        normalize_advantage: bool = True,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        target_kl: float | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        hidden_reset: HiddenResetMode = "episode",
        max_seq_len: int | None = None,
        fast_paths: bool = True,
        _init_setup_model: bool = True,
    ) -> None:
        if hidden_reset not in HIDDEN_RESET_MODES:
            raise ValueError(f"hidden_reset must be one of {HIDDEN_RESET_MODES}, got {hidden_reset!r}")
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        batch_size = batch_size or n_steps
        if batch_size < 2:
            raise ValueError(f"batch_size must be > 1 (advantages are normalised per minibatch), got {batch_size}")
        if max_seq_len is not None and max_seq_len < 1:
            raise ValueError(f"max_seq_len must be >= 1, got {max_seq_len}")
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.clip_range = clip_range
        self.clip_range_vf = clip_range_vf
        self.normalize_advantage = normalize_advantage
        self.target_kl = target_kl
        self.hidden_reset: HiddenResetMode = hidden_reset
        self.max_seq_len = max_seq_len or min(n_steps, batch_size)
        self.fast_paths = fast_paths
        self._last_state: th.Tensor | None = None
        self._last_hidden_resets: np.ndarray | None = None
        self._gradient_step: GradientStep | None = None
        # the env's own space where its observations are flattened (saved: predict takes them unflattened too)
        self.nested_observation_space = nested_observation_space(self.env) if self.env is not None else None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------------------------------------ set-up
    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # Tuple observations have no SB3 preprocessing and SB3's vec envs refuse nested spaces: flatten them, per env
        # before vectorising when given an env (rlgru.env_plumbing.wrappers), instead of refusing them.
        env = wrap_tuple_observations(env)
        return wrap_tuple_observations(OnPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper))

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        nested = getattr(self, "nested_observation_space", None)  # (absent from zips saved before it was kept)
        extra = {} if nested is None else {"nested_observation_space": nested}
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space,
            self.action_space,
            self.lr_schedule,
            use_sde=self.use_sde,
            **self.policy_kwargs,
            **extra,
        )
        if not isinstance(self.policy, RecurrentActorCriticPolicy):
            raise TypeError(f"RecurrentPPO needs a RecurrentActorCriticPolicy, got {type(self.policy).__name__}")
        self.policy = self.policy.to(self.device)
        self.policy.set_fast_paths(getattr(self, "fast_paths", True))  # before the buffer asks about resets
        self.rollout_buffer = make_rollout_buffer(
            self.observation_space,
            self.n_steps,
            action_space=self.action_space,
            device=self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
            state_shape=(self.policy.n_layers, self.policy.state_size),
            max_seq_len=self.max_seq_len,
            cut_at_resets=not self.policy.native_resets,
        )
        self.rollout_buffer.seed(self.seed)
        self.clip_range = FloatSchedule(self.clip_range)
        if self.clip_range_vf is not None:
            if isinstance(self.clip_range_vf, (float, int)) and self.clip_range_vf <= 0:
                raise ValueError("clip_range_vf must be positive; pass None to disable value clipping")
            self.clip_range_vf = FloatSchedule(self.clip_range_vf)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        env_will_reset = reset_num_timesteps or self._last_obs is None
        total_timesteps, callback = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        # The state persists across learn() calls unless the envs were reset (or replaced by set_env).
        stale = self._last_state is None or self._last_state.shape[1] != self.n_envs
        if env_will_reset or stale:
            self._last_state = self.policy.initial_state(self.n_envs)
            self._last_hidden_resets = np.ones(self.n_envs, dtype=bool)
        return total_timesteps, callback

    def _excluded_save_params(self) -> list[str]:
        # The live recurrent state belongs to the live envs, which are not saved either; the update's helpers are
        # rebuilt from the policy.
        live = ["_last_state", "_last_hidden_resets", "_gradient_step"]
        return [*super()._excluded_save_params(), *live]

    # ----------------------------------------------------------------------------------------------- rollout
    def collect_rollouts(  # type: ignore[override]
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: Any, n_rollout_steps: int
    ) -> bool:
        assert self._last_obs is not None and self._last_state is not None, "call learn(), not collect_rollouts()"
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        callback.on_rollout_start()

        n_steps = 0
        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)
            keep = th.as_tensor(~self._last_hidden_resets, dtype=th.float32, device=self.device)
            state = self._last_state * keep.view(1, -1, 1)
            with th.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                actions, values, log_probs, next_state = self.policy(obs_tensor, state)
            actions = actions.cpu().numpy()
            new_obs, rewards, dones, infos = env.step(self._env_actions(actions))
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            n_steps += 1

            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            self._bootstrap_truncated(rewards, dones, infos, next_state)
            rollout_buffer.add_memory(state, self._last_hidden_resets)
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)

            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
            self._last_state = next_state
            self._last_hidden_resets = hidden_resets_after_step(self.hidden_reset, env, dones, infos)

        with th.no_grad():
            starts = th.as_tensor(self._last_hidden_resets, dtype=th.float32, device=self.device)
            last_values = self.policy.predict_values(obs_as_tensor(new_obs, self.device), self._last_state, starts)
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        if not isinstance(self.action_space, spaces.Box):
            return actions
        if self.policy.squash_output:
            return self.policy.unscale_action(actions)
        return np.clip(actions, self.action_space.low, self.action_space.high)

    def _bootstrap_truncated(
        self, rewards: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]], next_state: th.Tensor
    ) -> None:
        """Add ``gamma * V(terminal_obs)`` to time-limit truncations, valued with the memory of that episode."""
        for idx in np.flatnonzero(dones):
            info = infos[idx]
            if info.get("terminal_observation") is None or not info.get("TimeLimit.truncated", False):
                continue
            terminal_obs = self.policy.obs_to_tensor(info["terminal_observation"])[0]
            with th.no_grad():
                terminal_value = self.policy.predict_values(terminal_obs, next_state[:, idx : idx + 1])[0]
            rewards[idx] += self.gamma * float(terminal_value)

    # -------------------------------------------------------------------------------------------------- train
    def train(self) -> None:
        """The PPO update over sequence minibatches: clipped surrogate, (clipped) value loss, entropy bonus."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        clip_range_vf = None
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        plan = self.fast_path_plan()
        fused = plan.heads.used
        gradient_step = GradientStep.for_module(
            self._gradient_step, self.policy, self.policy.optimizer, fast=plan.flat_gradients.used
        )
        self._gradient_step = gradient_step
        # losses and gradient without autograd where the plan allows it (rlgru.fast.update): the same up to rounding
        fused_update = FusedUpdate(self.policy, gradient_step.flat) if plan.update.used and gradient_step.flat else None
        stats: dict[str, list[th.Tensor]] = {"pg": [], "value": [], "entropy": [], "clip": [], "kl": []}
        continue_training = True
        for epoch in range(self.n_epochs):
            for batch in self.rollout_buffer.get(self.batch_size):
                if epoch == 0 and not stats["pg"] and self.logger.output_formats:  # (unread if logged nowhere)
                    self._log_memory_diagnostics(batch)
                if fused_update is not None:
                    losses = fused_update(batch, clip_range, clip_range_vf, self.ent_coef, self.vf_coef,
                                          self.normalize_advantage)
                else:
                    losses = self.minibatch_losses(batch, clip_range, clip_range_vf, fused)
                for key in stats:
                    stats[key].append(losses[key].detach())
                if self.target_kl is not None and float(losses["kl"]) > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {float(losses['kl']):.2f}")
                    break
                if fused_update is not None:  # the gradient is in the flat buffer already
                    gradient_step.apply(self.max_grad_norm)
                else:  # zero_grad, backward, clip_grad_norm_, optimizer.step (rlgru.fast.optim_step)
                    gradient_step(losses["loss"], self.max_grad_norm)
            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        for name, key in (("policy_gradient_loss", "pg"), ("value_loss", "value"), ("entropy_loss", "entropy"),
                          ("clip_fraction", "clip"), ("approx_kl", "kl")):
            if stats[key]:
                self.logger.record(f"train/{name}", float(th.stack(stats[key]).mean()))
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)

    def fast_path_plan(self) -> FastPathPlan:
        """Which fast paths this model's rollouts and updates take, and why not the others (``rlgru.fast.plan``)."""
        return plan_fast_paths(self.policy, self.policy.optimizer, enabled=getattr(self, "fast_paths", True))

    def minibatch_losses(
        self, batch: SequenceBatch, clip_range: float, clip_range_vf: float | None = None, fused: bool | None = None
    ) -> dict[str, th.Tensor]:
        """PPO losses of one sequence minibatch (real steps only: padding never leaves the cores).

        The autograd graph below defines them. ``fused`` (default: wherever the policy's heads allow) computes
        everything after the cores in ``rlgru.fast.heads``, with the same results and a hand-derived gradient.
        """
        advantages = batch.advantages
        if self.normalize_advantage and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        if fused is None:
            fused = self.fast_path_plan().heads.used
        if fused:
            core_pi, core_vf, _ = self.policy.core_outputs(
                batch.observations, batch.initial_states, batch.mask, batch.resets
            )
            assert core_vf is not None
            settings = LossSettings(batch.actions, batch.old_log_prob, advantages, batch.returns, batch.old_values,
                                    clip_range, clip_range_vf, self.ent_coef, self.vf_coef)
            return ppo_loss(self.policy, core_pi, core_vf, settings)
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy = self.policy.evaluate_actions(
            batch.observations, actions, batch.initial_states, batch.mask, batch.resets
        )
        values = values.flatten()

        log_ratio = log_prob - batch.old_log_prob
        ratio = th.exp(log_ratio)
        policy_loss = -th.min(advantages * ratio, advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()

        if clip_range_vf is not None:
            values = batch.old_values + th.clamp(values - batch.old_values, -clip_range_vf, clip_range_vf)
        value_loss = (batch.returns - values).pow(2).mean()
        entropy_loss = -(entropy.mean() if entropy is not None else -log_prob.mean())

        with th.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clip_fraction = ((ratio - 1).abs() > clip_range).float().mean()
        return {
            "loss": policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss,
            "pg": policy_loss,
            "value": value_loss,
            "entropy": entropy_loss,
            "kl": approx_kl,
            "clip": clip_fraction,
            "log_prob": log_prob,
            "values": values,
        }

    def _log_memory_diagnostics(self, batch: SequenceBatch) -> None:
        """Gate activations and hidden-state norm on one minibatch, as ``memory/*`` scalars."""
        stats = self.policy.memory_diagnostics(batch.observations, batch.initial_states, batch.mask, batch.resets)
        for name, value in stats.items():
            self.logger.record(f"memory/{name}", value)

    def learn(  # type: ignore[override]
        self: SelfRecurrentPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "RecurrentPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfRecurrentPPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # --------------------------------------------------------------------------------------------- loading
    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfRecurrentPPO],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        *,
        trust_pickle: bool = False,
        **kwargs: Any,
    ) -> SelfRecurrentPPO:
        """SB3's ``load``, but a zip's pickled attributes are built by ``rlgru.runtime.safe_load``'s allow-listed
        unpickler, so a crafted file cannot run code; ``trust_pickle=True`` unpickles everything, as SB3 does."""
        custom_objects = checked_custom_objects(path, custom_objects, trust_pickle=trust_pickle)
        return super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)


__all__ = ["RecurrentPPO"]
