"""A core defined outside rlgru trains without editing rlgru: by class, by registered name, and from a YAML config.

The core is the docs' example (``examples/user_core.py``, shown in docs/cores.md), loaded from its own directory, not
from the package.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3.common.env_util import make_vec_env

from rlgru import RecurrentPPO
from rlgru.cli import main
from rlgru.cores import core_names, make_core, register_core, registry
from tests.helpers import RandomEpisodeEnv
from tests.test_recurrence_consistency import assert_replay_matches_rollout, collect

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CORES_PAGE = Path(__file__).resolve().parents[1] / "docs" / "cores.md"


@pytest.fixture()
def user_core(monkeypatch: pytest.MonkeyPatch) -> type:
    """``user_core:LeakyCore`` importable the way a user's own module is, and the registry restored afterwards."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(registry, "_user_cores", {})
    monkeypatch.delitem(sys.modules, "user_core", raising=False)
    import user_core

    return user_core.LeakyCore


def small_model(core: object, **policy_kwargs: object) -> RecurrentPPO:
    env = make_vec_env(RandomEpisodeEnv, n_envs=3, seed=1)
    return RecurrentPPO("MlpPolicy", env, n_steps=20, batch_size=24, max_seq_len=7, seed=0,
                        policy_kwargs={"core": core, "hidden_size": 8, "net_arch": [8], **policy_kwargs})


def test_docs_show_the_example_core_verbatim() -> None:
    code = (EXAMPLES / "user_core.py").read_text()
    body = code[code.index("class LeakyCore"):].strip()
    assert body in CORES_PAGE.read_text(), "docs/cores.md's example core must be examples/user_core.py's"


@pytest.mark.parametrize("how", ["class", "path", "registered name"])
def test_user_core_trains_saves_and_predicts_through_the_python_api(user_core: type, how: str, tmp_path: Path) -> None:
    if how == "registered name":
        register_core("leaky", user_core)
        assert "leaky" in core_names()
    spec = {"class": user_core, "path": "user_core:LeakyCore", "registered name": "leaky"}[how]
    model = small_model(spec, core_kwargs={"leak": 0.25})
    assert isinstance(model.policy.actor_core, user_core) and model.policy.actor_core.leak == 0.25
    assert model.policy.native_resets, "a core with recur() replays uncut lanes"
    model.learn(120)
    obs = model.env.reset()
    actions, state = model.predict(obs, state=None, episode_start=np.ones(3), deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", device="cpu")
    assert type(loaded.policy.actor_core).__name__ == "LeakyCore" and loaded.policy.actor_core.leak == 0.25
    again, again_state = loaded.predict(obs, state=None, episode_start=np.ones(3), deterministic=True)
    np.testing.assert_array_equal(actions, again)
    np.testing.assert_allclose(state, again_state, atol=1e-6)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("hidden_reset", ["episode", "trial"])
def test_user_core_first_epoch_logprobs_match_rollout(user_core: type, shared: bool, hidden_reset: str) -> None:
    env = make_vec_env(RandomEpisodeEnv, n_envs=3, seed=1)
    model = RecurrentPPO("MlpPolicy", env, n_steps=20, batch_size=24, max_seq_len=7, seed=0,
                         hidden_reset=hidden_reset, policy_kwargs={"core": user_core, "hidden_size": 8,
                                                                   "n_layers": 2, "shared_core": shared})
    collect(model, n_rollouts=3)
    assert_replay_matches_rollout(model)


def test_user_core_settings_are_validated(user_core: type) -> None:
    with pytest.raises(ValueError, match=r"leek: unknown setting \(did you mean 'leak'\?\)"):
        make_core(user_core, 3, 4, leek=0.5)
    with pytest.raises(ValueError, match="leak: Input should be a valid number"):
        make_core("user_core:LeakyCore", 3, 4, leak="high")
    with pytest.raises(ValueError, match="built in"):
        register_core("gru", user_core)
    with pytest.raises(ValueError, match="not a subclass of rlgru.cores.MemoryCore"):
        make_core("collections:OrderedDict", 3, 4)


def test_user_core_trains_from_a_yaml_config(user_core: type, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = {
        "seed": 0,
        "env": {"id": "rlgru/RepeatFirst-Easy-v0", "n_envs": 2},
        "algorithm": {"n_steps": 16, "batch_size": 32, "n_epochs": 2},
        "policy": {"core": "user_core:LeakyCore", "core_kwargs": {"leak": 0.75}, "hidden_size": 8},
        "training": {"total_timesteps": 64, "checkpoint_freq": 0},
        "evaluation": {"episodes": 2},
    }
    path = tmp_path / "leaky.yaml"
    path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "run"
    assert main(["train", str(path), "--run-dir", str(run_dir), "--no-progress"]) == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["policy"]["core"] == "user_core:LeakyCore" and saved["policy"]["core_kwargs"] == {"leak": 0.75}
    model = RecurrentPPO.load(run_dir / "model.zip", device="cpu")
    assert type(model.policy.actor_core).__name__ == "LeakyCore" and model.policy.actor_core.leak == 0.75
    assert json.loads((run_dir / "eval.json").read_text())["episodes"] == 2

    config["policy"]["core_kwargs"] = {"leek": 0.75}
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["train", str(path), "--run-dir", str(tmp_path / "bad"), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert re.search(r"policy\.core_kwargs\.leek: unknown setting \(did you mean 'leak'\?\)", error), error
    assert "Traceback" not in error


def test_a_suite_can_sweep_a_user_core_beside_the_built_in_ones(user_core: type, tmp_path: Path) -> None:
    from rlgru.bench.suite import expand, load_suite

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "base": {"training": {"total_timesteps": 64}},
        "tasks": [{"name": "t", "env": {"id": "rlgru/RepeatFirst-Easy-v0"}}],
        "cores": ["gru", "user_core:LeakyCore"], "seeds": [0],
    }))
    runs = {run.run_id: run for run in expand(load_suite(path))}
    assert set(runs) == {"t-gru-s0", "t-LeakyCore-s0"}, "run ids and folder names stay plain"
    assert runs["t-LeakyCore-s0"].config.policy.core == "user_core:LeakyCore"
    assert runs["t-LeakyCore-s0"].core == "user_core:LeakyCore", "results and reports name the core as configs do"
