"""The study's driver: ask Optuna for trials, run them on workers, tell Optuna how they ended, write the outputs.

One driver holds a study's out directory at a time (``run.lock``). It alone creates and finishes trials, so
``--trials N`` is exact however many workers run: N trials end complete, pruned or failed, counting those of earlier
calls (a resumed study runs only what is missing). A trial whose worker died (``kill -9``, a lost machine) is marked
failed with the cause and enqueued again with the same parameters, up to ``MAX_ATTEMPTS``; the retry trains in the
original's run directories, resuming from their checkpoints. Trials left running by a driver that died are found
and treated the same way when the study is opened again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from rlgru.harness.config import config_to_dict, differing_keys, dump_config, load_config
from rlgru.harness.errors import HarnessError
from rlgru.harness.lifeline import terminate_as_interrupt
from rlgru.harness.machine import machine_description
from rlgru.harness.run_lock import claim_run
from rlgru.harness.tune_space import TuneConfig
from rlgru.runtime.files import atomic_write_text
from rlgru.tune.launchers import Finished, Launcher, make_launcher
from rlgru.tune.outputs import write_outputs
from rlgru.tune.search import grid_size, make_pruner, make_sampler, suggest
from rlgru.tune.storage import default_storage_url, open_storage, quiet_optuna
from rlgru.tune.trial_config import objective_kind, trial_run_config, trial_run_dir
from rlgru.tune.trial_run import TrialSpec

#: times one set of parameters is started before its trial stays failed (a worker killed each time)
MAX_ATTEMPTS = 3
STUDY_FILE = "study.json"

Report = Callable[[str], None]


@dataclass
class TuneOptions:
    """``rlgru tune``'s arguments."""

    config: Path
    out_dir: Path
    trials: int
    workers: int = 1
    overrides: list[str] = field(default_factory=list)
    storage: str | None = None
    study: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    timeout: float | None = None
    seeds: int = 1
    backend: str = "local"
    address: str | None = None


@dataclass
class TuneOutcome:
    out_dir: Path
    study: str
    counted: int
    ran: int
    wall_seconds: float
    best: FrozenTrial | None


def run_study(options: TuneOptions, report: Report = print) -> TuneOutcome:
    """Run (or resume) the study until ``options.trials`` trials have ended; write trials.csv, best.yaml, report."""
    for name in ("trials", "workers", "seeds"):
        if getattr(options, name) < 1:
            raise HarnessError(f"must be at least 1, got {getattr(options, name)}", where=f"--{name}")
    if options.timeout is not None and options.timeout <= 0:
        raise HarnessError(f"must be positive, got {options.timeout}", where="--timeout")
    config = load_config(options.config, options.overrides)
    tune = config.tune or TuneConfig()
    space = tune.search_space()
    if options.sampler == "grid" and options.trials > grid_size(space):
        raise HarnessError(
            f"the grid has {grid_size(space)} points, fewer than --trials {options.trials}", where="--trials"
        )
    out_dir = Path(options.out_dir)
    with claim_run(out_dir, what="study's out directory", hint="choose another --out"):
        quiet_optuna()
        storage_url = options.storage or default_storage_url(out_dir)
        study_name = options.study or Path(options.config).stem
        base = {key: value for key, value in config_to_dict(config).items() if key != "tune"}
        study = _open_study(storage_url, study_name, options, space, base, tune)
        dump_config(config, out_dir / "config.yaml")
        run = _StudyRun(study, options, tune, base, out_dir, storage_url, report)
        # after every trial too, so a driver killed outright (SIGKILL, a lost machine) still counts its time
        run.on_trial_end = lambda: _write_study_file(
            out_dir, study_name, storage_url, options, run.wall_seconds(), objective_kind(config)
        )
        try:
            with terminate_as_interrupt():  # `kill` ends the study like Ctrl-C: workers stopped, trials retried later
                run.recover_abandoned()
                run.check_target()
                run.loop(space)
        finally:
            run.abandon_running("the driver stopped (interrupted) before it finished")
            run.on_trial_end()
            write_outputs(study, out_dir, base, space, trial_counted=run.counted_numbers())
        best = run.best()
        if best is not None:
            report(f"best: trial {best.number}, value {best.value:.4g}; {out_dir / 'best.yaml'}")
        return TuneOutcome(out_dir, study_name, len(run.counted_numbers()), run.ran, run.wall_seconds(), best)


def _open_study(
    storage_url: str,
    name: str,
    options: TuneOptions,
    space: dict[str, Any],
    base: dict[str, Any],
    tune: TuneConfig,
) -> optuna.Study:
    """Create the study, or load it and refuse a config that differs from the one it was started with."""
    storage = open_storage(storage_url)
    space_data = {key: distribution.model_dump(mode="json", by_alias=True) for key, distribution in space.items()}
    last_step = options.seeds * int(base["training"]["total_timesteps"])
    first_step = max(int(base["training"]["total_timesteps"]) // tune.evaluations, 1)
    existing = [summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    n_before = 0
    if name in existing:
        study = optuna.load_study(study_name=name, storage=storage)
        saved = study.user_attrs
        changed = differing_keys(saved.get("base_config", {}), base)
        if changed:
            raise HarnessError(
                f"study {name!r} was started with a different config ({', '.join(changed[:5])}); "
                "resume it with the same config, or choose another --study or --out",
                where=options.config,
            )
        for key, value, what in (
            ("space", space_data, "search space"),
            ("seeds", options.seeds, "--seeds"),
            ("evaluations", tune.evaluations, "tune.evaluations"),
        ):
            if saved.get(key) != value:
                raise HarnessError(
                    f"study {name!r} was started with another {what}; resume it with the same one, "
                    "or choose another --study or --out",
                    where=options.config,
                )
        n_before = len(study.trials)
    sampler = make_sampler(options.sampler, space, seed=int(base.get("seed", 0)) + n_before)
    pruner = make_pruner(options.pruner, first_step, last_step)
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize", load_if_exists=True
    )
    if not n_before and "base_config" not in study.user_attrs:
        study.set_user_attr("base_config", base)
        study.set_user_attr("space", space_data)
        study.set_user_attr("seeds", options.seeds)
        study.set_user_attr("evaluations", tune.evaluations)
    return study


class _StudyRun:
    """One call's work on a study: what is counted, what runs, and the loop that keeps the workers busy."""

    def __init__(
        self,
        study: optuna.Study,
        options: TuneOptions,
        tune: TuneConfig,
        base: dict[str, Any],
        out_dir: Path,
        storage_url: str,
        report: Report,
    ) -> None:
        self.study, self.options, self.tune, self.base = study, options, tune, base
        self.out_dir, self.storage_url, self.report = out_dir, storage_url, report
        self.running: dict[int, optuna.Trial] = {}
        self.ran = 0
        self.started = time.perf_counter()
        self.previous_wall = _previous_wall(out_dir)
        self.on_trial_end: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------------------------------ counting
    def counted_numbers(self) -> list[int]:
        """Trials that count towards ``--trials``: ended complete, pruned, or failed for good (not retried)."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get("retry_of") for t in trials if "retry_of" in t.user_attrs}
        ended = (TrialState.COMPLETE, TrialState.PRUNED)
        return [
            t.number for t in trials if t.state in ended or (t.state == TrialState.FAIL and t.number not in retried)
        ]

    def check_target(self) -> None:
        done = len(self.counted_numbers())
        if self.options.trials < done:
            raise HarnessError(
                f"--trials {self.options.trials} is below the {done} trials this study has already run; "
                f"ask for {done} or more",
                where="--trials",
            )
        if done:
            self.report(f"resuming study {self.study.study_name!r}: {done} of {self.options.trials} trials done")

    def wall_seconds(self) -> float:
        return self.previous_wall + time.perf_counter() - self.started

    def best(self) -> FrozenTrial | None:
        try:
            return self.study.best_trial
        except ValueError:  # no complete trial yet
            return None

    # ------------------------------------------------------------------------------------------ failures
    def recover_abandoned(self) -> None:
        """Trials left RUNNING by a driver that died: failed with that cause, and enqueued again."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self._fail_and_retry(trial.number, trial.params, trial.user_attrs, "its driver died mid-trial", None)

    def abandon_running(self, cause: str) -> None:
        for number, trial in list(self.running.items()):
            frozen = self.study.get_trials(deepcopy=False)[number]
            self._fail_and_retry(number, frozen.params, frozen.user_attrs, cause, trial)
        self.running.clear()

    def _fail_and_retry(
        self, number: int, params: dict[str, Any], attrs: dict[str, Any], cause: str, trial: optuna.Trial | None
    ) -> None:
        attempt = int(attrs.get("attempt", 1))
        retry = attempt < MAX_ATTEMPTS
        message = f"{cause}; " + ("retried" if retry else f"not retried after {attempt} attempts")
        if trial is None:  # a trial this driver holds no handle of (left by another driver, or a dead worker's)
            trial = optuna.trial.Trial(self.study, self.study.get_trials(deepcopy=False)[number]._trial_id)
        trial.set_user_attr("error", message)
        self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        if retry:
            self.study.enqueue_trial(
                params,
                user_attrs={"retry_of": number, "run_of": int(attrs.get("run_of", number)), "attempt": attempt + 1},
                skip_if_exists=False,
            )
        self.report(f"trial {number} failed: {message}")

    # ------------------------------------------------------------------------------------------ the loop
    def loop(self, space: dict[str, Any]) -> None:
        launcher = make_launcher(self.options.backend, self.options.workers, self.options.address)
        try:
            while True:
                self._launch_while_free(launcher, space)
                if not self.running:
                    break
                for finished in launcher.wait():
                    self._record(finished)
        except BaseException:
            launcher.stop()
            raise
        finally:
            launcher.close()

    def _open_slots(self) -> int:
        return self.options.trials - len(self.counted_numbers()) - len(self.running)

    def _timed_out(self) -> bool:
        return self.options.timeout is not None and time.perf_counter() - self.started >= self.options.timeout

    def _launch_while_free(self, launcher: Launcher, space: dict[str, Any]) -> None:
        while len(self.running) < launcher.capacity and self._open_slots() > 0 and not self._timed_out():
            trial = self.study.ask()
            params = suggest(trial, space)
            attrs = trial.user_attrs
            run_of = int(attrs.get("run_of", trial.number))
            if "attempt" not in attrs:
                trial.set_user_attr("attempt", 1)
                trial.set_user_attr("run_of", run_of)
            # known before it runs, so a trial whose worker dies still names its run directories
            run_dirs = [trial_run_dir(self.out_dir, run_of, index).path for index in range(self.options.seeds)]
            trial.set_user_attr("run_dirs", [_relative(str(path), self.out_dir) for path in run_dirs])
            try:  # a combination the config refuses is this trial's failure, not the study's
                trial_run_config(self.base, params, 0, self.tune.evaluations, self.tune.eval_episodes, where="trial")
            except HarnessError as error:
                trial.set_user_attr("error", error.message)
                self.study.tell(trial, state=TrialState.FAIL)
                self._progress(trial.number, "failed", error.message)
                continue
            spec = TrialSpec(
                number=trial.number,
                trial_id=trial._trial_id,
                run_of=run_of,
                params=params,
                base_config=self.base,
                seeds=self.options.seeds,
                evaluations=self.tune.evaluations,
                eval_episodes=self.tune.eval_episodes,
                out_dir=str(self.out_dir.resolve()),
                storage=self.storage_url,
                study=self.study.study_name,
                pruner=self.options.pruner,
            )
            self.running[trial.number] = trial
            self.ran += 1
            launcher.start(spec)

    def _record(self, finished: Finished) -> None:
        try:
            self._tell(finished)
        finally:
            self.on_trial_end()

    def _tell(self, finished: Finished) -> None:
        trial = self.running.pop(finished.number)
        result = finished.result
        if result is None:  # the worker died without a word: kill -9, out of memory, a lost node
            frozen = self.study.get_trials(deepcopy=False)[finished.number]
            self._fail_and_retry(finished.number, frozen.params, frozen.user_attrs, finished.cause, trial)
            return
        trial.set_user_attr("seconds", round(result["seconds"], 2))
        trial.set_user_attr("run_dirs", [_relative(path, self.out_dir) for path in result["run_dirs"]])
        if result["seed_values"]:
            trial.set_user_attr("seed_values", result["seed_values"])
        if result["state"] == "complete":
            self.study.tell(trial, result["value"])
            self._progress(finished.number, "complete", f"{result['value']:.4g}")
        elif result["state"] == "pruned":
            trial.set_user_attr("pruned_at", result["pruned_at"])
            self.study.tell(trial, state=TrialState.PRUNED)
            self._progress(finished.number, "pruned", f"at step {result['pruned_at']}")
        else:
            trial.set_user_attr("error", result["error"])
            self.study.tell(trial, state=TrialState.FAIL)
            self._progress(finished.number, "failed", result["error"])

    def _progress(self, number: int, state: str, detail: str) -> None:
        done = len(self.counted_numbers())
        best = self.best()
        best_text = f"best {best.value:.4g} (trial {best.number})" if best is not None else "no complete trial yet"
        self.report(
            f"trial {done}/{self.options.trials} [#{number}] {state}: {detail}; {best_text}; "
            f"{time.perf_counter() - self.started:.0f} s"
        )


def _relative(path: str, out_dir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(out_dir.resolve()))
    except ValueError:
        return path


def _previous_wall(out_dir: Path) -> float:
    try:
        return float(json.loads((out_dir / STUDY_FILE).read_text()).get("wall_seconds", 0.0))
    except (OSError, ValueError):
        return 0.0


def _write_study_file(
    out_dir: Path, name: str, storage: str, options: TuneOptions, wall: float, objective: str
) -> None:
    data = {
        "study": name,
        "storage": storage,
        "config": str(options.config),
        "sampler": options.sampler,
        "pruner": options.pruner,
        "seeds_per_trial": options.seeds,
        "objective": objective,
        "backend": options.backend,
        "workers": options.workers,
        "machine": machine_description(),
        "wall_seconds": round(wall, 1),
    }
    atomic_write_text(out_dir / STUDY_FILE, json.dumps(data, indent=2) + "\n")


__all__ = ["MAX_ATTEMPTS", "TuneOptions", "TuneOutcome", "run_study"]
