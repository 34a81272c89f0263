"""PNG figures of the memory probe. Uses matplotlib's object API (no pyplot), so no display or global state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rlgru.harness.memory_probe import HiddenTrajectory


def plot_memory_horizon(curve: dict[str, Any], path: Path, title: str) -> Path:
    """Return vs reset interval k (log scale), with the carried-state return and the task's reference lines.

    ``curve`` is ``MemoryHorizon.as_dict()`` plus optional ``optimal_return`` / ``memoryless_return``.
    """
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    ks = np.array([point["k"] for point in curve["curve"]])
    means = np.array([point["mean_return"] for point in curve["curve"]])
    errors = np.array([point["std_return"] / np.sqrt(max(point["episodes"], 1)) for point in curve["curve"]])
    axes.plot(ks, means, "o-", color="C0", label="state zeroed every k steps")
    axes.fill_between(ks, means - errors, means + errors, color="C0", alpha=0.2, linewidth=0)
    carried = curve["carried"]
    axes.axhline(carried["mean_return"], color="C0", linestyle="--", label="state carried (as trained)")
    if curve.get("optimal_return") is not None:
        axes.axhline(curve["optimal_return"], color="C2", linestyle=":", label="optimal")
    if curve.get("memoryless_return") is not None:
        axes.axhline(curve["memoryless_return"], color="C3", linestyle=":", label="best memoryless policy")
    if curve.get("memory_horizon") is not None:
        axes.axvline(
            curve["memory_horizon"], color="grey", linewidth=0.8, label=f"horizon: k = {curve['memory_horizon']}"
        )
    axes.set_xscale("log", base=2)
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.set_xlabel("k: recurrent state zeroed every k steps (k = 1: no memory)")
    axes.set_ylabel(f"mean episode return ({carried['episodes']} episodes)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.savefig(path, dpi=110)
    return path


def plot_hidden_trajectory(trajectory: HiddenTrajectory, path: Path, title: str) -> Path:
    """One panel per principal component of the hidden state against time; reward steps marked."""
    n = trajectory.components.shape[1]
    figure = Figure(figsize=(6.4, 1.2 + 1.3 * n), layout="constrained")
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(len(trajectory.components))
    rewarded = np.flatnonzero(trajectory.rewards != 0)
    if len(rewarded) > max(1, len(steps) // 4):
        rewarded = rewarded[:0]  # rewards at most steps: marking them would only hide the curves
    for index, axes in enumerate(axes_list):
        axes.plot(steps, trajectory.components[:, index], "o-", markersize=3, color=f"C{index}")
        for step in rewarded:
            axes.axvline(step, color="grey", linewidth=0.6, alpha=0.5)
        axes.set_ylabel(f"PC{index + 1}\n({trajectory.explained[index]:.0%})")
        axes.grid(alpha=0.3)
    axes_list[-1].set_xlabel("step of the episode" + (" (grey: nonzero reward)" if len(rewarded) else ""))
    axes_list[0].set_title(title, fontsize=10)
    figure.savefig(path, dpi=110)
    return path


__all__ = ["plot_hidden_trajectory", "plot_memory_horizon"]
