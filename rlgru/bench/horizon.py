"""Horizon curves: normalised return against the memory length a task demands, and the length where a core breaks.

A suite task with ``lengths`` runs one task per knob value (``RepeatFirst-8``, ``RepeatFirst-32``, ...); its results
carry ``task_info.family`` and ``task_info.memory_length``. Here they become, per family, a curve per core of the
IQM normalised final return over seeds (with a 95% bootstrap interval), the length at which the curve first drops
below 90% of the memoryless-to-optimum gap, and the verdict on "GRU is as good as LSTM on short horizons but not on
very long ones", computed from the runs at equal width and again at equal parameters.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlgru.bench.stats import iqm, probability_of_improvement, stratified_bootstrap_ci
from rlgru.bench.variants import base_core, is_equal_params, order_variants
from rlgru.runtime.files import atomic_open

#: a core "holds" a length while its IQM normalised return stays at or above this share of the gap
HOLD_THRESHOLD = 0.9
#: (x, y) pairs the short/long verdict compares: at equal width, then the GRU at the LSTM's parameter count
CLAIM_PAIRS = (("gru", "lstm"), ("gru-eqp", "lstm"))

#: family -> variant -> memory length -> normalised final returns over seeds
HorizonScores = dict[str, dict[str, dict[int, np.ndarray]]]


@dataclass(frozen=True)
class Breakpoint:
    """Where a core's curve first falls below the hold threshold (None: it never does over the lengths run)."""

    held_up_to: int | None
    breaks_at: int | None


def horizon_scores(results: list[dict[str, Any]], normalized: Any) -> HorizonScores:
    """Scores of the runs that belong to a length sweep; ``normalized(result)`` gives a run's score or None."""
    grouped: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for result in results:
        info = result.get("task_info") or {}
        family, length = info.get("family"), info.get("memory_length")
        value = normalized(result)
        if family and length is not None and value is not None:
            grouped[family][result["variant"]][int(length)].append(value)
    return {
        family: {v: {n: np.array(s) for n, s in sorted(lengths.items())} for v, lengths in variants.items()}
        for family, variants in grouped.items()
    }


def breakpoint_of(curve: dict[int, np.ndarray]) -> Breakpoint:
    """The first length (in increasing order) whose IQM is below the threshold, and the length before it."""
    held = None
    for length in sorted(curve):
        if iqm(curve[length]) < HOLD_THRESHOLD:
            return Breakpoint(held, length)
        held = length
    return Breakpoint(held, None)


def horizon_tables(scores: HorizonScores, knobs: dict[str, str], n_resamples: int) -> list[str]:
    """Markdown: per family, a row per core with its IQM [CI] at each length and where it breaks."""
    lines: list[str] = []
    for family, variants in sorted(scores.items()):
        lengths = sorted({n for curve in variants.values() for n in curve})
        knob = knobs.get(family, "length")
        lines += [
            f"### {family} (knob: `{knob}`)",
            "",
            "| core | " + " | ".join(str(n) for n in lengths) + " | holds up to | breaks at |",
            "|---|" + "---:|" * len(lengths) + "---:|---:|",
        ]
        for variant in order_variants(variants):
            curve = variants[variant]
            cells = []
            for length in lengths:
                if length not in curve:
                    cells.append("-")
                    continue
                point, low, high = stratified_bootstrap_ci(
                    lambda s, n=length: iqm(s[n]), {length: curve[length]}, n_resamples=n_resamples
                )
                cells.append(f"{point:.2f} [{low:.2f}, {high:.2f}]")
            point = breakpoint_of(curve)
            held = "-" if point.held_up_to is None else str(point.held_up_to)
            breaks = f"> {max(curve)}" if point.breaks_at is None else str(point.breaks_at)
            lines.append(f"| {variant} | " + " | ".join(cells) + f" | {held} | {breaks} |")
        lines.append("")
    return lines


def plot_horizons(out_dir: Path, scores: HorizonScores, knobs: dict[str, str], n_resamples: int = 500) -> Path | None:
    """``horizon.png``: one panel per family, a curve per core (dashed: equal parameters), with 95% bands."""
    if not scores:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted(scores)
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4.2), squeeze=False)
    colours: dict[str, str] = {}
    for ax, family in zip(axes[0], families, strict=True):
        for variant in order_variants(scores[family]):
            curve = scores[family][variant]
            lengths = sorted(curve)
            points = [iqm(curve[n]) for n in lengths]
            bands = [
                stratified_bootstrap_ci(lambda s, n=n: iqm(s[n]), {n: curve[n]}, n_resamples=n_resamples)[1:]
                for n in lengths
            ]
            colour = colours.setdefault(base_core(variant), f"C{len(colours)}")
            style = "--" if is_equal_params(variant) else "-"
            ax.plot(lengths, points, style, color=colour, marker="o", markersize=3, label=variant)
            if not is_equal_params(variant):
                ax.fill_between(lengths, [b[0] for b in bands], [b[1] for b in bands], color=colour, alpha=0.12)
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
        ax.axhline(HOLD_THRESHOLD, color="grey", linestyle=":", linewidth=0.8)
        ax.axhline(0.0, color="grey", linestyle="-.", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ticks = sorted({n for curve in scores[family].values() for n in curve})
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.minorticks_off()
        ax.set(
            title=f"{family}: where memory breaks",
            xlabel=f"memory length ({knobs.get(family, 'length')})",
            ylabel="normalised return (IQM over seeds)",
            ylim=(-0.15, 1.1),
        )
        ax.legend(fontsize=7, ncol=2)
    fig.text(
        0.01,
        0.01,
        "1 = optimum, 0 = best memoryless policy, dotted = 90% of the gap; dashed = equal params",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path = out_dir / "horizon.png"
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, dpi=100, format="png")
    plt.close(fig)
    return path


def short_long_verdicts(scores: HorizonScores, horizon_of: dict[str, str], n_resamples: int) -> list[str]:
    """The verdict on "as good as LSTM on short horizons but not on very long ones", at each budget it was run at.

    Short and long come from each task's ``lengths.long_from``; P(X > Y) pools the tasks of both families in each
    class (stratified bootstrap over seeds within each task).
    """
    verdicts = []
    by_task = _scores_by_task(scores)
    for x, y in CLAIM_PAIRS:
        if x not in by_task or y not in by_task:
            continue
        budget = "at equal parameters" if is_equal_params(x) else "at equal width"
        classes = {}
        for horizon in ("short", "long"):
            tasks = [t for t in sorted(set(by_task[x]) & set(by_task[y])) if horizon_of.get(t) == horizon]
            if tasks:
                classes[horizon] = stratified_bootstrap_ci(
                    probability_of_improvement,
                    {t: by_task[x][t] for t in tasks},
                    {t: by_task[y][t] for t in tasks},
                    n_resamples=n_resamples,
                )
        if set(classes) != {"short", "long"}:
            continue
        short, long = classes["short"], classes["long"]
        if short[2] < 0.5:
            word = f"not supported: {y} is better already on short horizons"
        elif long[2] < 0.5:
            word = "supported"
        elif long[1] > 0.5:
            word = f"half supported: as good on short horizons, and better than {y} on long ones"
        else:
            word = "half supported: as good on short horizons, and no significant difference on long ones either"
        breaks = "; ".join(
            f"{family}: {x} {_describe(breakpoint_of(variants[x]), variants[x])}, "
            f"{y} {_describe(breakpoint_of(variants[y]), variants[y])}"
            for family, variants in sorted(scores.items())
            if x in variants and y in variants
        )
        verdicts.append(
            f"**{base_core(x).upper()} as good as {y.upper()} on short horizons but not on very long ones "
            f"({budget}): {word}.** P({x} > {y}) = {_ci(short)} on the short lengths, {_ci(long)} on the long ones. "
            f"Where each holds 90% of the gap: {breaks}."
        )
    return verdicts


def _describe(point: Breakpoint, curve: dict[int, np.ndarray]) -> str:
    if point.breaks_at is None:
        return f"holds at every length (to {max(curve)})"
    if point.held_up_to is None:
        return f"below 90% from the shortest length ({point.breaks_at})"
    return f"holds to {point.held_up_to}, breaks at {point.breaks_at}"


def _scores_by_task(scores: HorizonScores) -> dict[str, dict[str, np.ndarray]]:
    """variant -> task name (``<family>-<length>``) -> scores, the shape the P(X > Y) statistics take."""
    out: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for family, variants in scores.items():
        for variant, curve in variants.items():
            for length, values in curve.items():
                out[variant][f"{family}-{length}"] = values
    return out


def _ci(interval: tuple[float, float, float]) -> str:
    return f"{interval[0]:.2f} [{interval[1]:.2f}, {interval[2]:.2f}]"


__all__ = [
    "HOLD_THRESHOLD",
    "Breakpoint",
    "breakpoint_of",
    "horizon_scores",
    "horizon_tables",
    "plot_horizons",
    "short_long_verdicts",
]
