"""Published results beside ours: the POPGym paper's GRU and LSTM numbers next to rlgru's runs of the same tasks.

POPGym reports MMER (the best mean episodic return over training); ``popgym_reference`` computes it from our runs
and holds the paper's figures that could be found, with where each came from. A figure that was not found shows as
"not found", never as a guess, and the section ends with what differs between the two setups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlgru.bench import popgym_reference as popgym
from rlgru.bench.stats import probability_of_improvement, stratified_bootstrap_ci

CORES = ("gru", "lstm")


def published_section(results: list[dict[str, Any]], n_resamples: int = 2000) -> list[str]:
    """Markdown for the runs on POPGym tasks (empty when the suite has none), verdict included."""
    runs = [r for r in results if popgym.plain_env_id(str(r.get("env_id", ""))) in popgym.TASKS]
    if not runs:
        return []
    summaries = popgym.mmer(runs)
    tasks = sorted({r["task"] for r in runs})
    env_of = {r["task"]: popgym.plain_env_id(r["env_id"]) for r in runs}
    lines = [
        "",
        "## Beside published results: POPGym",
        "",
        f"MMER (POPGym's metric: each run's best mean episodic return over training, then mean ± std over seeds) of "
        f"our runs and the figures published in {popgym.PAPER}. Returns of every POPGym task lie in [-1, 1].",
        "",
        "| task | paper's name | GRU, ours | GRU, paper | LSTM, ours | LSTM, paper |",
        "|---|---|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    for task in tasks:
        env_id = env_of[task]
        cells = []
        for core in CORES:
            summary = summaries.get((task, core))
            cells.append(_ours(summary))
            figure = popgym.published(env_id, core)
            if figure is None:
                cells.append("not found")
                continue
            spread = "" if figure.mmer_std is None else f" ± {figure.mmer_std:.3f}"
            mark = "" if figure.verified_against_paper else " †"
            cells.append(f"{figure.mmer_mean:.3f}{spread}{mark}")
            if not figure.verified_against_paper:
                notes.append(f"† {core.upper()} {figure.paper_env}: {figure.where}, read via {figure.via}.")
        lines.append(f"| {task} | {popgym.TASKS[env_id]} | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *sorted(set(notes))]
    missing = [f"{popgym.TASKS[e]} {c.upper()}" for e, c in popgym.MISSING if e in env_of.values()]
    if missing:
        lines += [
            "",
            "*Not found:* the paper's per-environment table (its Appendix Table 3) could not be read on this "
            f"offline machine, so these published figures are missing: {', '.join(missing)}.",
        ]
    verdict = _gru_vs_lstm(summaries, tasks, n_resamples)
    if verdict:
        lines += ["", f"- {verdict}"]
    lines += ["", "What differs from the paper:", "", *_as_markdown_list(popgym.DIFFERENCES)]
    return lines


def _ours(summary: popgym.MMER | None) -> str:
    if summary is None or summary.mean is None:
        return "-"
    spread = "" if summary.std is None else f" ± {summary.std:.3f}"
    return f"{summary.mean:.3f}{spread} (n={summary.n})"


def _gru_vs_lstm(summaries: dict[tuple[str, str], popgym.MMER], tasks: list[str], n_resamples: int) -> str | None:
    """P(GRU > LSTM) over the POPGym tasks on per-run MMER (runs resampled within each task)."""
    shared = [t for t in tasks if all(summaries.get((t, c)) and summaries[(t, c)].per_run for c in CORES)]
    if not shared:
        return None
    gru = {t: np.array(list(summaries[(t, "gru")].per_run.values())) for t in shared}
    lstm = {t: np.array(list(summaries[(t, "lstm")].per_run.values())) for t in shared}
    point, low, high = stratified_bootstrap_ci(probability_of_improvement, gru, lstm, n_resamples=n_resamples)
    word = "GRU better" if low > 0.5 else ("LSTM better" if high < 0.5 else "no significant difference")
    return (
        f"**POPGym, GRU vs LSTM in our runs: {word}.** P(GRU > LSTM) on per-run MMER = {point:.2f} "
        f"[{low:.2f}, {high:.2f}] over {len(shared)} tasks."
    )


def _as_markdown_list(text: str) -> list[str]:
    """DIFFERENCES is a heading line and ``- `` items wrapped at 120 columns: join each item onto one line."""
    items: list[str] = []
    for line in text.splitlines()[1:]:
        if line.startswith("- "):
            items.append(line)
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return items


__all__ = ["published_section"]
