"""What a study leaves in its out directory: ``trials.csv``, ``best.yaml`` and a report page with its plots.

All of it is rewritten from the study's storage after every call, so it always describes the whole study, resumed
calls included.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from optuna.trial import FrozenTrial, TrialState

from rlgru.harness.config import validate_config
from rlgru.harness.html_page import render_page
from rlgru.harness.tune_space import ParameterRange
from rlgru.runtime.files import atomic_write_text
from rlgru.tune.trial_config import apply_params

#: the best trial's parameters as config values, beside its number, objective and the trials counted so far
BEST_PARAMS_FILE = "best_params.json"

STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def write_outputs(
    study: optuna.Study,
    out_dir: Path,
    base: dict[str, Any],
    space: dict[str, ParameterRange],
    trial_counted: list[int],
) -> None:
    trials = study.get_trials(deepcopy=False)
    keys = list(space)
    write_trials_csv(trials, keys, out_dir / "trials.csv", set(trial_counted))
    best = _best(study)
    if best is not None:
        write_best_yaml(study, best, base, out_dir / "best.yaml")
        summary = {
            "study": study.study_name,
            "number": best.number,
            "value": best.value,
            "counted": len(trial_counted),
            "params": trial_params(best, space),
        }
        atomic_write_text(out_dir / BEST_PARAMS_FILE, json.dumps(summary, indent=2) + "\n")
    write_report(study, trials, keys, out_dir, default_core=str(base.get("policy", {}).get("core", "gru")))


def trial_params(trial: FrozenTrial, space: dict[str, ParameterRange] | None = None) -> dict[str, Any]:
    """A trial's parameters as config values (a list choice comes back from its text)."""
    params = dict(trial.params)
    for key, distribution in (space or {}).items():
        if distribution.kind == "choice" and key in params:
            for choice in distribution.choice or []:
                if str(choice) == str(params[key]) and not isinstance(params[key], type(choice)):
                    params[key] = choice
    return params


def write_trials_csv(trials: list[FrozenTrial], keys: list[str], path: Path, counted: set[int]) -> None:
    """One row per trial; ``counted`` says which count towards ``--trials`` (a failure that was retried does not)."""
    columns = [
        "number", "state", "value", "last_reported", "seconds", "pruned_at", "retry_of", "counted", "run_dirs",
        "error", *keys,
    ]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for trial in trials:
        attrs = trial.user_attrs
        writer.writerow(
            [
                trial.number,
                STATES.get(trial.state, trial.state.name.lower()),
                "" if trial.value is None else f"{trial.value:.6g}",
                ""
                if not trial.intermediate_values
                else f"{trial.intermediate_values[max(trial.intermediate_values)]:.6g}",
                attrs.get("seconds", ""),
                attrs.get("pruned_at", ""),
                attrs.get("retry_of", ""),
                "yes" if trial.number in counted else "no",
                " ".join(attrs.get("run_dirs", [])),
                attrs.get("error", ""),
                *[_cell(trial.params.get(key, "")) for key in keys],
            ]
        )
    atomic_write_text(path, buffer.getvalue())


def _last_reported(trial: FrozenTrial) -> float | str:
    """The trial's last periodic evaluation (a pruned trial's score where it was stopped), or "" if none."""
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else ""


def _cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def best_config(study: optuna.Study, best: FrozenTrial, base: dict[str, Any]) -> dict[str, Any]:
    """The study's config with the best trial's parameters: the study's own seed and evaluation settings."""
    space = _space_from_attrs(study)
    data = apply_params(base, trial_params(best, space))
    return validate_config(data, where="best.yaml").model_dump(mode="json", exclude={"tune"})


def write_best_yaml(study: optuna.Study, best: FrozenTrial, base: dict[str, Any], path: Path) -> None:
    data = best_config(study, best, base)
    counts = {name: sum(t.state == state for t in study.trials) for state, name in STATES.items()}
    seeds = study.user_attrs.get("seeds", 1)
    header = (
        f"# Tuned by `rlgru tune`: study {study.study_name!r}, best of {len(study.trials)} trials "
        f"({counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed),\n"
        f"# trial {best.number}: objective {best.value:.4g} (mean of {seeds} seed(s) at "
        f"{data['training']['total_timesteps']} steps). Train it as it is: rlgru train best.yaml\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False))


def _space_from_attrs(study: optuna.Study) -> dict[str, ParameterRange]:
    return {key: ParameterRange.model_validate(value) for key, value in study.user_attrs.get("space", {}).items()}


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------- report
def write_report(
    study: optuna.Study, trials: list[FrozenTrial], keys: list[str], out_dir: Path, default_core: str = "gru"
) -> None:
    """``report.md`` and the self-contained ``report.html``: history, importances, return against each setting."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    lines = [f"# Study {study.study_name}", ""]
    counts = {name: sum(t.state == state for t in trials) for state, name in STATES.items()}
    lines.append(", ".join(f"{count} {name}" for name, count in counts.items() if count) or "no trials yet")
    best = _best(study)
    if best is not None:
        lines += ["", f"Best: trial {best.number}, objective {best.value:.4g}.", ""]
        lines += ["| setting | best value |", "|---|---|"]
        lines += [f"| `{key}` | {_cell(best.params.get(key, ''))} |" for key in keys]
    lines += ["", "## Optimisation history", "", "![history](history.png)", ""]
    _plot_history(trials, out_dir / "history.png")
    importances = _importances(study, complete)
    lines += ["## Parameter importances (Optuna's default evaluator)", ""]
    if importances:
        _plot_importances(importances, out_dir / "importances.png")
        lines += ["![importances](importances.png)", "", "| setting | importance |", "|---|---|"]
        lines += [f"| `{key}` | {value:.3f} |" for key, value in importances.items()]
    else:
        lines.append("Not enough complete trials with varied settings to estimate importances (two or more needed).")
    lines += ["", "## Objective against each setting", "", "![parameters](parameters.png)", ""]
    _plot_parameters(complete, keys, out_dir / "parameters.png", default_core)
    text = "\n".join(lines) + "\n"
    atomic_write_text(out_dir / "report.md", text)
    atomic_write_text(out_dir / "report.html", render_page(text, out_dir, f"rlgru tune: {study.study_name}"))


def _importances(study: optuna.Study, complete: list[FrozenTrial]) -> dict[str, float]:
    if len(complete) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few trials: the evaluator warns that its estimate is rough
            return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):  # e.g. every complete trial has the same settings
        return {}


def _figure(width: float = 6.4, height: float = 3.6) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _plot_history(trials: list[FrozenTrial], path: Path) -> None:
    figure = _figure()
    axes = figure.add_subplot()
    for state, marker, label in ((TrialState.COMPLETE, "o", "complete"), (TrialState.PRUNED, "x", "pruned")):
        points = [(t.number, _last_value(t)) for t in trials if t.state == state and _last_value(t) is not None]
        if points:
            axes.plot(*zip(*points, strict=True), marker, linestyle="none", label=label, alpha=0.8)
    best_so_far, best = [], -math.inf
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            best = max(best, trial.value)
        best_so_far.append((trial.number, best if best > -math.inf else np.nan))
    if best_so_far:
        axes.step(*zip(*best_so_far, strict=True), where="post", color="k", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("objective (pruned: last reported)")
    axes.legend(loc="lower right", fontsize="small")
    figure.savefig(path, dpi=110)


def _last_value(trial: FrozenTrial) -> float | None:
    if trial.value is not None:
        return trial.value
    last = _last_reported(trial)
    return None if last == "" else float(last)


def _plot_importances(importances: dict[str, float], path: Path) -> None:
    figure = _figure(6.4, 0.4 * len(importances) + 1.0)
    axes = figure.add_subplot()
    names = list(importances)[::-1]
    axes.barh(names, [importances[name] for name in names], color="C0")
    axes.set_xlabel("importance (sums to 1)")
    figure.savefig(path, dpi=110)


def _plot_parameters(complete: list[FrozenTrial], keys: list[str], path: Path, default_core: str) -> None:
    """One panel per setting: each complete trial's objective against its value, coloured by memory core."""
    columns = min(len(keys), 4) or 1
    rows = max(math.ceil(len(keys) / columns), 1)
    figure = _figure(3.2 * columns, 2.6 * rows)
    cores = sorted({_core_of(t, default_core) for t in complete})
    for index, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, index + 1)
        for color, core in enumerate(cores):
            points = [
                (t.params[key], t.value) for t in complete if key in t.params and _core_of(t, default_core) == core
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                xs = [str(x) for x in xs] if not all(isinstance(x, int | float) for x in xs) else xs
                axes.plot(xs, ys, "o", color=f"C{color}", alpha=0.7, label=core)
        if any(
            isinstance(t.distributions.get(key), optuna.distributions.FloatDistribution) and t.distributions[key].log
            for t in complete
        ):
            axes.set_xscale("log")
            axes.xaxis.set_minor_formatter(NullFormatter())  # minor labels on a short log axis overlap
        axes.set_title(key, fontsize="small")
        axes.tick_params(labelsize="x-small")
    if cores and keys:
        figure.axes[0].legend(fontsize="x-small")
    figure.savefig(path, dpi=100)


def _core_of(trial: FrozenTrial, default: str) -> str:
    return str(trial.params.get("policy.core", default))


__all__ = ["BEST_PARAMS_FILE", "best_config", "trial_params", "write_best_yaml", "write_outputs", "write_trials_csv"]
