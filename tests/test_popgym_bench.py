"""The POPGym suite: it validates and expands, runs POPGym's own wrappers, computes POPGym's MMER, and sweeps end to
end; the published reference names only real POPGym tasks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

from rlgru.bench.popgym_reference import (
    DIFFERENCES,
    MISSING,
    PUBLISHED,
    TASKS,
    mmer,
    plain_env_id,
    published,
    run_mmer,
)
from rlgru.bench.suite import expand, load_suite
from rlgru.cli import main
from rlgru.env_plumbing.popgym_wrappers import PAPER_WRAPPERS, POPGymWrappers
from rlgru.harness.env_factory import make_env

SUITE = Path(__file__).resolve().parents[1] / "configs" / "bench" / "popgym.yaml"
ADAPTER = "rlgru.env_plumbing.popgym_wrappers:POPGymWrappers"


def test_suite_expands_to_four_tasks_by_two_cores_by_five_seeds_with_ten_evaluations_each() -> None:
    runs = expand(load_suite(SUITE))
    assert len(runs) == 4 * 2 * 5
    assert {run.core for run in runs} == {"gru", "lstm"} and {run.seed for run in runs} == {0, 1, 2, 3, 4}
    assert {plain_env_id(run.config.env.id) for run in runs} == set(TASKS)
    for run in runs:
        # POPGym's max is read from a curve: at least 10 evaluations during training, then the final one
        assert run.config.evaluation.freq * 11 <= run.budget, run.run_id
        assert run.config.policy.core == run.core
        (wrapper,) = run.config.env.wrappers
        assert (wrapper.name, tuple(wrapper.kwargs["wrappers"])) == (ADAPTER, PAPER_WRAPPERS)


def test_every_reference_task_is_a_registered_popgym_id() -> None:
    pytest.importorskip("popgym")
    assert set(TASKS) <= set(gym.registry)
    assert {entry.env_id for entry in PUBLISHED} <= set(TASKS)
    assert all(entry.core in ("gru", "lstm") and entry.where and entry.via for entry in PUBLISHED)


def test_observation_carries_the_previous_action_and_the_first_step_flag() -> None:
    pytest.importorskip("popgym")
    config = next(run.config for run in expand(load_suite(SUITE)) if run.task == "RepeatPreviousEasy")
    env = make_env(config.env, seed=0, n_envs=1)
    # POPGym's order, flattened to one-hot: suit of the card (4), previous action (4), is-first-step flag (2)
    first = env.reset()[0]
    assert first.shape == (10,)
    assert first[4:8].tolist() == [1, 0, 0, 0] and first[8:].tolist() == [0, 1]  # null action 0 at the first step
    for action in (2, 3, 1):
        observation = env.step(np.array([action]))[0][0]
        assert int(np.argmax(observation[4:8])) == action and observation[8:].tolist() == [1, 0]
    env.close()


def test_adapter_refuses_an_env_that_is_not_popgyms() -> None:
    pytest.importorskip("popgym")
    with pytest.raises(TypeError, match="POPGym env"):
        POPGymWrappers(gym.make("CartPole-v1"))


def _result(task: str, core: str, seed: int, curve: list[list[Any]], status: str = "ok") -> dict[str, Any]:
    return {
        "run_id": f"{task}-{core}-s{seed}",
        "task": task,
        "core": core,
        "seed": seed,
        "status": status,
        "error": None if status == "ok" else "RuntimeError: boom",
        "curve": curve,
    }


def test_mmer_is_each_runs_best_evaluation_then_mean_and_std_over_seeds() -> None:
    results = [
        _result("RP", "gru", 0, [[100, -0.5, 1.0], [200, 0.25, 2.0], [300, 0.0, 3.0]]),  # best in the middle
        _result("RP", "gru", 1, [[100, 0.75, 1.0], [200, 0.5, None]]),
        _result("RP", "gru", 2, [[100, 0.9, 1.0]], status="failed"),  # a figure of a failed run is not trusted
        _result("RP", "gru", 3, []),  # finished, but never evaluated
        _result("RP", "lstm", 0, [[100, -1.0, 1.0], [200, -0.2, 2.0]]),
    ]
    summary = mmer(results)
    gru = summary[("RP", "gru")]
    assert gru.per_run == {"RP-gru-s0": 0.25, "RP-gru-s1": 0.75}
    assert gru.n == 2 and gru.mean == pytest.approx(0.5)
    assert gru.std == pytest.approx(math.sqrt(0.125))  # sample std of 0.25 and 0.75
    assert set(gru.excluded) == {"RP-gru-s2", "RP-gru-s3"}
    assert gru.excluded["RP-gru-s2"].startswith("failed") and "no evaluation" in gru.excluded["RP-gru-s3"]
    lstm = summary[("RP", "lstm")]
    assert (lstm.mean, lstm.std, lstm.n) == (pytest.approx(-0.2), None, 1)  # one run: no spread to report
    assert json.loads(json.dumps(gru.as_dict()))["per_run"] == gru.per_run


def test_a_core_whose_runs_all_failed_has_no_mmer_rather_than_zero() -> None:
    summary = mmer([_result("CR", "lstm", seed, [], status="failed") for seed in range(3)])
    assert summary[("CR", "lstm")].mean is None and summary[("CR", "lstm")].n == 0
    assert len(summary[("CR", "lstm")].excluded) == 3
    assert run_mmer(_result("CR", "gru", 0, [[10, float("nan"), None], [20, -0.3, None]])) == pytest.approx(-0.3)


def test_published_lookup_returns_found_numbers_and_none_for_the_missing() -> None:
    for entry in PUBLISHED:
        assert published(f"popgym:{entry.env_id}", entry.core) == entry
        assert (entry.env_id, entry.core) not in MISSING
    for env_id, core in MISSING:
        assert published(env_id, core) is None
    assert len(PUBLISHED) + len(MISSING) == 2 * len(TASKS)
    assert "15M" in DIFFERENCES and "Hyper-parameters" in DIFFERENCES and "evaluation" in DIFFERENCES


def test_tiny_popgym_bench_run_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("popgym")
    suite = yaml.safe_load(SUITE.read_text())
    suite.update(
        name="popgym-tiny",
        tasks=[{"name": "RepeatPreviousEasy", "env": {"id": "popgym:popgym-RepeatPreviousEasy-v0"}}],
        cores=["gru"],
        seeds=[0],
    )
    suite["base"].update(
        algorithm={"n_steps": 16, "batch_size": 32, "n_epochs": 1},
        policy={"hidden_size": 8, "net_arch": [8]},
        training={"total_timesteps": 320, "checkpoint_freq": 0},
        evaluation={"episodes": 2, "freq": 32},
    )
    suite["base"]["env"]["n_envs"] = 2
    path = tmp_path / "popgym-tiny.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    result = json.loads((out / "runs" / "RepeatPreviousEasy-gru-s0" / "result.json").read_text())
    assert result["status"] == "ok" and len(result["curve"]) >= 10
    summary = mmer([result])[("RepeatPreviousEasy", "gru")]
    assert summary.n == 1 and -1.0 <= summary.mean <= 1.0  # POPGym scales every episode's return into [-1, 1]


def test_report_puts_our_mmer_beside_the_published_figures(tmp_path: Path) -> None:
    """The section shows what was found (marked when unverified), says what was not, and what differs."""
    from rlgru.bench.report import write_report

    for task, env_id in (("CartPole", "popgym-PositionOnlyCartPoleEasy-v0"), ("First", "popgym-RepeatFirstEasy-v0")):
        for core, best in (("gru", 0.9), ("lstm", 0.5)):
            for seed in range(3):
                run = tmp_path / "runs" / f"{task}-{core}-s{seed}"
                run.mkdir(parents=True)
                curve = [[100, -0.5, 1.0], [200, best + 0.01 * seed, 2.0], [300, best - 0.2, 3.0]]
                result = {
                    "run_id": run.name,
                    "task": task,
                    "core": core,
                    "seed": seed,
                    "status": "ok",
                    "env_id": f"popgym:{env_id}",
                    "timesteps": 300,
                    "final_return": best - 0.2,
                    "curve": curve,
                    "task_info": {"optimal_return": None, "memoryless_return": None, "horizon": None},
                }
                (run / "result.json").write_text(json.dumps(result))
    readme = write_report(tmp_path, n_resamples=100).read_text()
    assert "## Beside published results: POPGym" in readme
    # MMER is the best point of each curve (0.90, 0.91, 0.92), not the final return
    assert "| CartPole | StatelessCartPoleEasy | 0.910 ± 0.010 (n=3) | not found | 0.510 ± 0.010 (n=3) |" in readme
    assert "1.000 ± 0.000 †" in readme and "† LSTM StatelessCartPoleEasy: Appendix Table 3" in readme
    assert "RepeatFirstEasy GRU" in readme.split("*Not found:*")[1]
    assert "POPGym, GRU vs LSTM in our runs: GRU better.** P(GRU > LSTM) on per-run MMER = 1.00" in readme
    assert "- Budget: the paper trains 10M-15M environment steps" in readme
