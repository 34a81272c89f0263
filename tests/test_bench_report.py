"""The sweep report: tables, curves and verdicts computed from per-run result files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from rlgru.bench import report, variants
from rlgru.bench.report import write_report
from rlgru.bench.suite import REFERENCE_CORE
from rlgru.cores import core_names


def fake_run(
    out: Path, task: str, core: str, seed: int, final: float | None, status: str = "ok",
    drop: tuple[str, ...] = (), **fields: Any,
) -> None:
    """One result.json; ``fields`` override values, ``drop`` removes keys (as an older runner would have)."""
    run_dir = out / "runs" / f"{task}-{core}-{seed}"
    run_dir.mkdir(parents=True)
    curve = [[500, final / 2], [1000, final]] if final is not None else []
    result = {
        "task": task, "core": core, "seed": seed, "timesteps": 1000, "final_return": final, "best_return": final,
        "wall_seconds": 10.0, "steps_per_second": {"gru": 120.0, "lstm": 100.0, "rnn": 130.0}.get(core, 110.0),
        "params": 1000, "recurrent_params": {"gru": 300, "lstm": 400, "rnn": 100}.get(core, 200),
        "inference_latency_us": 50.0, "peak_memory_mb": 300.0, "status": status, "curve": curve,
        "task_info": {"optimal_return": 1.0, "memoryless_return": 0.0, "horizon": "long" if task == "b" else "short"},
    }
    result.update(fields)
    for key in drop:
        result.pop(key)
    if status != "ok":
        result["error"] = "RuntimeError: boom"
    (run_dir / "result.json").write_text(json.dumps(result))


def test_report_writes_tables_plots_and_verdicts(tmp_path: Path) -> None:
    for task in ("a", "b"):
        for seed in range(3):
            fake_run(tmp_path, task, "gru", seed, 0.9 + 0.01 * seed)
            fake_run(tmp_path, task, "lstm", seed, 0.88 + 0.02 * seed)
            fake_run(tmp_path, task, "rnn", seed, 0.1 + 0.01 * seed)
    fake_run(tmp_path, "a", "rnn", 9, 0.0, status="failed")
    readme = write_report(tmp_path, n_resamples=200).read_text()

    with (tmp_path / "runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 19
    assert {"task", "core", "seed", "final_return", "best_return", "wall_seconds", "steps_per_second",
            "params"} <= set(rows[0])
    assert (tmp_path / "learning_curves.csv").read_text().count("\n") == 1 + 18 * 2
    assert (tmp_path / "curves_a.png").stat().st_size > 0
    assert "Fewer parameters: supported" in readme and "0.75×" in readme
    assert "Faster: supported" in readme
    assert "Better gradient flow than a plain RNN: supported" in readme
    assert "P(GRU > RNN) = 1.00" in readme
    assert "boom" in readme


def test_claims_are_judged_on_the_horizon_they_are_about(tmp_path: Path) -> None:
    """GRU = RNN on short tasks but far better on the long one: gradient flow is judged on the long task only."""
    for seed in range(4):
        for core in ("gru", "lstm", "rnn"):
            fake_run(tmp_path, "a", core, seed, 0.9 + 0.01 * seed)  # short horizon: every core alike
        fake_run(tmp_path, "b", "gru", seed, 0.9 + 0.01 * seed)
        fake_run(tmp_path, "b", "lstm", seed, 0.5 + 0.01 * seed)
        fake_run(tmp_path, "b", "rnn", seed, 0.05 * seed)
    readme = write_report(tmp_path, n_resamples=200).read_text()
    assert "| gru > rnn | long horizon | 1.00 |" in readme
    assert "| gru > rnn | short horizon | 0.50 |" in readme
    assert "Better gradient flow than a plain RNN: supported.** P(GRU > RNN) = 1.00" in readme
    assert "over the long-horizon tasks" in readme
    # as good as LSTM where the context is short, even though GRU wins on the long task
    assert "As good as LSTM: supported (no significant difference).** P(GRU > LSTM) = 0.50" in readme
    assert "on the long-horizon tasks 1.00" in readme


def _header(readme: str) -> str:
    return next(line for line in readme.splitlines() if line.startswith("| task | horizon |"))


def test_core_order_follows_the_registry_then_unknown_cores_then_the_reference(tmp_path: Path) -> None:
    for core in (REFERENCE_CORE, "mymodule:MyCore", "rnn", "gru", "lstm"):
        fake_run(tmp_path, "a", core, 0, 0.5)
    readme = write_report(tmp_path, n_resamples=20).read_text()
    registered = [c for c in core_names() if c in ("gru", "lstm", "rnn")]
    expected = " | ".join([*registered, "mymodule:MyCore", REFERENCE_CORE])
    assert _header(readme).endswith(f"| {expected} |")
    with (tmp_path / "runs.csv").open() as handle:
        assert [row["core"] for row in csv.DictReader(handle)] == [*registered, "mymodule:MyCore", REFERENCE_CORE]


def test_core_order_is_read_from_the_registry_not_a_fixed_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reorder the registry: the report follows; names it does not know sort after it, alphabetically."""
    monkeypatch.setattr(variants, "core_names", lambda: ["rnn", "mingru", "gru", "lstm"])
    cores = [REFERENCE_CORE, "zeta:Core", "gru", "aaa", "lstm", "mingru", "rnn"]
    assert report._order_cores(cores) == ["rnn", "mingru", "gru", "lstm", "aaa", "zeta:Core", REFERENCE_CORE]


@pytest.mark.parametrize(
    ("offset", "word", "p"),
    [(0.4, "better", "1.00 [1.00, 1.00]"), (0.0, "no significant difference", "0.50"),
     (-0.4, "worse", "0.00 [0.00, 0.00]")],
)
def test_other_core_gets_a_verdict_against_gru_from_the_numbers(
    tmp_path: Path, offset: float, word: str, p: str
) -> None:
    for task in ("a", "b"):
        for seed in range(4):
            fake_run(tmp_path, task, "gru", seed, 0.5 + 0.01 * seed)
            fake_run(tmp_path, task, "mingru", seed, 0.5 + offset + 0.01 * seed, recurrent_params=150,
                     steps_per_second=240.0, inference_latency_us=25.0)
    readme = write_report(tmp_path, n_resamples=100).read_text()
    verdict = next(line for line in readme.splitlines() if line.startswith("- **mingru vs GRU.**"))
    assert f"Returns: {word} over all tasks, P(mingru > GRU) = {p}" in verdict
    assert f"{word} on the short-horizon tasks, P(mingru > GRU) = {p}" in verdict
    assert f"{word} on the long-horizon tasks, P(mingru > GRU) = {p}" in verdict
    assert "recurrent parameters 0.50× (150 vs 300)" in verdict
    assert "training throughput 2.00× (240 vs 120 steps/s)" in verdict
    assert "inference latency 0.50× (25 vs 50 µs/step)" in verdict
    assert "| gru > mingru | all |" in readme
    assert "Fewer parameters" not in readme  # no LSTM runs: the GRU-vs-LSTM claims are not judged


def test_verdict_for_each_unclaimed_core_only(tmp_path: Path) -> None:
    for seed in range(3):
        for core in ("gru", "lstm", "rnn", "mymodule:MyCore", REFERENCE_CORE):
            fake_run(tmp_path, "a", core, seed, 0.5 + 0.01 * seed)
    readme = write_report(tmp_path, n_resamples=50).read_text()
    assert "**mymodule:MyCore vs GRU.** Returns: no significant difference over all tasks" in readme
    assert "on the short-horizon tasks" not in readme.split("**mymodule:MyCore vs GRU.**")[1]  # one horizon class
    for core in ("lstm", "rnn", REFERENCE_CORE):
        assert f"**{core} vs GRU.**" not in readme
    assert "| gru > mymodule:MyCore | all | 0.50 |" in readme
    assert "| lstm > rnn | all |" in readme and f"| lstm > {REFERENCE_CORE} | all |" in readme


def test_missing_values_do_not_crash_the_report(tmp_path: Path) -> None:
    for seed in range(3):
        fake_run(tmp_path, "a", "gru", seed, 0.9, steps_per_second=None)
        fake_run(tmp_path, "a", "lstm", seed, 0.8, steps_per_second=None if seed else 100.0)
        fake_run(tmp_path, "a", "mingru", seed, 0.7, drop=("inference_latency_us",), recurrent_params=float("nan"))
    fake_run(tmp_path, "a", "gru", 7, None, steps_per_second=None)  # an ok run that lost its return
    fake_run(tmp_path, "a", "rnn", 0, 0.5, task_info=None)
    readme = write_report(tmp_path, n_resamples=50).read_text()
    assert "| gru | 300 | 1000 | - | 50 | 300 |" in readme
    assert "| mingru | - | 1000 | 110 | - | 300 |" in readme
    assert "Faster:" not in readme  # GRU has no throughput at all: the claim is not judged
    assert "Fewer parameters: supported." in readme
    verdict = next(line for line in readme.splitlines() if line.startswith("- **mingru vs GRU.**"))
    assert "Returns: worse over all tasks, P(mingru > GRU) = 0.00" in verdict
    assert "recurrent parameters -; training throughput -; inference latency -." in verdict


def test_each_core_is_judged_against_the_memoryless_core_task_by_task(tmp_path: Path) -> None:
    """No exact memoryless level here (MiniGrid-like tasks): the memoryless core's runs are the floor."""
    for seed in range(5):
        for task in ("a", "b"):
            fake_run(tmp_path, task, "memoryless", seed, 0.45 + 0.01 * seed, task_info={"horizon": "long"})
            fake_run(tmp_path, task, "lstm", seed, 0.44 + 0.01 * seed, task_info={"horizon": "long"})
        fake_run(tmp_path, "a", "gru", seed, 0.8 + 0.01 * seed, task_info={"horizon": "long"})
        fake_run(tmp_path, "b", "gru", seed, 0.2 + 0.01 * seed, task_info={"horizon": "long"})
    readme = write_report(tmp_path, n_resamples=200).read_text()
    assert "## Against the memoryless baseline (`memoryless`)" in readme
    assert "| a | memoryless | 0.47 | - | - | the baseline (n=5) |" in readme
    assert "| a | gru | 0.82 | +0.35 [+0.33, +0.37] | 1.00 [1.00, 1.00] | above (n=5) |" in readme
    assert "| a | lstm | 0.46 | -0.01 [-0.03, +0.01] |" in readme and "not distinguishable (n=5) |" in readme
    assert "| b | gru | 0.22 | -0.25 [-0.27, -0.23] | 0.00 [0.00, 0.00] | below (n=5) |" in readme
    assert "**a: gru above the memoryless baseline.** not distinguishable: lstm" in readme
    assert ("**b: no core above the memoryless baseline at this budget.** not distinguishable: lstm; below: gru"
            in readme)
    assert "memoryless vs GRU" not in readme  # the baseline is judged against, not judged
    assert "| task | horizon | optimal | memoryless | gru | lstm | memoryless (trained) |" in readme
    assert "None: no task here states both its optimal and its memoryless return" in readme


def test_no_memoryless_section_without_a_memoryless_core(tmp_path: Path) -> None:
    for seed in range(3):
        fake_run(tmp_path, "a", "gru", seed, 0.9)
        fake_run(tmp_path, "a", "lstm", seed, 0.8)
    assert "memoryless baseline" not in write_report(tmp_path, n_resamples=100).read_text()
