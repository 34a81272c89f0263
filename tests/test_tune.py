"""``rlgru tune``: a study runs exactly the trials asked for, resumes, survives killed workers and drivers, records
failed and pruned trials, and leaves trials.csv, a best.yaml that trains as it is, and a report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from rlgru.cli import main
from rlgru.harness.config import load_config
from rlgru.tune import trial_run
from rlgru.tune.driver import TuneOptions, run_study
from rlgru.tune.storage import default_storage_url, open_storage
from rlgru.tune.trial_run import TrialSpec, execute_trial
from tests.fault_tools import FAULT_CONFIG, lock_held_elsewhere, lose_a_ray_node_mid_work

SPACE = {
    "algorithm.learning_rate": {"log_uniform": [1e-4, 1e-2]},
    "algorithm.n_epochs": {"int": [1, 3]},
    "policy.net_arch": {"choice": [[8], [8, 8]]},
}


def write_config(directory: Path, name: str = "study", space: dict | None = None, **sections: Any) -> Path:
    data: dict[str, Any] = {
        key: dict(value) if isinstance(value, dict) else value for key, value in FAULT_CONFIG.items()
    }
    data["training"] = {**data["training"], "total_timesteps": 128}
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    data["tune"] = {"space": SPACE if space is None else space, "evaluations": 2}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def read_trials(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def study_of(out: Path, name: str = "study") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(default_storage_url(out)))


def test_a_study_runs_the_trials_asked_for_and_resumes_only_what_is_missing(tmp_path: Path) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    first = run_study(TuneOptions(config=config, out_dir=out, trials=3, workers=2), report=lambda line: None)
    assert (first.counted, first.ran) == (3, 3)
    rows = read_trials(out)
    assert [row["state"] for row in rows] == ["complete"] * 3
    for row in rows:
        run = out / row["run_dirs"]
        assert (run / "eval.json").is_file() and (run / "config.yaml").is_file()
        assert row["policy.net_arch"] in ("[8]", "[8, 8]") and 1 <= int(row["algorithm.n_epochs"]) <= 3
        # the run's own config reproduces the trial: the sampled values, not the study's
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["algorithm"]["n_epochs"] == int(row["algorithm.n_epochs"])
    second = run_study(TuneOptions(config=config, out_dir=out, trials=5, workers=2), report=lambda line: None)
    assert (second.counted, second.ran) == (5, 2), "--trials 5 after 3 done runs 2 more"
    assert len(read_trials(out)) == 5
    third = run_study(TuneOptions(config=config, out_dir=out, trials=5, workers=2), report=lambda line: None)
    assert third.ran == 0


def test_best_yaml_is_a_config_that_trains_as_it_is(tmp_path: Path) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    run_study(TuneOptions(config=config, out_dir=out, trials=2), report=lambda line: None)
    best = study_of(out).best_trial
    tuned = load_config(out / "best.yaml")
    assert tuned.tune is None and tuned.seed == 0
    assert tuned.algorithm.learning_rate == pytest.approx(best.params["algorithm.learning_rate"])
    assert tuned.algorithm.n_epochs == best.params["algorithm.n_epochs"]
    assert str(tuned.policy.net_arch) == best.params["policy.net_arch"]
    assert tuned.evaluation.freq == FAULT_CONFIG["evaluation"]["freq"], "the study's evaluation settings, not tuning's"
    assert main(["train", str(out / "best.yaml"), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    for name in ("report.html", "report.md", "history.png", "parameters.png", "best_params.json"):
        assert (out / name).is_file(), name


def test_a_killed_worker_fails_its_trial_which_is_retried_in_its_own_run_directory(tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    config = write_config(
        tmp_path,
        env={"wrappers": [{"tests.fault_envs:KillOnce": {"marker": str(marker), "at_step": 50}}]},
        training={"total_timesteps": 256, "checkpoint_freq": 32},
    )
    out = tmp_path / "out"
    outcome = run_study(TuneOptions(config=config, out_dir=out, trials=2), report=lambda line: None)
    assert marker.is_file(), "a worker was killed"
    rows = {int(row["number"]): row for row in read_trials(out)}
    killed = rows[0]
    assert killed["state"] == "failed" and "SIGKILL" in killed["error"] and "retried" in killed["error"]
    assert killed["counted"] == "no"
    [retry] = [row for row in rows.values() if row["retry_of"] == "0"]
    assert retry["state"] == "complete" and retry["run_dirs"] == killed["run_dirs"] == "trials/trial-0000-s0"
    assert "resuming from" in (out / retry["run_dirs"] / "train.log").read_text(), "resumed, not restarted"
    assert outcome.counted == 2
    states = [trial.state for trial in study_of(out).trials]
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.WAITING not in states


def test_trials_a_dead_driver_left_running_are_failed_and_retried(tmp_path: Path) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    run_study(TuneOptions(config=config, out_dir=out, trials=1), report=lambda line: None)
    orphan = study_of(out).ask(
        {"algorithm.learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    )
    orphan.set_user_attr("attempt", 1)
    orphan.set_user_attr("run_of", orphan.number)  # as the driver marks every trial it starts
    outcome = run_study(TuneOptions(config=config, out_dir=out, trials=2), report=lambda line: None)
    rows = {int(row["number"]): row for row in read_trials(out)}
    assert rows[orphan.number]["state"] == "failed" and "driver died" in rows[orphan.number]["error"]
    assert [row["retry_of"] for row in rows.values()].count(str(orphan.number)) == 1
    assert outcome.counted == 2
    assert all(trial.state != optuna.trial.TrialState.RUNNING for trial in study_of(out).trials)


def test_a_trial_whose_run_fails_is_recorded_with_its_error_and_the_study_goes_on(tmp_path: Path) -> None:
    config = write_config(tmp_path, env={"wrappers": [{"tests.fault_envs:FailingEnv": {"at_step": 20}}]})
    out = tmp_path / "out"
    outcome = run_study(TuneOptions(config=config, out_dir=out, trials=2, workers=2), report=lambda line: None)
    rows = read_trials(out)
    assert [row["state"] for row in rows] == ["failed", "failed"]
    assert all("this env breaks on purpose" in row["error"] for row in rows)
    assert outcome.counted == 2 and outcome.best is None
    assert not (out / "best.yaml").exists()


def test_a_pruned_trial_stops_at_the_evaluation_the_pruner_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reports each periodic evaluation; a pruner that rejects everything stops the run at the first."""
    out = tmp_path / "out"
    out.mkdir()
    storage = default_storage_url(out)
    study = optuna.create_study(study_name="s", storage=open_storage(storage), direction="maximize")
    trial = study.ask()
    monkeypatch.setattr(trial_run, "make_pruner", lambda *args, **kwargs: optuna.pruners.ThresholdPruner(lower=10.0))
    base = {key: value for key, value in FAULT_CONFIG.items()}
    spec = TrialSpec(trial.number, trial._trial_id, trial.number, {}, base, 1, 4, None, str(out), storage, "s", "x")
    result = execute_trial(spec.as_dict())
    assert result["state"] == "pruned" and result["pruned_at"] == 64, result
    assert study.trials[0].intermediate_values.keys() == {64}
    assert not (out / "trials" / "trial-0000-s0" / "eval.json").exists(), "training stopped there"


def test_two_workers_never_write_the_same_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = out / "trials" / "trial-0000-s0"
    run.mkdir(parents=True)
    with lock_held_elsewhere(run / "run.lock"):
        storage = default_storage_url(out)
        study = optuna.create_study(study_name="s", storage=open_storage(storage), direction="maximize")
        trial = study.ask()
        spec = TrialSpec(0, trial._trial_id, 0, {}, dict(FAULT_CONFIG), 1, 2, None, str(out), storage, "s", "none")
        result = execute_trial(spec.as_dict())
        assert result["state"] == "failed" and "RunInUseError" in result["error"]
        assert list(run.iterdir()) == [run / "run.lock"], "nothing written beside the other worker"


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "grid"])
def test_every_sampler_runs_a_study(tmp_path: Path, sampler: str) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    outcome = run_study(TuneOptions(config=config, out_dir=out, trials=2, sampler=sampler), report=lambda line: None)
    assert outcome.counted == 2 and all(row["state"] == "complete" for row in read_trials(out))


def test_seeds_per_trial_average_into_the_objective(tmp_path: Path) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    run_study(TuneOptions(config=config, out_dir=out, trials=1, seeds=2, pruner="none"), report=lambda line: None)
    [row] = read_trials(out)
    assert row["run_dirs"] == "trials/trial-0000-s0 trials/trial-0000-s1"
    trial = study_of(out).trials[0]
    assert trial.value == pytest.approx(sum(trial.user_attrs["seed_values"]) / 2)
    seeds = [yaml.safe_load((out / d / "config.yaml").read_text())["seed"] for d in row["run_dirs"].split()]
    assert seeds == [0, 1]


def test_the_cli_prints_progress_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    assert main(["tune", str(config), "--trials", "2", "--workers", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trial 1/2" in printed and "trial 2/2" in printed and "best" in printed
    assert "2 of 2 trials done" in printed


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"algorithm.lr": {"uniform": [0.1, 0.2]}}, "tune.space.algorithm.lr: unknown parameter"),
        ({"algorithm.gamma": {"uniform": [0.9, 0.9]}}, "range [0.9, 0.9] is empty"),
        ({"algorithm.ent_coef": {"log_uniform": [0.0, 0.1]}}, "must be above 0"),
        ({"algorithm.gamma": {"uniform": [0.9, 1.5]}}, "uniform value 1.5 is not allowed"),
        ({"algorithm.n_steps": {"int": [8, 16], "choice": [8]}}, "give exactly one of"),
        ({"algorithm": {"choice": [1]}}, "is a section"),
    ],
)
def test_a_bad_search_space_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], space: dict, message: str
) -> None:
    config = write_config(tmp_path, space=space)
    assert main(["tune", str(config), "--trials", "1", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error and "Traceback" not in error


def test_asking_for_fewer_trials_than_done_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    run_study(TuneOptions(config=config, out_dir=out, trials=2), report=lambda line: None)
    assert main(["tune", str(config), "--trials", "1", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "--trials 1 is below the 2 trials this study has already run" in error and "\n" not in error
    assert len(read_trials(out)) == 2, "the study is intact"


@pytest.mark.parametrize("url", ["sqlite:////no/such/directory/study.db", "nosuch://host/db", "journal:/no/such/dir/x"])
def test_a_storage_that_cannot_be_opened_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    config = write_config(tmp_path)
    assert main(["tune", str(config), "--trials", "1", "--out", str(tmp_path / "out"), "--storage", url]) == 2
    error = capsys.readouterr().err.strip()
    assert "cannot open storage" in error and "\n" not in error


def test_resuming_with_another_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    run_study(TuneOptions(config=config, out_dir=out, trials=1), report=lambda line: None)
    args = ["tune", str(config), "--trials", "2", "--out", str(out), "--set", "algorithm.gamma=0.5"]
    assert main(args) == 2
    assert "was started with a different config (algorithm.gamma)" in capsys.readouterr().err


def test_an_rdb_storage_url_holds_the_study(tmp_path: Path) -> None:
    config, out = write_config(tmp_path), tmp_path / "out"
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    run_study(TuneOptions(config=config, out_dir=out, trials=2, workers=2, storage=url), report=lambda line: None)
    study = optuna.load_study(study_name="study", storage=url)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert not (out / "study.journal").exists()


def test_a_ray_cluster_losing_a_node_mid_study_loses_no_trial(tmp_path: Path) -> None:
    """Two one-CPU worker nodes train a trial each; one node is removed mid-trial. Ray reruns its task on the node
    added in its place, which resumes the trial's run from its checkpoints: both trials complete, none is lost."""
    pytest.importorskip("ray")
    config = write_config(tmp_path, training={"total_timesteps": 768, "checkpoint_freq": 32})
    out = tmp_path / "out"

    def both_training() -> bool:
        started = {path.parent.parent for path in out.glob("trials/*/checkpoints/*.zip")}
        return len(started) == 2 and not any((run / "eval.json").exists() for run in started)

    def study(address: str) -> Any:
        options = TuneOptions(config=config, out_dir=out, trials=2, workers=2, backend="ray", address=address)
        return run_study(options, report=lambda line: None)

    outcome = lose_a_ray_node_mid_work(study, both_training)
    rows = read_trials(out)
    assert [row["state"] for row in rows] == ["complete", "complete"], rows
    assert outcome.counted == 2
    logs = [(out / row["run_dirs"] / "train.log").read_text() for row in rows]
    assert any("resuming from" in log for log in logs), "the lost trial resumed, not restarted"


def test_a_terminated_study_stops_its_workers_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    """SIGTERM ends ``rlgru tune`` like Ctrl-C (exit 130): its running trial is failed as interrupted and retried
    on the next call, which resumes that trial's run from its checkpoints; the wall time of both calls is kept."""
    config = write_config(tmp_path, training={"total_timesteps": 4096, "checkpoint_freq": 256})
    out = tmp_path / "out"
    args = ["tune", str(config), "--trials", "1", "--out", str(out), "--pruner", "none"]
    driver = subprocess.Popen([sys.executable, "-m", "rlgru.cli", *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("trials/*/checkpoints/*.zip")):
        time.sleep(0.1)
    assert list(out.glob("trials/*/checkpoints/*.zip")), "the trial started training"
    driver.terminate()
    assert driver.wait(timeout=60) == 130
    [stopped, waiting] = study_of(out).trials
    assert stopped.state == optuna.trial.TrialState.FAIL and "interrupted" in stopped.user_attrs["error"]
    assert waiting.state == optuna.trial.TrialState.WAITING and waiting.user_attrs["retry_of"] == stopped.number
    first_wall = json.loads((out / "study.json").read_text())["wall_seconds"]
    assert first_wall > 0
    assert main(args) == 0
    [row] = [row for row in read_trials(out) if row["counted"] == "yes"]
    assert row["state"] == "complete" and row["run_dirs"] == "trials/trial-0000-s0"
    assert "resuming from" in (out / row["run_dirs"] / "train.log").read_text()
    assert json.loads((out / "study.json").read_text())["wall_seconds"] > first_wall
