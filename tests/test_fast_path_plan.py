"""One function decides the fast paths (``rlgru.fast.plan``): what it answers, that training follows it, the one
switch that turns everything off, and the table that documents every ``RLGRU_*`` variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.cores import fused_gru
from rlgru.cores._kernel_build import NO_FAST_PATHS_ENV
from rlgru.fast import heads as fused_heads
from rlgru.fast.plan import plan_fast_paths
from tests.helpers import ACTION_SPACES, RandomEpisodeEnv

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not fused_heads.KERNEL.available(), reason="the kernels could not be built")


def make_model(core: str = "gru", **kwargs) -> RecurrentPPO:
    env = make_vec_env(RandomEpisodeEnv, n_envs=3, seed=1, env_kwargs={"action_space": ACTION_SPACES["discrete"]})
    policy_kwargs = {"hidden_size": 8, "net_arch": [8], "core": core, **kwargs.pop("policy_kwargs", {})}
    return RecurrentPPO("MlpPolicy", env, n_steps=16, batch_size=24, n_epochs=2, seed=0, policy_kwargs=policy_kwargs,
                        **kwargs)


def test_the_common_policy_takes_every_fast_path() -> None:
    plan = make_model().fast_path_plan()
    assert all(choice.used for choice in plan.choices), plan.summary()
    assert [c.name for c in plan.cores] == ["actor core kernel", "critic core kernel"]
    assert plan.summary().startswith("fast paths: actor core kernel, critic core kernel, fused heads")


@pytest.mark.parametrize(
    "kwargs,path,reason",
    [
        ({"policy_kwargs": {"core": "rnn"}}, "update", "no fused cell kernel"),
        ({"policy_kwargs": {"shared_core": True}}, "act", "share one core"),
        ({"policy_kwargs": {"activation_fn": th.nn.ELU}}, "heads", "ReLU/Tanh"),
        ({"policy_kwargs": {"n_layers": 2, "core_kwargs": {"dropout": 0.1}}}, "update", "dropout"),
    ],
)
def test_a_path_that_does_not_cover_the_policy_says_why(kwargs: dict, path: str, reason: str) -> None:
    model = make_model(**kwargs)
    choice = getattr(model.fast_path_plan(), path)
    assert not choice.used and any(reason in r for r in choice.reasons), choice
    model.learn(48)  # and training runs on the definition's path


def test_training_follows_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the plan says the one-call minibatch runs, train() takes it; when it says not, train() does not."""
    calls = []
    from rlgru.fast import update

    original = update.FusedUpdate.__call__

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(update.FusedUpdate, "__call__", counting)
    model = make_model()
    model.learn(48)
    assert calls, "the plan said the one-call minibatch runs"
    calls.clear()
    monkeypatch.setenv(update.DISABLE_ENV, "1")
    assert not model.fast_path_plan().update.used
    model.learn(48)
    assert not calls


@pytest.mark.parametrize("how", ["setting", "environment"])
def test_one_switch_turns_every_fast_path_off(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "environment":
        monkeypatch.setenv(NO_FAST_PATHS_ENV, "1")
        model = make_model()
    else:
        model = make_model(fast_paths=False)
    plan = model.fast_path_plan()
    assert not plan.enabled and not any(choice.used for choice in plan.choices)
    assert plan.summary().startswith("fast paths: all off")
    policy = model.policy
    x = th.zeros(4, 2, policy.actor_core.input_size)
    assert not policy.actor_core.uses_kernel(x), "the cores' compiled kernels are fast paths too"
    assert policy._fused_act() is None
    assert model.rollout_buffer.cut_at_resets, "without the kernel the buffer cuts sequences at resets"
    model.learn(48)


def test_the_setting_survives_save_and_load(tmp_path: Path) -> None:
    model = make_model(fast_paths=False)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip")
    assert not loaded.fast_path_plan().enabled
    assert not loaded.policy.actor_core.compiled_kernels


def test_a_kernel_that_could_not_be_built_is_named_with_its_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_model()
    kernel = fused_gru.KERNEL
    monkeypatch.setattr(kernel, "state", {"done": True, "ok": False, "error": "RuntimeError: no C++ compiler"})
    plan = plan_fast_paths(model.policy, model.policy.optimizer)
    core = plan.cores[0]
    assert not core.used and "could not be built (RuntimeError: no C++ compiler)" in core.reasons[0]
    assert plan.costs and "results/fallback_speed.md" in plan.costs[0]
    assert "cost:" in plan.summary()


def test_rlgru_train_prints_the_plan_and_keeps_it_in_the_run_directory(tmp_path: Path, capsys) -> None:
    from rlgru.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(
        "env: {id: rlgru/RepeatFirst-Easy-v0, n_envs: 2}\nalgorithm: {n_steps: 8, batch_size: 16, n_epochs: 1}\n"
        "policy: {hidden_size: 8}\ntraining: {total_timesteps: 32}\nevaluation: {episodes: 1, n_envs: 1}\n"
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("fast paths:")]
    recorded = json.loads((tmp_path / "run" / "fast_paths.json").read_text())
    assert printed == [recorded["summary"]]
    assert {p["name"] for p in recorded["paths"]} >= {"fused heads", "one-call minibatch", "direct fused Adam"}


def test_every_environment_switch_is_in_the_documented_table() -> None:
    """Every ``RLGRU_*`` variable the code reads appears in docs/environment_switches.md, and nothing else does."""
    read = set()
    for path in [*REPO.joinpath("rlgru").rglob("*.py"), *REPO.joinpath("rlgru").rglob("*.h")]:
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r'"(RLGRU_[A-Z_]+)"', text))  # names as strings: what os.environ / getenv read
    read -= {"RLGRU_CELL_SOURCE", "RLGRU_CELL_OPS", "RLGRU_PPO_OPS"}  # C++ macros, not variables
    from rlgru.cores import fused_lstm, scan

    read |= {kernel.disable_env for kernel in (fused_gru.KERNEL, fused_lstm.KERNEL, scan.KERNEL, fused_heads.KERNEL)}
    table = (REPO / "docs" / "environment_switches.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\|\s*`(RLGRU_[A-Z_]+)", table, re.MULTILINE))
    assert read, "found no switches: the scan is broken"
    assert read <= documented, f"undocumented: {sorted(read - documented)}"
    assert NO_FAST_PATHS_ENV in documented
