"""Benchmark sweeps: suite expansion, bad suites, a real two-run local sweep, resume and failure recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rlgru.bench import runner
from rlgru.bench.suite import REFERENCE_CORE, SuiteConfig, deep_merge, expand, load_suite
from rlgru.bench.sweep import plan, run_sweep
from rlgru.cli import main
from rlgru.harness.errors import HarnessError

TINY_BASE = {
    "env": {"n_envs": 2},
    "algorithm": {"n_steps": 16, "batch_size": 16, "n_epochs": 1},
    "policy": {"hidden_size": 8, "net_arch": [8]},
    "training": {"total_timesteps": 64, "checkpoint_freq": 32},
    "evaluation": {"episodes": 2, "freq": 32},
}


def write_suite(directory: Path, **fields: object) -> Path:
    data = {"name": "tiny", "base": TINY_BASE, "tasks": [{"name": "tmaze", "env": {"id": "rlgru/TMaze-Easy-v0"}}],
            "cores": ["gru"], "seeds": [0], **fields}
    path = directory / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_expansion_is_tasks_by_budgets_by_seeds_by_cores_plus_reference(tmp_path: Path) -> None:
    suite = load_suite(write_suite(
        tmp_path,
        tasks=[{"name": "a", "env": {"id": "rlgru/TMaze-Easy-v0"}, "budgets": [64, 128], "horizon": "long"},
               {"name": "b", "env": {"id": "rlgru/RepeatFirst-v0", "env_kwargs": {"length": 12}},
                "overrides": {"algorithm": {"gamma": 0.5}}}],
        cores=["gru", "lstm", "rnn"], seeds=[0, 1], reference={"tasks": ["b"], "seeds": [1]},
    ))
    runs = expand(suite)
    assert len(runs) == 2 * 2 * 3 + 1 * 2 * 3 + 1
    assert len({run.run_id for run in runs}) == len(runs)
    by_id = {run.run_id: run for run in runs}
    # two budgets: the task label says which; one budget: the bare name
    labels = {run.task for run in runs}
    assert labels == {"a@64", "a@128", "b"}
    a_run = by_id["a@128-lstm-s1"]
    assert (a_run.config.policy.core, a_run.config.seed, a_run.config.training.total_timesteps) == ("lstm", 1, 128)
    assert a_run.horizon == "long" and a_run.config.algorithm.gamma == 0.99  # base default kept
    b_run = by_id["b-rnn-s0"]
    assert b_run.config.env.env_kwargs == {"length": 12} and b_run.config.algorithm.gamma == 0.5
    assert b_run.config.training.total_timesteps == 64 and b_run.config.env.n_envs == 2
    reference = [run for run in runs if run.core == REFERENCE_CORE]
    assert [r.run_id for r in reference] == [f"b-{REFERENCE_CORE}-s1"]
    assert reference[0].config.algorithm.implementation == "sb3-contrib"
    assert reference[0].config.policy.core == "lstm"


def test_a_task_may_take_more_seeds_than_the_suite(tmp_path: Path) -> None:
    suite = load_suite(write_suite(
        tmp_path,
        tasks=[{"name": "a", "env": {"id": "rlgru/TMaze-Easy-v0"}, "seeds": [0, 1, 2]},
               {"name": "b", "env": {"id": "rlgru/TMaze-Easy-v0"}}],
        seeds=[0, 1],
    ))
    assert sorted(run.run_id for run in expand(suite)) == ["a-gru-s0", "a-gru-s1", "a-gru-s2", "b-gru-s0", "b-gru-s1"]
    with pytest.raises(HarnessError, match="seeds and cores must not repeat"):
        load_suite(write_suite(tmp_path, tasks=[{"name": "a", "env": {"id": "rlgru/TMaze-Easy-v0"}, "seeds": [3, 3]}]))


def test_run_specs_survive_the_trip_to_a_worker(tmp_path: Path) -> None:
    run = expand(load_suite(write_suite(tmp_path)))[0]
    assert type(run).from_dict(json.loads(json.dumps(run.as_dict()))) == run


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = deep_merge(base, {"a": {"y": [3]}, "c": 2})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"cores": ["gru", "transformer"]}, "cores[1]"),
        ({"seeds": [0, 0]}, "must not repeat"),
        ({"tasks": []}, "tasks"),
        ({"reference": {"tasks": ["nope"]}}, "nope"),
        ({"tasks": [{"name": "t", "env": {"id": "rlgru/TMaze-Easy-v0"}, "budget": 5}]}, "did you mean 'budgets'"),
        ({"tasks": [{"name": "t", "env": {"id": "rlgru/TMaze-Easy-v0"},
                     "overrides": {"algorithm": {"n_steps": "many"}}}]}, "algorithm.n_steps"),
    ],
)
def test_bad_suites_exit_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: dict,
                                          fragment: str) -> None:
    path = write_suite(tmp_path, **fields)
    code = main(["bench", str(path), "--out", str(tmp_path / "out"), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and fragment in err, err


def test_reference_rows_must_be_plain_lstm(tmp_path: Path) -> None:
    path = write_suite(tmp_path, base=deep_merge(TINY_BASE, {"policy": {"hidden_reset": "trial"}}), reference={})
    with pytest.raises(HarnessError, match="hidden_reset"):
        expand(load_suite(path))


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real local sweep of two runs (GRU and LSTM) in a two-process pool."""
    directory = tmp_path_factory.mktemp("sweep")
    suite = write_suite(directory, cores=["gru", "lstm"])
    out = directory / "out"
    assert main(["bench", str(suite), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    return suite, out


def test_two_run_local_sweep_writes_results_and_report(swept: tuple[Path, Path]) -> None:
    _, out = swept
    results = {p.parent.name: json.loads(p.read_text()) for p in (out / "runs").glob("*/result.json")}
    assert set(results) == {"tmaze-gru-s0", "tmaze-lstm-s0"}
    for result in results.values():
        assert result["status"] == "ok" and result["timesteps"] == 64
        assert result["curve"][-1][0] == 64 and len(result["curve"]) >= 2
        assert result["params"] > result["recurrent_params"] > 0
        assert result["steps_per_second"] > 0 and result["inference_latency_us"] > 0 and result["peak_memory_mb"] > 0
        assert result["task_info"] == {
            "optimal_return": 1.0,
            "memoryless_return": 0.5,
            "horizon": None,
            "family": None,
            "memory_length": None,
        }
        assert result["sizing"] == "hidden"
        assert all(len(point) == 3 and point[2] > 0 for point in result["curve"])  # training seconds at each point
    # same hidden size: the GRU has three gate blocks where the LSTM has four
    assert results["tmaze-gru-s0"]["recurrent_params"] * 4 == results["tmaze-lstm-s0"]["recurrent_params"] * 3
    header = (out / "runs.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["task", "core", "variant", "hidden_size", "seed"]
    assert (out / "report.html").is_file()
    assert {"final_return", "best_return", "wall_seconds", "steps_per_second", "params"} <= set(header)
    assert (out / "learning_curves.csv").is_file() and (out / "curves_tmaze.png").is_file()
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["backend"] == "local" and meta["workers"] == 2 and meta["runs"] == 2
    assert "IQM" in (out / "README.md").read_text()


def test_rerun_skips_completed_runs(swept: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    suite, out = swept
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}
    assert main(["bench", str(suite), "--out", str(out), "--no-progress"]) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_changed_suite_refuses_the_old_out_dir(swept: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = swept
    changed = write_suite(tmp_path, cores=["gru"], base=deep_merge(TINY_BASE, {"policy": {"hidden_size": 16}}))
    with pytest.raises(HarnessError, match="policy.hidden_size"):
        plan(changed, out)


def test_interrupted_run_resumes_from_its_checkpoint_and_failed_runs_are_retried(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, tasks=[
        {"name": "ok", "env": {"id": "rlgru/TMaze-Easy-v0"}},
        {"name": "broken", "env": {"id": "rlgru/TMaze-Easy-v0", "env_kwargs": {"length": -3}}},
    ])
    out = tmp_path / "out"
    [ok_spec, broken_spec] = plan(suite, out)[1]
    # a run killed after its first checkpoint: train half the budget by hand, then drop the later files
    half = runner.execute(ok_spec.as_dict(), str(out))
    assert half["status"] == "ok"
    run = runner.run_dir_of(out, ok_spec.run_id)
    for later in ("result.json", "model.zip", "eval.json"):
        (run.path / later).unlink()
    for checkpoint in run.list_checkpoints():
        if checkpoint.steps > 32:
            checkpoint.model.unlink()
    assert [c.steps for c in run.list_checkpoints()] == [32]

    outcome = run_sweep(suite, out, workers=2)
    results = {r["run_id"]: r for r in outcome.completed}
    assert results[ok_spec.run_id]["status"] == "ok"
    assert results[ok_spec.run_id]["resumed_from"] == 32 and results[ok_spec.run_id]["timesteps"] == 64
    failed = results[broken_spec.run_id]
    assert failed["status"] == "failed" and "length" in failed["error"]
    assert (runner.run_dir_of(out, broken_spec.run_id).path / "result.json").is_file()
    # the failure is recorded, not a reason to stop, and the next sweep tries it again
    assert [spec.run_id for spec in plan(suite, out)[1]] == [broken_spec.run_id]


def test_report_command_needs_a_results_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a directory written by `rlgru bench`" in capsys.readouterr().err


def test_ray_backend_runs_the_same_sweep(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    suite = write_suite(tmp_path)
    outcome = run_sweep(suite, tmp_path / "out", backend="ray", workers=1)
    assert [r["status"] for r in outcome.completed] == ["ok"]
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["backend"] == "ray"


def test_suite_models_forbid_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        SuiteConfig.model_validate({"tasks": [{"name": "a", "env": {}}], "colors": 1})
