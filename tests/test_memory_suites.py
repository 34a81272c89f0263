"""MiniGrid's and Memory Gym's memory tasks: shipped configs, install hints, ``rlgru envs``, and a smoke run per suite.

The smoke runs train a shipped config for a couple of thousand steps through ``rlgru train``; each is skipped, with
the line that installs its suite, when the suite's package is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rlgru.cli import main
from rlgru.harness.agent import build_agent
from rlgru.harness.config import load_config
from rlgru.harness.env_factory import make_env
from rlgru.harness.suites import MEMORY_GYM_INSTALL, SUITES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SUITE_CONFIGS = {"minigrid": sorted((CONFIGS / "minigrid").glob("*.yaml")),
                 "memory_gym": sorted((CONFIGS / "memory_gym").glob("*.yaml"))}  # fmt: skip
ALL = [path for paths in SUITE_CONFIGS.values() for path in paths]


def needs(package: str) -> None:
    suite = next(suite for suite in SUITES if suite.package == package)
    if not suite.installed:
        pytest.skip(f"{suite.name} is not installed ({suite.install})")


def test_a_config_for_every_suite_task() -> None:
    names = {path.stem for path in ALL}
    assert names == {f"memory_s{size}" for size in (7, 9, 11)} | {"mortar_mayhem_grid", "mystery_path_grid"}


@pytest.mark.parametrize("core", ["gru", "lstm"])  # the GRU as shipped, the LSTM with --set policy.core=lstm
@pytest.mark.parametrize("path", ALL, ids=[path.stem for path in ALL])
def test_shipped_config_validates_and_builds_its_agent(path: Path, core: str) -> None:
    assert load_config(path).policy.core == "gru"
    config = load_config(path, [f"policy.core={core}"])
    package = config.env.id.partition(":")[0]
    assert path.parent.name == package
    needs(package)
    env = make_env(config.env, seed=0, n_envs=1)
    try:
        model = build_agent(config, env, tensorboard_log=None, where=path)
    finally:
        env.close()
    expected = "GridCNN" if package == "minigrid" else "NatureCNN"  # a 7x7 symbolic view; 84x84 RGB images
    assert type(model.policy.features_extractor).__name__ == expected


@pytest.mark.parametrize("package", ["minigrid", "memory_gym"])
def test_config_of_a_suite_not_installed_names_what_to_install(
    package: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # imports of it fail, find_spec finds nothing
    config = SUITE_CONFIGS[package][0]
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    install = "pip install 'rlgru[minigrid]'" if package == "minigrid" else MEMORY_GYM_INSTALL
    assert f"env.id: {'MiniGrid' if package == 'minigrid' else 'Memory Gym'} needs the {package!r} package" in err
    assert err.rstrip().endswith(install), err


def test_envs_lists_suite_tasks_or_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for suite in SUITES:
        if suite.installed:
            assert main(["envs"]) == 0
            out = capsys.readouterr().out
            listed = (
                "minigrid:MiniGrid-MemoryS7-v0" if suite.package == "minigrid" else "memory_gym:MysteryPath-Grid-v0"
            )
            assert f"{suite.name} memory tasks (" in out and f"    {listed}\n" in out
        monkeypatch.setitem(sys.modules, suite.package, None)
        assert main(["envs"]) == 0
        assert f"{suite.name} memory tasks: not installed; {suite.install}\n" in capsys.readouterr().out


def test_memory_gym_reset_options_are_checked_when_the_config_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs("memory_gym")
    config = SUITE_CONFIGS["memory_gym"][0]
    override = "env.wrappers=[{rlgru.env_plumbing.suite_wrappers:ResetOptions: {options: {command_cnt: [3]}}}]"
    assert main(["train", str(config), "--set", override, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "env.wrappers[0]: rlgru.env_plumbing.suite_wrappers:ResetOptions: the env refuses reset options" in err
    assert "command_cnt" in err and err.count("\n") == 1


def smoke(config: Path, run: Path, steps: int, eval_freq: int = 0) -> None:
    arguments = ["train", str(config), "--run-dir", str(run), "--no-progress"]
    for override in (f"training.total_timesteps={steps}", "evaluation.episodes=2", f"evaluation.freq={eval_freq}"):
        arguments += ["--set", override]
    assert main(arguments) == 0
    assert (run / "model.zip").is_file() and (run / "eval.json").is_file()
    assert main(["eval", str(run), "--episodes", "1"]) == 0


def test_minigrid_memory_config_trains_through_rlgru_train(tmp_path: Path) -> None:
    needs("minigrid")
    smoke(CONFIGS / "minigrid" / "memory_s7.yaml", tmp_path / "run", 2048)  # one rollout: 16 envs x 128


def test_memory_gym_config_trains_through_rlgru_train(tmp_path: Path) -> None:
    needs("memory_gym")
    # two rollouts of 8 x 128 with an evaluation between them: evaluation envs come and go beside the training ones
    smoke(CONFIGS / "memory_gym" / "mortar_mayhem_grid.yaml", tmp_path / "run", 2048, eval_freq=1024)


def test_closing_one_memory_gym_env_leaves_the_others_running() -> None:
    """Memory Gym's close ends pygame for the process; the env factory defers it to the last open env."""
    needs("memory_gym")
    from rlgru.harness.env_factory import EnvSpec

    spec = EnvSpec("memory_gym:MortarMayhem-Grid-v0")
    first, second = spec.make_base(), spec.make_base()
    first.reset(seed=0)
    second.reset(seed=0)
    first.close()
    first.close()  # a second close is not counted twice
    observation, _ = second.reset(seed=1)
    second.step(0)
    assert observation.shape == (84, 84, 3) and observation.any()
    second.close()


def test_downsample_image_averages_blocks_and_refuses_what_it_cannot_shrink() -> None:
    import gymnasium as gym
    import numpy as np

    from rlgru.env_plumbing.suite_wrappers import DownsampleImage

    class Frames(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (6, 4, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            return np.arange(72, dtype=np.uint8).reshape(6, 4, 3) * 3, {}

    wrapped = DownsampleImage(Frames(), factor=2)
    assert wrapped.observation_space.shape == (3, 2, 3) and wrapped.observation_space.dtype == np.uint8
    frame = Frames().reset()[0].astype(np.float64)
    expected = np.array([[[frame[2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c].mean() for c in range(3)]
                          for j in range(2)] for i in range(3)])
    np.testing.assert_array_equal(wrapped.reset()[0], np.rint(expected).astype(np.uint8))
    assert DownsampleImage(Frames(), factor=1).reset()[0].tolist() == Frames().reset()[0].tolist()
    with pytest.raises(ValueError, match="does not divide the image size 6x4"):
        DownsampleImage(Frames(), factor=3)
    with pytest.raises(ValueError, match="positive integer"):
        DownsampleImage(Frames(), factor=0)
    with pytest.raises(ValueError, match=r"\[H, W, C\] uint8"):
        DownsampleImage(gym.make("CartPole-v1"))
