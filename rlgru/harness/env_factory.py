"""Build the vectorised envs a config describes: id or entry point, kwargs, wrappers, vectorisation, VecNormalize.

Everything that can be wrong with the ``env`` section (an unknown id, a bad keyword, a failing wrapper) is found
here, by building one env in this process before any worker starts, and reported as a ``HarnessError`` that
names the key path.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize, unwrap_vec_normalize

from rlgru.env_plumbing.suite_wrappers import CloseWithLastEnv
from rlgru.env_plumbing.vec_env import make_batched_vec_env
from rlgru.env_plumbing.wrapper_lookup import resolve_wrapper
from rlgru.env_plumbing.wrappers import wrap_tuple_observations
from rlgru.harness.config import EnvConfig
from rlgru.harness.errors import HarnessError, UntrustedFileError
from rlgru.harness.suites import suite_of
from rlgru.runtime.safe_load import UntrustedPickleError, load_vecnormalize

#: offset between the training envs' seeds and the evaluation envs', so evaluation sees unseen episodes
EVAL_SEED_OFFSET = 10_000
#: modules whose classes may be named without ``module:`` in ``env.wrappers``


@dataclass(frozen=True)
class EnvSpec:
    """What builds one env: picklable, so subprocess workers can rebuild it from scratch."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[tuple[str, dict[str, Any]], ...] = ()

    @classmethod
    def from_config(cls, env: EnvConfig) -> EnvSpec:
        return cls(env.id, dict(env.env_kwargs), tuple((w.name, dict(w.kwargs)) for w in env.wrappers))

    def make_base(self, **make_kwargs: Any) -> gym.Env:
        """The env before wrappers (``make_vec_env`` calls this in each worker, then adds a ``Monitor``).

        A subprocess worker unpickling this spec imports ``rlgru``, which registers the ``rlgru/`` ids.
        """
        suite = suite_of(self.env_id)
        if suite is not None:
            suite.prepare()
        constructor = _entry_point(self.env_id)
        kwargs = {**self.env_kwargs, **make_kwargs}
        env = constructor(**kwargs) if constructor is not None else gym.make(self.env_id, **kwargs)
        if suite is not None and suite.close_ends_process_display:
            env = CloseWithLastEnv(env)
        return env

    def wrap(self, env: gym.Env) -> gym.Env:
        """The configured wrappers, outside the ``Monitor`` (as rl-zoo3 does), so logged returns are the env's; then
        ``Tuple`` and nested observations flattened (SB3's vec envs refuse them), so training, evaluation and
        ``predict`` all see the same ``Box``."""
        for name, wrapper_kwargs in self.wrappers:
            env = resolve_wrapper(name)(env, **wrapper_kwargs)
        return wrap_tuple_observations(env)


def _entry_point(env_id: str) -> Callable[..., gym.Env] | None:
    """The callable behind ``module:Class``; ``None`` for a Gymnasium id (``module:Id`` included)."""
    if ":" not in env_id:
        return None
    module_name, _, attribute = env_id.partition(":")
    module = importlib.import_module(module_name)
    candidate = getattr(module, attribute, None)
    if callable(candidate) and attribute not in gym.registry:
        return candidate
    return None


def check_env_id(env_id: str, where: str = "env.id") -> None:
    """Fail with a helpful message (close matches) unless ``env_id`` names a registered id or an entry point."""
    suite = suite_of(env_id)
    if suite is not None and not suite.installed:
        raise HarnessError(suite.missing(), where=where)
    if ":" in env_id:
        module_name, _, attribute = env_id.partition(":")
        if suite is not None:
            suite.prepare()
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            hint = f"; to install {suite.name}: {suite.install}" if suite is not None else ""
            message = f"cannot import module {module_name!r} of {env_id!r}: {error}{hint}"
            raise HarnessError(message, where=where) from None
        if callable(getattr(module, attribute, None)) or attribute in gym.registry:
            return
        raise HarnessError(
            f"{module_name!r} has no callable {attribute!r} and registers no Gymnasium id {attribute!r}", where=where
        )
    if env_id in gym.registry:
        return
    if suite is not None:  # installed, but Gymnasium only knows its ids once the package is imported
        raise HarnessError(
            f"unknown environment {env_id!r}: write {suite.package}:{env_id} so Gymnasium imports {suite.package} "
            "(which registers it) first",
            where=where,
        )
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise HarnessError(
        f"unknown environment {env_id!r}{hint}; give a registered Gymnasium id (`rlgru envs` lists ours) "
        "or a module:Class entry point",
        where=where,
    )


def check_env_spec(spec: EnvSpec, where: str = "env") -> gym.Space:
    """Build one env here, step by step, so a bad keyword or wrapper is reported against its key path.

    Returns the observation space (the policy class depends on it).
    """
    check_env_id(spec.env_id, f"{where}.id")
    try:
        env = spec.make_base()
    except Exception as error:  # noqa: BLE001 - any constructor failure is bad user input here
        raise HarnessError(
            f"cannot build {spec.env_id!r} with these arguments: {_short(error)}", where=f"{where}.env_kwargs"
        ) from None
    try:
        for index, (name, kwargs) in enumerate(spec.wrappers):
            try:
                env = resolve_wrapper(name)(env, **kwargs)
            except Exception as error:  # noqa: BLE001 - as above, for the wrapper at this index
                suite = suite_of(name)
                problem = suite.missing() if isinstance(error, ImportError) and suite is not None else _short(error)
                raise HarnessError(f"{name}: {problem}", where=f"{where}.wrappers[{index}]") from None
        return wrap_tuple_observations(env).observation_space
    finally:
        env.close()


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, ValueError | TypeError | LookupError) else f"{type(error).__name__}: {text}"


def make_env(
    env: EnvConfig,
    *,
    seed: int,
    n_envs: int | None = None,
    vec_env: str | None = None,
    monitor_dir: Path | None = None,
) -> VecEnv:
    """The vectorised env of a config section (without VecNormalize: see ``normalize_env``).

    ``make_vec_env`` seeds env ``i`` with ``seed + i`` and adds a ``Monitor`` so episode returns are logged.
    """
    spec = EnvSpec.from_config(env)
    check_env_spec(spec)
    kind = vec_env or env.vec_env
    if kind == "batched":
        return _make_batched(spec, n_envs or env.n_envs, seed, monitor_dir)
    vec_env_cls: type[VecEnv] = SubprocVecEnv if kind == "subprocess" else DummyVecEnv
    if vec_env_cls is SubprocVecEnv:
        # Workers unpickle EnvSpec, which imports rlgru (and torch): import it once in the fork server instead.
        multiprocessing.set_forkserver_preload(["rlgru.harness.env_factory"])
    return make_vec_env(
        spec.make_base,
        n_envs=n_envs or env.n_envs,
        seed=seed,
        vec_env_cls=vec_env_cls,
        wrapper_class=spec.wrap,
        monitor_dir=str(monitor_dir) if monitor_dir is not None else None,
    )


def _make_batched(spec: EnvSpec, n_envs: int, seed: int, monitor_dir: Path | None) -> VecEnv:
    """``env.vec_env: batched``: the task's natively batched version (``envs.batched``) behind SB3's VecEnv API.

    One array-stepped env replaces the per-env envs, their wrappers and Monitors (it reports episodes itself).
    """
    if spec.wrappers:
        raise HarnessError("batched envs take no wrappers; use vec_env dummy or subprocess", where="env.wrappers")
    if monitor_dir is not None:
        raise HarnessError("batched envs write no Monitor files; use vec_env dummy or subprocess", where="env.vec_env")
    try:
        batched = gym.spec(spec.env_id).vector_entry_point is not None
    except gym.error.Error:  # a module:Class entry point
        batched = False
    if not batched:
        raise HarnessError(
            f"{spec.env_id!r} has no batched version (a Gymnasium vector_entry_point; every rlgru/ task has one); "
            "use vec_env dummy or subprocess",
            where="env.vec_env",
        )
    return make_batched_vec_env(spec.env_id, n_envs, seed=seed, env_kwargs=spec.env_kwargs)


def normalize_env(venv: VecEnv, env: EnvConfig, gamma: float, *, training: bool = True) -> VecEnv:
    """Wrap in ``VecNormalize`` if the config asks; evaluation envs neither update stats nor scale rewards."""
    if env.normalize is None:
        return venv
    kwargs = env.normalize.model_dump()
    if not training:
        kwargs["norm_reward"] = False
    normalized = VecNormalize(venv, gamma=gamma, **kwargs)
    normalized.training = training
    return normalized


def copy_normalization(source: VecNormalize, target: VecEnv) -> None:
    """Give the ``VecNormalize`` inside ``target`` the statistics of ``source`` (SB3's ``sync_envs_normalization``
    needs both wrapper stacks to match layer for layer; training envs carry a ``VecCheckFinite`` that evaluation
    envs need not)."""
    normalize = unwrap_vec_normalize(target)
    if normalize is not None:
        for name in ("obs_rms", "ret_rms"):  # obs_rms is absent when norm_obs is off
            if name in vars(source):
                setattr(normalize, name, copy.deepcopy(vars(source)[name]))


def load_normalization(venv: VecEnv, path: Path, *, training: bool, trust_pickle: bool = False) -> VecNormalize:
    """Saved ``VecNormalize`` statistics around a fresh vec env (built by ``rlgru.runtime.safe_load`` unless
    trusted)."""
    try:
        normalized = load_vecnormalize(path, venv, trust_pickle=trust_pickle)
    except UntrustedPickleError as error:
        raise UntrustedFileError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - a corrupt or foreign pickle is bad input, not a bug
        raise HarnessError(f"not readable VecNormalize statistics ({_short(error)})", where=path) from None
    normalized.training = training
    if not training:
        normalized.norm_reward = False
    return normalized


__all__ = [
    "EVAL_SEED_OFFSET",
    "EnvSpec",
    "check_env_id",
    "check_env_spec",
    "copy_normalization",
    "load_normalization",
    "make_env",
    "normalize_env",
    "resolve_wrapper",
]
