"""Turn a sweep's per-run results into tables, learning-curve plots and a README with honest statistics.

Input: ``<out>/runs/<run_id>/result.json`` as written by the sweep runner. Output in ``<out>``: ``runs.csv``,
``learning_curves.csv``, ``curves_<task>.png``, ``horizon.png`` (suites with length sweeps), ``README.md`` and
``report.html`` (the README with its plots inlined: one file a reader can open anywhere).

Every verdict is computed from the runs; the sections for horizons (``horizon``), time to target (``efficiency``),
the memoryless baseline (``memory_gap``) and published results (``published``) live in their own modules.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rlgru.bench import variants as variant_names
from rlgru.bench.efficiency import efficiency_tables
from rlgru.bench.horizon import horizon_scores, horizon_tables, plot_horizons, short_long_verdicts
from rlgru.bench.memory_gap import is_memoryless_variant, memoryless_section
from rlgru.bench.published import published_section
from rlgru.bench.results import IDENTITY_FIELDS, is_complete, missing_fields, read_result
from rlgru.bench.stats import iqm, normalised, probability_of_improvement, stratified_bootstrap_ci
from rlgru.bench.suite import REFERENCE_CORE
from rlgru.bench.tuned_report import TUNED, setting_of, tuned_section
from rlgru.bench.variants import EQUAL_PARAMS_SUFFIX, is_equal_params, variant_of
from rlgru.harness.html_page import render_page
from rlgru.runtime.files import atomic_open, atomic_write_text

RUN_COLUMNS = [
    "task",
    "core",
    "variant",
    "hidden_size",
    "seed",
    "timesteps",
    "final_return",
    "best_return",
    "normalized_return",
    "wall_seconds",
    "steps_per_second",
    "params",
    "recurrent_params",
    "inference_latency_us",
    "peak_memory_mb",
    "status",
    "error",
]
#: cores with hand-written claims about GRU (see ``_verdicts``); every other core gets a verdict computed from runs
_CLAIMED_CORES = ("gru", "lstm", "rnn")
#: (field, label, unit) of the cost table that a "<core> vs GRU" verdict compares, as a ratio of medians
_COST_RATIOS = (
    ("recurrent_params", "recurrent parameters", ""),
    ("steps_per_second", "training throughput", " steps/s"),
    ("inference_latency_us", "inference latency", " µs/step"),
)


def load_results(out_dir: Path) -> list[dict[str, Any]]:
    """Every run's result that parses and names its run; a torn or foreign file stands for an unfinished run."""
    results = []
    for path in sorted((out_dir / "runs").glob("*/result.json")):
        result = read_result(path.parent)
        if result is None or any(result.get(key) is None for key in IDENTITY_FIELDS):
            result = {
                "run_id": path.parent.name,
                "task": path.parent.name,
                "core": "?",
                "seed": -1,
                "status": "unreadable",
                "error": f"{path.name} is unreadable or names no run",
            }
        result["variant"] = variant_of(result)
        results.append(result)
    return results


def write_report(out_dir: Path, n_resamples: int = 2000) -> Path:
    """Write every artefact of the report; returns the README path (``report.html`` is written beside it)."""
    out_dir = Path(out_dir)
    results = load_results(out_dir)
    if not results:
        raise FileNotFoundError(f"no run results under {out_dir / 'runs'}")
    _write_runs_csv(out_dir / "runs.csv", results)
    _write_curves_csv(out_dir / "learning_curves.csv", results)
    # tuned-setting runs have a section of their own; every other table compares the cores at the shared setting
    shared = [r for r in results if setting_of(r) != TUNED]
    plots = _plot_curves(out_dir, shared)
    text = _readme(out_dir, shared, plots, n_resamples, all_results=results)
    readme = out_dir / "README.md"
    atomic_write_text(readme, text)
    atomic_write_text(out_dir / "report.html", render_page(text, out_dir, f"rlgru benchmark: {out_dir.name}"))
    return readme


def _ok(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs that trained; figures a result lacks (an older rlgru, a sweep cut short) show as "-" where it is used."""
    return [r for r in results if r.get("status") == "ok"]


def _number(value: Any) -> float | None:
    """A finite float, or None: results written by older or crashed runs may hold null, NaN or nothing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _normalized(result: dict[str, Any]) -> float | None:
    task = result.get("task_info") or {}
    final = _number(result.get("final_return"))
    if final is None or task.get("optimal_return") is None or task.get("memoryless_return") is None:
        return None
    return float(normalised(np.array([final]), task["memoryless_return"], task["optimal_return"])[0])


def _write_runs_csv(path: Path, results: list[dict[str, Any]]) -> None:
    with atomic_open(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=RUN_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for result in sorted(results, key=lambda r: (r["task"], _core_rank(r["variant"]), r["seed"])):
            row = dict(result)
            if result.get("status") == "ok":
                row["normalized_return"] = _normalized(result)
            writer.writerow(row)


def _write_curves_csv(path: Path, results: list[dict[str, Any]]) -> None:
    with atomic_open(path, "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "core", "seed", "timesteps", "mean_return", "train_seconds"])
        for result in _ok(results):
            for timesteps, mean_return, *rest in result.get("curve", []):
                seconds = rest[0] if rest else None
                writer.writerow([result["task"], result["variant"], result["seed"], timesteps, mean_return, seconds])


def _plot_curves(out_dir: Path, results: list[dict[str, Any]]) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, Path] = {}
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in _ok(results):
        if result.get("curve"):
            by_task[result["task"]].append(result)
    for task, runs in sorted(by_task.items()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for core in _order_cores(r["variant"] for r in runs):
            curves = [np.asarray(r["curve"], dtype=float) for r in runs if r["variant"] == core]
            length = min(len(c) for c in curves)
            style = "--" if is_equal_params(core) else "-"
            steps = curves[0][:length, 0]
            returns = np.stack([c[:length, 1] for c in curves])  # [seeds, points]
            mean = returns.mean(axis=0)
            low, high = _bootstrap_band(returns)
            ax.plot(steps, mean, style, label=f"{core} (n={len(curves)})")
            ax.fill_between(steps, low, high, alpha=0.2)
        info = runs[0].get("task_info") or {}
        for key, style in (("optimal_return", "--"), ("memoryless_return", ":")):
            if info.get(key) is not None:
                ax.axhline(info[key], color="grey", linestyle=style, linewidth=1, label=key.replace("_", " "))
        ax.set(title=task, xlabel="environment steps", ylabel="evaluation return")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"curves_{_slug(task)}.png"
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, dpi=100, format="png")
        plt.close(fig)
        plots[task] = path
    return plots


def _bootstrap_band(returns: np.ndarray, n_resamples: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap band of the mean over seeds, at every point of the curve."""
    rng = np.random.default_rng(seed)
    n = returns.shape[0]
    means = np.stack([returns[rng.integers(0, n, n)].mean(axis=0) for _ in range(n_resamples)])
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def _readme(
    out_dir: Path,
    results: list[dict[str, Any]],
    plots: dict[str, Path],
    n_resamples: int,
    all_results: list[dict[str, Any]] | None = None,
) -> str:
    all_results = results if all_results is None else all_results
    ok = _ok(results)
    failed = [r for r in results if r.get("status") != "ok"]
    unfinished = [r for r in ok if not is_complete(r)]
    tasks = sorted({r["task"] for r in ok}, key=variant_names.task_order)
    cores = _order_cores(r["variant"] for r in ok)
    scores = _scores_by_core(ok)  # core -> task -> normalised final returns
    raw = _raw_by_core(ok)
    lines = [f"# Benchmark: {out_dir.name}", ""]
    meta = _sweep_meta(out_dir)
    if meta:
        lines += [f"{meta}", ""]
    planned = _planned_runs(out_dir)
    completed = len(_ok(all_results))
    if planned is not None and completed < planned:
        lines += [
            f"**Partial results: {completed} of the suite's {planned} runs have completed.** Running the same "
            "`rlgru bench` command again resumes the rest; every table and verdict below covers the completed runs "
            "only.",
            "",
        ]
    lines += [
        f"{len(ok)} completed runs ({len(failed)} failed) over {len(tasks)} tasks × {len(cores)} cores. Returns are "
        "deterministic-policy evaluation returns at the end of training; *memoryless* is the best return any policy "
        "without memory can expect (exact for symbolic tasks). *Normalised* return maps the best "
        "memoryless policy to 0 and the optimum to 1, so tasks can be pooled. Intervals are 95% stratified "
        f"bootstrap confidence intervals ({n_resamples} resamples, runs resampled within each task)."
        + (
            f" Columns ending in `{EQUAL_PARAMS_SUFFIX}` are the same core widened or narrowed to the matched core's "
            "recurrent parameter count (equal parameters); the others share the suite's hidden size (equal width)."
            if any(is_equal_params(c) for c in cores)
            else ""
        ),
        "",
    ]
    horizon_lines, horizon_verdicts = _horizon_section(out_dir, ok, n_resamples)
    lines += horizon_lines
    lines += [
        "## Final return per task (IQM over seeds, 95% CI)",
        "",
        # a trained memoryless core is a column of its own, apart from the task's known memoryless level
        "| task | horizon | optimal | memoryless | "
        + " | ".join(f"{core} (trained)" if is_memoryless_variant(ok, core) else core for core in cores)
        + " |",
        "|---|---|---:|---:|" + "---:|" * len(cores),
    ]
    for task in tasks:
        info = next(((r.get("task_info") or {}) for r in ok if r["task"] == task), {})
        horizon = info.get("horizon") or ""
        bounds = " | ".join(
            "-" if info.get(key) is None else f"{info[key]:.3g}" for key in ("optimal_return", "memoryless_return")
        )
        cells = []
        for core in cores:
            values = raw.get(core, {}).get(task)
            if values is None:
                cells.append("-")
                continue
            point, low, high = stratified_bootstrap_ci(_iqm_of_task(task), {task: values}, n_resamples=n_resamples)
            cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}] (n={len(values)})")
        lines.append(f"| {task} | {horizon} | {bounds} | " + " | ".join(cells) + " |")

    lines += ["", "## Aggregate normalised IQM over tasks", ""]
    if any(scores.get(core) for core in cores):
        lines += ["| core | IQM | 95% CI |", "|---|---:|---|"]
        for core in cores:
            if scores.get(core):
                point, low, high = stratified_bootstrap_ci(_pooled_iqm, scores[core], n_resamples=n_resamples)
                lines.append(f"| {core} | {point:.3f} | [{low:.3f}, {high:.3f}] |")
    else:  # third-party tasks: no exact optimum and memoryless level to normalise by
        lines.append(
            "None: no task here states both its optimal and its memoryless return, so returns are not normalised "
            "or pooled; each task is read on its own, against the trained memoryless baseline where there is one."
        )

    comparisons = _comparisons(scores, _horizons(ok), n_resamples, cores)
    if comparisons:
        lines += [
            "",
            "## Probability of improvement",
            "",
            "P(X > Y): chance that a run of X beats a run of Y on a task drawn at random (0.5 = no difference).",
            "",
            "| comparison | tasks | P(X > Y) | 95% CI |",
            "|---|---|---:|---|",
        ]
        for (x, y, subset), (point, low, high) in comparisons.items():
            lines.append(f"| {x} > {y} | {subset} | {point:.2f} | [{low:.2f}, {high:.2f}] |")

    lines += [
        "",
        "## Cost per core",
        "",
        "| core | recurrent params | total params | training steps/s (median) | inference latency µs/step "
        "(median) | peak memory MB (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for core in cores:
        runs = [r for r in ok if r["variant"] == core]
        lines.append(
            f"| {core} | {_median(runs, 'recurrent_params', '.0f')} | {_median(runs, 'params', '.0f')} | "
            f"{_median(runs, 'steps_per_second', '.0f')} | {_median(runs, 'inference_latency_us', '.0f')} | "
            f"{_median(runs, 'peak_memory_mb', '.0f')} |"
        )

    floor_lines, floor_verdicts = memoryless_section(ok, cores, n_resamples)
    lines += floor_lines
    fair_lines, fair_verdicts = _equal_parameter_section(ok, comparisons, cores)
    lines += fair_lines
    efficiency = efficiency_tables(ok)
    if efficiency:
        lines += ["", "## Steps and seconds to 90% of the optimum", "", *efficiency]
    lines += published_section(ok, n_resamples)
    verdicts = [*floor_verdicts, *horizon_verdicts, *_verdicts(ok, scores, comparisons), *fair_verdicts]
    lines += ["", "## Verdicts", ""] + [f"- {v}" for v in verdicts]
    tuned_lines = tuned_section(out_dir, _ok(all_results), n_resamples)
    if tuned_lines:
        lines += ["", *tuned_lines]
    if plots:
        lines += ["", "## Learning curves (mean over seeds, 95% bootstrap band)", ""]
        lines += [f"![{task}]({path.name})" for task, path in plots.items()]
    lines += _cost_of_benchmark(out_dir, all_results)
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- {r['task']} / {r['core']} / seed {r['seed']}: {r.get('error') or 'unknown error'}" for r in failed
        ]
    if unfinished:
        lines += [
            "",
            "## Unfinished runs",
            "",
            "Trained, but their results lack figures (shown as - above); the next "
            "`rlgru bench` on this suite runs them again.",
            "",
        ]
        lines += [
            f"- {r['task']} / {r['core']} / seed {r['seed']}: no {', '.join(missing_fields(r))}" for r in unfinished
        ]
    return "\n".join(lines) + "\n"


def _horizon_section(out_dir: Path, ok: list[dict[str, Any]], n_resamples: int) -> tuple[list[str], list[str]]:
    """The headline for suites with length sweeps: where each core breaks (plot, tables) and the short/long verdict."""
    scores = horizon_scores(ok, _normalized)
    if not scores:
        return [], []
    knobs = _knobs(ok)
    plot = plot_horizons(out_dir, scores, knobs)
    verdicts = short_long_verdicts(scores, _horizons(ok), n_resamples)
    lines = [
        "## Where each core breaks",
        "",
        "Normalised final return (IQM over seeds, 95% CI) against the memory length the task demands. A core *holds* "
        "a length while its IQM stays at or above 0.9 (90% of the memoryless-to-optimum gap); *breaks at* is the "
        "first length where it does not.",
        "",
    ]
    if plot is not None:
        lines += [f"![where each core breaks]({plot.name})", ""]
    lines += [f"- {v}" for v in verdicts] + ([""] if verdicts else [])
    lines += horizon_tables(scores, knobs, n_resamples)
    return lines, verdicts


def _knobs(results: list[dict[str, Any]]) -> dict[str, str]:
    """family -> the env kwarg its length sweep varies (the one whose value is the run's memory length)."""
    knobs: dict[str, str] = {}
    for r in results:
        info = r.get("task_info") or {}
        family, length = info.get("family"), info.get("memory_length")
        if family and family not in knobs:
            keys = [k for k, v in (r.get("env_kwargs") or {}).items() if v == length]
            if len(keys) == 1:
                knobs[family] = keys[0]
    return knobs


def _equal_parameter_section(
    ok: list[dict[str, Any]],
    comparisons: dict[tuple[str, str, str], tuple[float, float, float]],
    cores: list[str],
) -> tuple[list[str], list[str]]:
    """Each core against the LSTM at equal width and at equal parameters, and what that says of the GRU's claims."""
    matched = [c for c in cores if is_equal_params(c)]
    if not matched or "lstm" not in cores:
        return [], []
    sizes = {c: _median_value([r for r in ok if r["variant"] == c], "hidden_size") for c in cores}
    params = {c: _median_value([r for r in ok if r["variant"] == c], "recurrent_params") for c in cores}
    lines = [
        "",
        "## Equal width or equal parameters",
        "",
        f"Each core against the LSTM over all tasks: at the suite's hidden size ({sizes.get('lstm') or 0:.0f}), and "
        "widened or narrowed to the LSTM's recurrent parameter count. P(X > LSTM), 95% CI.",
        "",
        "| core | hidden / recurrent params (equal width) | P(X > LSTM), equal width | hidden / recurrent params "
        "(equal params) | P(X > LSTM), equal params |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant in matched:
        core = variant_names.base_core(variant)
        width = _p_better(comparisons, core, "lstm")
        fair = _p_better(comparisons, variant, "lstm")
        lines.append(
            f"| {core} | {_size(sizes, params, core)} | {_fmt_ci(width)} | {_size(sizes, params, variant)} "
            f"| {_fmt_ci(fair)} |"
        )
    verdicts = []
    width, fair = _p_better(comparisons, "gru", "lstm"), _p_better(comparisons, "gru-eqp", "lstm")
    if width and fair and params.get("gru") and params.get("lstm"):
        ratio = params["gru"] / params["lstm"]
        verdicts.append(
            f"**GRU as good as LSTM, equal width vs equal parameters: {_outcome(width)} at equal width (where the GRU "
            f"has {ratio:.2f}× the LSTM's recurrent parameters), {_outcome(fair)} at equal parameters.** "
            f"P(GRU > LSTM) = {_fmt_ci(width)} and {_fmt_ci(fair)}. "
            + (
                "So the GRU's parameter saving costs no return here: the 'fewer parameters' claim holds."
                if width[2] >= 0.5
                else "So the saving is paid for in return: the 'fewer parameters' claim holds only as a count, "
                "not as an equal result."
            )
        )
    return lines, verdicts


def _p_better(
    comparisons: dict[tuple[str, str, str], tuple[float, float, float]], x: str, y: str
) -> tuple[float, float, float] | None:
    direct = comparisons.get((x, y, "all"))
    if direct is not None:
        return direct
    reverse = comparisons.get((y, x, "all"))
    return None if reverse is None else _complement(reverse)


def _complement(interval: tuple[float, float, float]) -> tuple[float, float, float]:
    """P(Y > X) and its CI from P(X > Y)'s: ties count half, so one is one minus the other (bounds swap)."""
    point, low, high = interval
    return 1.0 - point, 1.0 - high, 1.0 - low


def _outcome(interval: tuple[float, float, float]) -> str:
    if interval[1] > 0.5:
        return "better"
    if interval[2] < 0.5:
        return "worse"
    return "as good (no significant difference)"


def _fmt_ci(interval: tuple[float, float, float] | None) -> str:
    return "-" if interval is None else f"{interval[0]:.2f} [{interval[1]:.2f}, {interval[2]:.2f}]"


def _size(sizes: dict[str, float | None], params: dict[str, float | None], variant: str) -> str:
    hidden, count = sizes.get(variant), params.get(variant)
    return "-" if hidden is None or count is None else f"{hidden:.0f} / {count:.0f}"


def _planned_runs(out_dir: Path) -> int | None:
    """How many runs the suite has, as the last ``rlgru bench`` on this directory recorded it."""
    path = out_dir / "sweep.json"
    try:
        runs = json.loads(path.read_text()).get("runs") if path.is_file() else None
    except (OSError, ValueError):
        return None
    return runs if isinstance(runs, int) else None


def _cost_of_benchmark(out_dir: Path, results: list[dict[str, Any]]) -> list[str]:
    """What the committed results cost to produce: sweep wall time (summed over resumes) and per-run compute."""
    meta = json.loads((out_dir / "sweep.json").read_text()) if (out_dir / "sweep.json").is_file() else {}
    run_seconds = sum(_number(r.get("wall_seconds")) or 0.0 for r in results)
    lines = ["", "## Cost of this benchmark", ""]
    if meta.get("wall_seconds") is not None:
        lines.append(
            f"- Wall time: {meta['wall_seconds'] / 3600:.2f} h on {meta.get('machine', 'an unnamed machine')} with "
            f"{meta.get('workers', '?')} worker(s) ({meta.get('backend', '?')} backend), summed over every "
            "`rlgru bench` call that ran these runs."
        )
    lines.append(
        f"- Compute: {run_seconds / 3600:.2f} worker-hours over {len(results)} runs (training and evaluation, "
        "as each run measured itself)."
    )
    versions = ", ".join(f"{k} {meta[k]}" for k in ("rlgru", "torch", "python") if meta.get(k))
    if versions:
        lines.append(f"- Versions: {versions}.")
    return lines


def _iqm_of_task(task: str):  # noqa: ANN202 - a small closure factory
    return lambda sample: iqm(sample[task])


def _pooled_iqm(sample: dict[str, np.ndarray]) -> float:
    return iqm(np.concatenate(list(sample.values())))


def _scores_by_core(results: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        value = _normalized(r)
        if value is not None:
            grouped[r["variant"]][r["task"]].append(value)
    return {core: {task: np.array(v) for task, v in tasks.items()} for core, tasks in grouped.items()}


def _raw_by_core(results: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        value = _number(r.get("final_return"))
        if value is not None:
            grouped[r["variant"]][r["task"]].append(value)
    return {core: {task: np.array(v) for task, v in tasks.items()} for core, tasks in grouped.items()}


def _horizons(results: list[dict[str, Any]]) -> dict[str, str]:
    """task -> its declared memory horizon ("short", "long", ...), for tasks that declare one."""
    return {r["task"]: r["task_info"]["horizon"] for r in results if (r.get("task_info") or {}).get("horizon")}


def _comparison_pairs(cores: list[str]) -> list[tuple[str, str]]:
    """GRU against every other core, LSTM against RNN, then both against the reference: the claims are about GRU.

    Equal-parameter variants are compared with the core whose parameter count they match (the LSTM by default).
    """
    others = [c for c in cores if c not in ("gru", REFERENCE_CORE) and not is_equal_params(c)]
    matched = [(c, "lstm") for c in cores if is_equal_params(c)]
    if matched:  # each core against the LSTM at equal width too, for the equal-width-or-parameters table
        matched = [(c, "lstm") for c in others if c not in ("lstm", "rnn")] + matched
    return [
        *(("gru", c) for c in others),
        ("lstm", "rnn"),
        ("gru", REFERENCE_CORE),
        ("lstm", REFERENCE_CORE),
        *matched,
    ]


def _comparisons(
    scores: dict[str, dict[str, np.ndarray]],
    horizons: dict[str, str],
    n_resamples: int,
    cores: list[str] | None = None,
) -> dict[tuple[str, str, str], tuple[float, float, float]]:
    """P(X > Y) with its CI over all tasks, and over each horizon class when the suite has more than one."""
    out: dict[tuple[str, str, str], tuple[float, float, float]] = {}
    classes = sorted(set(horizons.values()))
    for x, y in _comparison_pairs(cores if cores is not None else _order_cores(scores)):
        if x not in scores or y not in scores:
            continue
        common = sorted(set(scores[x]) & set(scores[y]))
        subsets = {"all": common}
        if len(classes) > 1:
            subsets.update({f"{c} horizon": [t for t in common if horizons.get(t) == c] for c in classes})
        for name, tasks in subsets.items():
            if not tasks:
                continue
            out[(x, y, name)] = stratified_bootstrap_ci(
                probability_of_improvement,
                {t: scores[x][t] for t in tasks},
                {t: scores[y][t] for t in tasks},
                n_resamples=n_resamples,
            )
    return out


def _verdicts(
    results: list[dict[str, Any]],
    scores: dict[str, dict[str, np.ndarray]],
    comparisons: dict[tuple[str, str, str], tuple[float, float, float]],
) -> list[str]:
    verdicts = []
    by_core: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_core[r["variant"]].append(r)
    gru_p, lstm_p = (_median_value(by_core.get(core, []), "recurrent_params") for core in ("gru", "lstm"))
    if gru_p is not None and lstm_p:
        verdicts.append(
            f"**Fewer parameters: supported.** The GRU core has {gru_p / lstm_p:.2f}× the LSTM core's "
            f"recurrent parameters ({gru_p:.0f} vs {lstm_p:.0f}): three gate blocks instead of four."
        )
    gru_s, lstm_s = (_median_value(by_core.get(core, []), "steps_per_second") for core in ("gru", "lstm"))
    if gru_s is not None and lstm_s:
        word = "supported" if gru_s > lstm_s * 1.05 else ("not supported" if gru_s < lstm_s * 0.95 else "a tie")
        verdicts.append(
            f"**Faster: {word}.** Median training throughput GRU {gru_s:.0f} vs LSTM {lstm_s:.0f} steps/s "
            f"({gru_s / lstm_s:.2f}×) on this machine, same runs as above."
        )
    # "as good as LSTM when the context is not very long": judged where it is not long, if the suite says
    subset = "short horizon" if ("gru", "lstm", "short horizon") in comparisons else "all"
    gl = comparisons.get(("gru", "lstm", subset))
    if gl:
        point, low, high = gl
        if low > 0.5:
            word = "supported, GRU better"
        elif high < 0.5:
            word = "not supported: LSTM better"
        else:
            word = "supported (no significant difference)"
        where = "the short-horizon tasks" if subset != "all" else "all tasks"
        text = f"**As good as LSTM: {word}.** P(GRU > LSTM) = {point:.2f} [{low:.2f}, {high:.2f}] over {where}"
        long_gl = comparisons.get(("gru", "lstm", "long horizon"))
        if long_gl:
            text += f"; on the long-horizon tasks {long_gl[0]:.2f} [{long_gl[1]:.2f}, {long_gl[2]:.2f}]"
        verdicts.append(text + ".")
    # gradient flow shows where memory must last: judged on the long-horizon tasks when there are any
    subset = "long horizon" if ("gru", "rnn", "long horizon") in comparisons else "all"
    gr = comparisons.get(("gru", "rnn", subset))
    if gr:
        point, low, high = gr
        word = "supported" if low > 0.5 else ("contradicted" if high < 0.5 else "not shown (CI includes 0.5)")
        long_tasks = sorted({r["task"] for r in results if (r.get("task_info") or {}).get("horizon") == "long"})
        detail = ""
        if long_tasks and "gru" in scores and "rnn" in scores:
            gaps = [
                f"{t}: GRU IQM {iqm(scores['gru'][t]):.2f} vs RNN {iqm(scores['rnn'][t]):.2f}"
                for t in long_tasks
                if t in scores["gru"] and t in scores["rnn"]
            ]
            detail = " Long-horizon tasks (normalised): " + "; ".join(gaps) + "."
        where = "the long-horizon tasks" if subset != "all" else "all tasks (none is marked long-horizon)"
        verdicts.append(
            f"**Better gradient flow than a plain RNN: {word}.** P(GRU > RNN) = {point:.2f} "
            f"[{low:.2f}, {high:.2f}] over {where}.{detail}"
        )
    if by_core.get("gru"):
        others = [  # the memoryless baseline has its own section: it is judged against, not judged
            c for c in _order_cores(by_core)
            if c not in (*_CLAIMED_CORES, REFERENCE_CORE) and not is_equal_params(c)
            and not is_memoryless_variant(results, c)
        ]
        verdicts += [_versus_gru(core, by_core, comparisons) for core in others]
    return verdicts or ["Not enough completed runs to judge any claim."]


def _versus_gru(
    core: str,
    by_core: dict[str, list[dict[str, Any]]],
    comparisons: dict[tuple[str, str, str], tuple[float, float, float]],
) -> str:
    """A core nobody wrote a claim for, judged against GRU on returns and cost, from the runs alone."""
    subsets = [(subset, ci) for (x, y, subset), ci in comparisons.items() if x == "gru" and y == core]
    overall = dict(subsets).get("all")
    if overall is None:
        returns = f"Returns: - (no normalised scores shared with GRU); P({core} > GRU) unknown."
    else:
        returns = f"Returns: {_against_gru(core, overall, 'over all tasks')}"
        per_class = [
            _against_gru(core, ci, f"on the {s.removesuffix(' horizon')}-horizon tasks")
            for s, ci in subsets
            if s != "all"
        ]
        returns += ("; " + "; ".join(per_class) + ".") if per_class else "."
    costs = [_cost_ratio(by_core[core], by_core["gru"], *spec) for spec in _COST_RATIOS]
    return f"**{core} vs GRU.** {returns} Cost, median {core} / median GRU: " + "; ".join(costs) + "."


def _against_gru(core: str, gru_vs_core: tuple[float, float, float], where: str) -> str:
    """Turn P(GRU > core) into P(core > GRU) and name the outcome."""
    point, low, high = _complement(gru_vs_core)
    word = "better" if low > 0.5 else ("worse" if high < 0.5 else "no significant difference")
    return f"{word} {where}, P({core} > GRU) = {point:.2f} [{low:.2f}, {high:.2f}]"


def _cost_ratio(runs: list[dict[str, Any]], gru_runs: list[dict[str, Any]], key: str, label: str, unit: str) -> str:
    """``label ratio× (core vs gru unit)``, or ``label -`` when either median is missing or GRU's is zero."""
    value, gru_value = _median_value(runs, key), _median_value(gru_runs, key)
    if value is None or not gru_value:
        return f"{label} -"
    return f"{label} {value / gru_value:.2f}× ({value:.0f} vs {gru_value:.0f}{unit})"


def _median_value(runs: list[dict[str, Any]], key: str) -> float | None:
    """Median of a field over runs, ignoring runs where it is absent, null or NaN; None if no run has it."""
    values = [v for v in (_number(r.get(key)) for r in runs) if v is not None]
    return float(np.median(values)) if values else None


def _median(runs: list[dict[str, Any]], key: str, fmt: str) -> str:
    value = _median_value(runs, key)
    return "-" if value is None else format(value, fmt)


def _sweep_meta(out_dir: Path) -> str:
    path = out_dir / "sweep.json"
    if not path.exists():
        return ""
    meta = json.loads(path.read_text())
    parts = [f"{k}: {v}" for k, v in meta.items() if k in ("suite", "machine", "workers", "backend", "wall_seconds")]
    return "Sweep — " + "; ".join(parts) + "."


#: column order (registry order, then equal-parameter variants, other cores, the reference): see ``variants``
_core_rank = variant_names.variant_rank
_order_cores = variant_names.order_variants


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
