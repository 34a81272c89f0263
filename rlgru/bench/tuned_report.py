"""The report's tuned comparison: each core at the shared setting and at its own tuned setting, GRU vs LSTM at
both, what the tuning cost, and how sensitive each core was to its settings over the trials of an equal budget.

Everything is computed from the runs' ``result.json`` files and each study's ``trials.csv`` and ``study.json``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlgru.bench.stats import iqm, probability_of_improvement, stratified_bootstrap_ci
from rlgru.bench.suite import run_label
from rlgru.bench.tuned import TUNING_DIR
from rlgru.bench.variants import task_order

TUNED = "tuned"
SHARED = "shared"
#: a trial is "near the best" when its objective reaches this share of the way from the worst trial to the best
NEAR_BEST = 0.9


def setting_of(result: dict[str, Any]) -> str:
    return str(result.get("setting") or SHARED)


def tuned_section(out_dir: Path, ok: list[dict[str, Any]], n_resamples: int) -> list[str]:
    """Markdown lines of the section (none when the suite has no tuned runs)."""
    if not any(setting_of(r) == TUNED for r in ok):
        return []
    tasks = sorted({r["task"] for r in ok if setting_of(r) == TUNED}, key=task_order)
    cores = sorted({str(r["core"]) for r in ok if setting_of(r) == TUNED}, key=lambda c: (c != "gru", c != "lstm", c))
    scores = _scores(ok)  # (setting, core) -> task -> scores
    lines = [
        "## Shared vs tuned settings",
        "",
        "Each core ran at the suite's shared setting and at its own tuned setting: the best trial of an `rlgru tune` "
        "study with the same budget for every core (trials, steps per trial, tuning seeds, search space). Tuned "
        "settings were trained again on the evaluation seeds, which are never tuning seeds. Scores are the normalised "
        "return where the task knows its optimum and memoryless level, else the raw return; IQM over seeds with 95% "
        "stratified bootstrap intervals.",
        "",
        "| task | " + " | ".join(f"{core} shared | {core} tuned" for core in cores) + " |",
        "|---|" + "---:|" * (2 * len(cores)),
    ]
    for task in tasks:
        cells = []
        for core in cores:
            for setting in (SHARED, TUNED):
                values = scores.get((setting, core), {}).get(task)
                cells.append(_iqm_cell(task, values, n_resamples))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    if {"gru", "lstm"} <= set(cores):
        lines += ["", *_gru_vs_lstm(tasks, scores, n_resamples)]
    lines += ["", *_tuning_cost(out_dir, tasks, cores)]
    lines += ["", *_sensitivity(out_dir, tasks, cores, n_resamples)]
    return lines


def _scores(ok: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    grouped: dict[tuple[str, str], dict[str, list[float]]] = {}
    for result in ok:
        value = _score(result)
        if value is None:
            continue
        grouped.setdefault((setting_of(result), str(result["core"])), {}).setdefault(result["task"], []).append(value)
    return {key: {task: np.array(values) for task, values in by_task.items()} for key, by_task in grouped.items()}


def _score(result: dict[str, Any]) -> float | None:
    final = result.get("final_return")
    if not isinstance(final, int | float) or not math.isfinite(final):
        return None
    info = result.get("task_info") or {}
    optimal, memoryless = info.get("optimal_return"), info.get("memoryless_return")
    if optimal is None or memoryless is None or optimal == memoryless:
        return float(final)
    return float((final - memoryless) / (optimal - memoryless))


def _iqm_cell(task: str, values: np.ndarray | None, n_resamples: int) -> str:
    if values is None or not len(values):
        return "-"
    point, low, high = stratified_bootstrap_ci(lambda s: iqm(s[task]), {task: values}, n_resamples=n_resamples)
    return f"{point:.2f} [{low:.2f}, {high:.2f}] (n={len(values)})"


def _p_gru_better(
    tasks: list[str], scores: dict[tuple[str, str], dict[str, np.ndarray]], setting: str, n_resamples: int
) -> tuple[float, float, float] | None:
    gru = {t: v for t, v in scores.get((setting, "gru"), {}).items() if t in tasks}
    lstm = {t: v for t, v in scores.get((setting, "lstm"), {}).items() if t in tasks}
    if not set(gru) & set(lstm):
        return None
    common = sorted(set(gru) & set(lstm))
    return stratified_bootstrap_ci(
        probability_of_improvement,
        {t: gru[t] for t in common},
        {t: lstm[t] for t in common},
        n_resamples=n_resamples,
    )


def _gru_vs_lstm(tasks: list[str], scores: dict[tuple[str, str], dict[str, np.ndarray]], n_resamples: int) -> list[str]:
    lines = [
        "### GRU vs LSTM at each setting",
        "",
        "P(GRU > LSTM): the chance that a GRU run beats an LSTM run of the same task (ties count half), with its "
        "95% interval. Above 0.5 with the interval clear of it: GRU better; below: LSTM better.",
        "",
        "| task | P(GRU > LSTM), shared setting | P(GRU > LSTM), tuned settings | verdict shared | verdict tuned |",
        "|---|---:|---:|---|---|",
    ]
    rows = [(task, [task]) for task in tasks] + [("all tasks", tasks)]
    for label, chosen in rows:
        shared = _p_gru_better(chosen, scores, SHARED, n_resamples)
        tuned = _p_gru_better(chosen, scores, TUNED, n_resamples)
        lines.append(f"| {label} | {_fmt(shared)} | {_fmt(tuned)} | {_verdict(shared)} | {_verdict(tuned)} |")
    return lines


def _fmt(interval: tuple[float, float, float] | None) -> str:
    return "-" if interval is None else f"{interval[0]:.2f} [{interval[1]:.2f}, {interval[2]:.2f}]"


def _verdict(interval: tuple[float, float, float] | None) -> str:
    if interval is None:
        return "-"
    if interval[1] > 0.5:
        return "GRU better"
    if interval[2] < 0.5:
        return "LSTM better"
    return "no significant difference"


# ------------------------------------------------------------------------------------------- tuning cost
def _study(out_dir: Path, task: str, core: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    directory = out_dir / TUNING_DIR / f"{task}-{run_label(core)}"
    trials: list[dict[str, str]] = []
    meta: dict[str, Any] = {}
    if (directory / "trials.csv").is_file():
        with (directory / "trials.csv").open() as handle:
            trials = [row for row in csv.DictReader(handle) if row.get("counted") == "yes"]
    if (directory / "study.json").is_file():
        meta = json.loads((directory / "study.json").read_text())
    return trials, meta


def _tuning_cost(out_dir: Path, tasks: list[str], cores: list[str]) -> list[str]:
    lines = [
        "### What the tuning cost",
        "",
        "| study | trials (complete / pruned / failed) | steps per trial | wall time | best objective |",
        "|---|---|---:|---:|---:|",
    ]
    total = 0.0
    for task in tasks:
        for core in cores:
            trials, meta = _study(out_dir, task, core)
            if not trials:
                continue
            counts = {state: sum(row["state"] == state for row in trials) for state in ("complete", "pruned", "failed")}
            values = [float(row["value"]) for row in trials if row["state"] == "complete" and row["value"]]
            wall = float(meta.get("wall_seconds", 0.0))
            total += wall
            budget = _study_budget(out_dir, task, core)
            lines.append(
                f"| {task} × {core} | {len(trials)} ({counts['complete']} / {counts['pruned']} / {counts['failed']}) "
                f"| {budget} | {wall / 60:.1f} min | {max(values):.3f} |"
                if values
                else f"| {task} × {core} | {len(trials)} | {budget} | {wall / 60:.1f} min | - |"
            )
    machine = next((m.get("machine") for t in tasks for c in cores if (m := _study(out_dir, t, c)[1])), None)
    lines += ["", f"Tuning took {total / 3600:.2f} h of wall time in all" + (f" on {machine}." if machine else ".")]
    return lines


def _study_budget(out_dir: Path, task: str, core: str) -> str:
    path = out_dir / TUNING_DIR / f"{task}-{run_label(core)}" / "config.yaml"
    try:
        import yaml

        return str(yaml.safe_load(path.read_text())["training"]["total_timesteps"])
    except (OSError, KeyError, TypeError, ValueError):
        return "-"


# ------------------------------------------------------------------------------------------- sensitivity
def _sensitivity(out_dir: Path, tasks: list[str], cores: list[str], n_resamples: int) -> list[str]:
    """How each core's trials spread under one budget: the share near the best, and P(a GRU trial beats an LSTM
    trial), where pruned trials count as below every complete one (the pruner judged them worse)."""
    lines = [
        "### Sensitivity to hyper-parameters",
        "",
        f"Over the trials of each study (equal budgets): the median trial objective, and how many trials came within "
        f"{NEAR_BEST:.0%} of the way from the worst to the best trial of either core. A pruned trial counts at its "
        "last evaluation (what it had reached when the pruner stopped it, at a fraction of the budget: a pessimistic "
        "figure), a failed one below every other. P(GRU trial > LSTM trial) is the chance that a random GRU trial "
        "beats a random LSTM trial: above 0.5, the GRU is the easier core to set up on that task.",
        "",
        "| task | " + " | ".join(f"{core}: median, near best" for core in cores) + " | P(GRU trial > LSTM trial) |",
        "|---|" + "---|" * len(cores) + "---:|",
    ]
    trial_scores: dict[str, dict[str, np.ndarray]] = {core: {} for core in cores}
    for task in tasks:
        per_core = {core: _trial_values(_study(out_dir, task, core)[0]) for core in cores}
        finite = [v for values in per_core.values() for v in values if math.isfinite(v)]
        if not finite:
            continue
        low, high = min(finite), max(finite)
        threshold = low + NEAR_BEST * (high - low)
        cells = []
        for core in cores:
            values = per_core[core]
            if not len(values):
                cells.append("-")
                continue
            near = int(np.sum(values >= threshold))
            median = float(np.median(values))
            shown = f"{median:.3g}" if math.isfinite(median) else "pruned or failed"
            cells.append(f"{shown}, {near} of {len(values)}")
            trial_scores[core][task] = values
        p = None
        if {"gru", "lstm"} <= set(cores) and len(per_core["gru"]) and len(per_core["lstm"]):
            p = stratified_bootstrap_ci(
                probability_of_improvement,
                {task: per_core["gru"]},
                {task: per_core["lstm"]},
                n_resamples=n_resamples,
            )
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {_fmt(p)} |")
    if {"gru", "lstm"} <= set(cores):
        common = sorted(set(trial_scores["gru"]) & set(trial_scores["lstm"]))
        if common:
            p = stratified_bootstrap_ci(
                probability_of_improvement,
                {t: trial_scores["gru"][t] for t in common},
                {t: trial_scores["lstm"][t] for t in common},
                n_resamples=n_resamples,
            )
            lines += ["", f"Over all tasks, P(GRU trial > LSTM trial) = {_fmt(p)}: {_sensitivity_verdict(p)}."]
    return lines


def _trial_values(trials: list[dict[str, str]]) -> np.ndarray:
    """Complete trials' objectives; pruned trials at their last reported evaluation (where the pruner stopped them:
    what they had reached, not what they would have); failed trials, and pruned ones that reported nothing, -inf."""
    values = []
    for row in trials:
        if row["state"] == "complete" and row.get("value"):
            values.append(float(row["value"]))
        elif row["state"] == "pruned" and row.get("last_reported"):
            values.append(float(row["last_reported"]))
        else:
            values.append(-np.inf)
    return np.array(values)


def _sensitivity_verdict(interval: tuple[float, float, float]) -> str:
    if interval[1] > 0.5:
        return "a GRU trial tends to beat an LSTM trial: the GRU was the less sensitive core at this budget"
    if interval[2] < 0.5:
        return "an LSTM trial tends to beat a GRU trial: the LSTM was the less sensitive core at this budget"
    return "neither core's trials were significantly better: no difference in sensitivity shown at this budget"


__all__ = ["setting_of", "tuned_section"]
