"""The sweep report: tables, curves and verdicts computed from per-run result files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rlgru.bench.report import write_report


def fake_run(out: Path, task: str, core: str, seed: int, final: float, status: str = "ok") -> None:
    run_dir = out / "runs" / f"{task}-{core}-{seed}"
    run_dir.mkdir(parents=True)
    result = {
        "task": task, "core": core, "seed": seed, "timesteps": 1000, "final_return": final, "best_return": final,
        "wall_seconds": 10.0, "steps_per_second": {"gru": 120.0, "lstm": 100.0, "rnn": 130.0}[core],
        "params": 1000, "recurrent_params": {"gru": 300, "lstm": 400, "rnn": 100}[core],
        "inference_latency_us": 50.0, "peak_memory_mb": 300.0, "status": status,
        "curve": [[500, final / 2], [1000, final]],
        "task_info": {"optimal_return": 1.0, "memoryless_return": 0.0, "horizon": "long" if task == "b" else "short"},
    }
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
