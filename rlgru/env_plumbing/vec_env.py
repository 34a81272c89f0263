"""SB3's ``VecEnv`` API over a Gymnasium ``VectorEnv``, so SB3 and rlgru algorithms train on batched envs.

SB3 wants a finished env's next first observation in the same step, with the last one in
``infos[i]["terminal_observation"]``; Gymnasium's vector envs autoreset on the next step by default. The adapter
bridges the two with a partial reset (``reset_mask``) of the finished envs, and keeps episode statistics as
``VecMonitor`` does, since there is no per-env ``Monitor`` to do it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn


class BatchedVecEnv(VecEnv):
    """A Gymnasium ``VectorEnv`` seen as an SB3 ``VecEnv``.

    On an episode's end, as ``DummyVecEnv`` with a ``Monitor`` per env would give: ``obs`` holds the next
    episode's first observation, ``infos[i]`` holds ``"terminal_observation"``, ``"TimeLimit.truncated"`` (a
    truncation, not a termination: bootstrap the value) and ``"episode"`` (``{"r", "l", "t"}``, as
    ``VecMonitor``), and ``reset_infos[i]`` the new episode's reset info. Works with next-step and disabled
    autoreset (through ``reset(options={"reset_mask": ...})``, which rlgru's batched envs and Gymnasium's
    ``SyncVectorEnv`` and ``AsyncVectorEnv`` accept) and with same-step autoreset (through ``final_obs``).

    ``seed(s)`` takes effect at the next ``reset()`` as ``venv.reset(seed=s)``: one generator for a batched env,
    env ``i`` seeded with ``s + i`` for Gymnasium's sync and async vector envs (as ``DummyVecEnv``).
    """

    def __init__(self, venv: VectorEnv) -> None:
        if not isinstance(venv, VectorEnv):
            raise TypeError(f"venv must be a gymnasium.vector.VectorEnv, got {type(venv).__name__}")
        self.venv = venv
        self.autoreset_mode = AutoresetMode(venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._start = time.time()

    # --------------------------------------------------------------------------------------------- stepping
    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        if any(s is not None for s in self._seeds) and self._seeds != [seed + i for i in range(self.num_envs)]:
            raise ValueError(f"a vector env takes one seed for all its envs (env i gets seed + i), got {self._seeds}")
        options = self._options[0] if self._options else {}
        if any(o != options for o in self._options):
            raise ValueError("a vector env takes the same reset options for all its envs")
        obs, info = self.venv.reset(seed=seed, options=dict(options) if options else None)
        self.reset_infos = _info_list(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        self._returns += rewards
        self._lengths += 1
        infos = _info_list(info, self.num_envs)
        finished = np.flatnonzero(dones)
        if len(finished):
            obs, last_obs = self._next_episodes(obs, dones, infos, info)
            elapsed = round(time.time() - self._start, 6)
            for j, i in enumerate(finished):
                infos[i]["terminal_observation"] = _row(last_obs, j)
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                infos[i]["episode"] = {"r": float(self._returns[i]), "l": int(self._lengths[i]), "t": elapsed}
            self._returns[finished] = 0.0
            self._lengths[finished] = 0
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def _next_episodes(
        self, obs: VecEnvObs, dones: np.ndarray, infos: list[dict[str, Any]], info: dict[str, Any]
    ) -> tuple[VecEnvObs, VecEnvObs]:
        """The batch with the finished envs' next first observations, and their last observations (in order)."""
        finished = np.flatnonzero(dones)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:  # the venv already reset them; it kept what ended
            final_infos = _info_list(info.get("final_info", {}), self.num_envs)
            for i in finished:
                self.reset_infos[i] = {k: v for k, v in infos[i].items() if k not in ("final_obs", "final_info")}
                infos[i] = final_infos[i]
            return obs, _stack([info["final_obs"][i] for i in finished])
        last_obs = _take(obs, finished)  # a copy: the venv may reuse its buffers on reset
        obs, reset_info = self.venv.reset(options={"reset_mask": dones})
        reset_infos = _info_list(reset_info, self.num_envs)
        for i in finished:
            self.reset_infos[i] = reset_infos[i]
        return obs, last_obs

    def close(self) -> None:
        self.venv.close()

    # --------------------------------------------------------------------------------------------- attributes
    # A batched env is one object: its attributes and methods are the batch's, the same for every index.
    # Gymnasium's sync and async vector envs have one env per index, reached through their get_attr and call.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        indices = list(self._get_indices(indices))
        if _per_env(self.venv):
            values = self.venv.get_attr(attr_name)
            return [values[i] for i in indices]
        value = getattr(self.venv, attr_name)
        return [value for _ in indices]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        indices = list(self._get_indices(indices))
        if _per_env(self.venv):
            values = list(self.venv.get_attr(attr_name))
            for i in indices:
                values[i] = value
            self.venv.set_attr(attr_name, values)
        elif sorted(indices) == list(range(self.num_envs)):
            setattr(self.venv, attr_name, value)
        else:
            raise ValueError(f"{type(self.venv).__name__} holds one {attr_name!r} for all its envs: set it for all")

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Calls the method once on the vector env (on every sub-env of a sync or async one)."""
        indices = list(self._get_indices(indices))
        if _per_env(self.venv):
            results = self.venv.call(method_name, *method_args, **method_kwargs)
            return [results[i] for i in indices]
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in indices]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """``Monitor``: True, since this adapter reports episodes as a ``Monitor`` would (``evaluate_policy``
        relies on it); other wrappers: those of a sync vector env's envs, none for a batched env."""
        indices = list(self._get_indices(indices))
        if wrapper_class is Monitor:
            return [True for _ in indices]
        envs = getattr(self.venv, "envs", None)
        if envs is not None:
            return [is_wrapped(envs[i], wrapper_class) for i in indices]
        return [False for _ in indices]

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            warnings.warn(f"The render mode is {self.render_mode}, but get_images needs 'rgb_array'.", stacklevel=2)
            return [None for _ in range(self.num_envs)]
        return list(self.venv.render())


def make_batched_vec_env(
    env_id: str, n_envs: int = 1, seed: int | None = None, env_kwargs: dict[str, Any] | None = None
) -> BatchedVecEnv:
    """``n_envs`` envs of ``env_id``'s natively batched version (its ``vector_entry_point``) as an SB3 ``VecEnv``.

    The counterpart of SB3's ``make_vec_env(env_id, n_envs, seed, env_kwargs=...)``: same seeding call, episode
    statistics included; a ``ValueError`` names the ids that have a batched version when ``env_id`` has none.
    """
    spec = gym.spec(env_id)
    if spec.vector_entry_point is None:
        batched = sorted(s.id for s in gym.registry.values() if s.vector_entry_point and s.namespace == spec.namespace)
        raise ValueError(f"{env_id!r} has no batched version (vector_entry_point); these do: {', '.join(batched)}")
    venv = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", **(env_kwargs or {}))
    env = BatchedVecEnv(venv)
    if seed is not None:
        env.seed(seed)
    return env


def _per_env(venv: VectorEnv) -> bool:
    """Whether the vector env holds one gym.Env per index (Gymnasium's sync and async vector envs)."""
    return isinstance(venv, gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv)


def _info_list(info: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium's vector info (arrays with ``_key`` masks, nested for dicts) as SB3's one dict per env."""
    infos: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}")
        if isinstance(value, dict):
            for i, sub in enumerate(_info_list(value, n)):
                if sub or (mask is not None and mask[i]):
                    infos[i][key] = sub
            continue
        # plain Python values, as single envs give (one tolist() call beats n item() calls)
        items = value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype != object else value
        if mask is None or mask.all():
            for target, item in zip(infos, items, strict=True):
                target[key] = item
        else:
            for i in np.flatnonzero(mask).tolist():
                infos[i][key] = items[i]
    return infos


def _take(obs: VecEnvObs, rows: np.ndarray) -> VecEnvObs:
    if isinstance(obs, dict):
        return {key: value[rows] for key, value in obs.items()}
    return obs[rows]  # type: ignore[index]


def _row(obs: VecEnvObs, j: int) -> Any:
    if isinstance(obs, dict):
        return {key: value[j] for key, value in obs.items()}
    return obs[j]  # type: ignore[index]


def _stack(rows: list[Any]) -> VecEnvObs:
    if rows and isinstance(rows[0], dict):
        return {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    return np.stack(rows)


__all__ = ["BatchedVecEnv", "make_batched_vec_env"]
