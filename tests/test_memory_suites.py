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


def smoke(config: Path, run: Path, steps: int) -> None:
    arguments = ["train", str(config), "--run-dir", str(run), "--no-progress"]
    for override in (f"training.total_timesteps={steps}", "evaluation.episodes=2", "evaluation.freq=0"):
        arguments += ["--set", override]
    assert main(arguments) == 0
    assert (run / "model.zip").is_file() and (run / "eval.json").is_file()
    assert main(["eval", str(run), "--episodes", "1"]) == 0


def test_minigrid_memory_config_trains_through_rlgru_train(tmp_path: Path) -> None:
    needs("minigrid")
    smoke(CONFIGS / "minigrid" / "memory_s7.yaml", tmp_path / "run", 2048)  # one rollout: 16 envs x 128


def test_memory_gym_config_trains_through_rlgru_train(tmp_path: Path) -> None:
    needs("memory_gym")
    smoke(CONFIGS / "memory_gym" / "mortar_mayhem_grid.yaml", tmp_path / "run", 1024)  # one rollout: 8 x 128
