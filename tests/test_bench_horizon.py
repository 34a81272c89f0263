"""The grown-up benchmark: length sweeps, equal-parameter budgets, time to target, the HTML page and their verdicts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rlgru.bench.efficiency import censored_median, efficiency_tables, time_to_target
from rlgru.bench.horizon import Breakpoint, breakpoint_of, short_long_verdicts
from rlgru.bench.report import write_report
from rlgru.bench.sizing import matching_hidden_size, recurrent_parameters
from rlgru.bench.suite import expand, load_suite
from rlgru.harness.errors import HarnessError

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "bench"

SUITE = {
    "name": "sweep",
    "base": {"policy": {"hidden_size": 8}, "training": {"total_timesteps": 64}},
    "tasks": [
        {
            "name": "RepeatFirst",
            "env": {"id": "rlgru/RepeatFirst-v0"},
            "lengths": {"knob": "length", "values": [4, 16, 64], "long_from": 16},
        }
    ],
    "cores": ["gru", "lstm", "mingru"],
    "seeds": [0],
}


def _suite(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**SUITE, **changes}))
    return path


# ------------------------------------------------------------------------------------------------ suite expansion
def test_lengths_become_one_task_per_value_with_its_horizon_class(tmp_path: Path) -> None:
    runs = expand(load_suite(_suite(tmp_path)))
    assert [r.task for r in runs if r.core == "gru"] == ["RepeatFirst-4", "RepeatFirst-16", "RepeatFirst-64"]
    gru = {r.task: r for r in runs if r.core == "gru"}
    assert gru["RepeatFirst-16"].config.env.env_kwargs == {"length": 16}
    assert [gru[t].horizon for t in gru] == ["short", "long", "long"]
    assert {(r.family, r.memory_length) for r in gru.values()} == {("RepeatFirst", n) for n in (4, 16, 64)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lengths": {"knob": "length", "values": [16, 4]}}, "must increase"),
        ({"lengths": {"knob": "length", "values": [4]}}, "at least 2"),
        ({"env": {"id": "rlgru/RepeatFirst-v0", "env_kwargs": {"length": 3}}}, "set by lengths.values"),
        ({"horizon": "long"}, "either horizon or lengths.long_from"),
    ],
)
def test_bad_length_sweeps_are_refused_with_the_reason(tmp_path: Path, change: dict, message: str) -> None:
    task = {**SUITE["tasks"][0], **change}
    with pytest.raises(HarnessError, match=message):
        load_suite(_suite(tmp_path, tasks=[task]))


def test_equal_parameters_adds_each_core_at_the_lstm_parameter_count(tmp_path: Path) -> None:
    runs = expand(load_suite(_suite(tmp_path, equal_parameters={"match": "lstm"})))
    matched = [r for r in runs if r.sizing == "params"]
    assert {r.core for r in matched} == {"gru", "mingru"}  # not the LSTM itself
    assert len(matched) == 2 * 3 and all("-eqp" in r.run_id for r in matched)
    lstm_params = recurrent_parameters("lstm", 5, 8)
    for run in matched:
        params = recurrent_parameters(run.core, 5, run.config.policy.hidden_size)
        assert abs(params - lstm_params) <= 0.1 * lstm_params
        assert run.config.policy.hidden_size > 8  # both have fewer weights per unit than an LSTM
    assert len({r.run_id for r in runs}) == len(runs)


def test_equal_parameters_must_match_a_core_of_the_suite(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="not one of the suite's cores"):
        load_suite(_suite(tmp_path, equal_parameters={"match": "rnn"}))


def test_matched_size_is_the_closest_count_and_never_a_wider_tie() -> None:
    target = recurrent_parameters("lstm", 6, 32)
    hidden = matching_hidden_size("gru", "lstm", 32, input_size=6)
    gap = abs(recurrent_parameters("gru", 6, hidden) - target)
    assert gap <= abs(recurrent_parameters("gru", 6, hidden - 1) - target)
    assert gap <= abs(recurrent_parameters("gru", 6, hidden + 1) - target)


def test_the_shipped_horizon_suite_meets_the_issue() -> None:
    """>= 6 lengths per task, every built-in core, 5 seeds, >= 10 evaluation points, both budgets."""
    suite = load_suite(SHIPPED / "horizon.yaml")
    assert all(len(task.lengths.values) >= 6 for task in suite.tasks)
    assert set(suite.cores) == {"gru", "lstm", "rnn", "mingru", "lru"} and len(suite.seeds) == 5
    assert suite.equal_parameters is not None
    runs = expand(suite)
    assert all(r.config.training.total_timesteps // r.config.evaluation.freq >= 10 for r in runs)


# ------------------------------------------------------------------------------------------------ horizon curves
def _curve(values: dict[int, list[float]]) -> dict[int, np.ndarray]:
    return {n: np.array(v) for n, v in values.items()}


def test_breakpoint_is_the_first_length_below_ninety_percent() -> None:
    assert breakpoint_of(_curve({4: [1, 1], 8: [0.95, 0.9], 16: [0.5, 0.4], 32: [1, 1]})) == Breakpoint(8, 16)
    assert breakpoint_of(_curve({4: [0.2], 8: [1.0]})) == Breakpoint(None, 4)
    assert breakpoint_of(_curve({4: [1.0], 8: [0.9]})) == Breakpoint(8, None)


def _scores(gru_long: float, lstm_long: float) -> dict:
    seeds = np.linspace(-0.02, 0.02, 5)
    curve = lambda short, long: {4: short + seeds, 8: short + seeds, 64: long + seeds, 128: long + seeds}  # noqa: E731
    return {"Task": {"gru": curve(0.97, gru_long), "lstm": curve(0.97, lstm_long)}}


HORIZONS = {"Task-4": "short", "Task-8": "short", "Task-64": "long", "Task-128": "long"}


@pytest.mark.parametrize(
    ("gru_long", "lstm_long", "expected"),
    [
        (0.1, 0.95, "not on very long ones (at equal width): supported."),
        (0.95, 0.1, "half supported: as good on short horizons, and better than lstm on long ones"),
        (0.5, 0.5, "no significant difference on long ones either"),
    ],
)
def test_short_long_verdict_is_computed_from_the_curves(gru_long: float, lstm_long: float, expected: str) -> None:
    (verdict,) = short_long_verdicts(_scores(gru_long, lstm_long), HORIZONS, n_resamples=200)
    assert expected in verdict
    assert "Task: gru" in verdict  # and it says where each one breaks


def test_short_long_verdict_says_when_lstm_wins_on_short_horizons() -> None:
    scores = _scores(0.1, 0.95)
    scores["Task"]["gru"][4] = scores["Task"]["gru"][4] - 0.8
    scores["Task"]["gru"][8] = scores["Task"]["gru"][8] - 0.8
    (verdict,) = short_long_verdicts(scores, HORIZONS, n_resamples=200)
    assert "not supported: lstm is better already on short horizons" in verdict


# ------------------------------------------------------------------------------------------------ time to target
def _result(curve: list[list[Any]], **fields: Any) -> dict[str, Any]:
    return {
        "task": "t",
        "variant": "gru",
        "timesteps": 300,
        "curve": curve,
        "task_info": {"optimal_return": 1.0, "memoryless_return": 0.25},
        **fields,
    }


def test_time_to_target_is_the_first_evaluation_at_ninety_percent_of_the_gap() -> None:
    # target = 0.25 + 0.9 * 0.75 = 0.925
    reached = time_to_target(_result([[100, 0.5, 1.0], [200, 0.93, 2.5], [300, 0.99, 4.0]]))
    assert (reached.steps, reached.seconds) == (200, 2.5)
    assert time_to_target(_result([[100, 0.92, 1.0]])).steps is None  # 0.92 < 0.925: censored, not reached
    assert time_to_target(_result([[100, 1.0]], task_info={})) is None  # no optimum known: no target


def test_censored_median_needs_most_runs_to_reach_the_target() -> None:
    assert censored_median([10, 20, 30]) == 20
    assert censored_median([10, 20, None]) == 20
    assert censored_median([10, None, None]) is None
    assert censored_median([10, 20, None, None]) is None  # the middle pair includes "never"
    assert censored_median([]) is None


def test_efficiency_table_shows_medians_and_how_many_seeds_got_there() -> None:
    results = [
        _result([[100, 0.95, 1.0]], seed=0),
        _result([[100, 0.2, 1.0], [200, 0.99, 3.0]], seed=1),
        _result([[100, 0.2, 1.0]], seed=2),
        _result([[100, 0.2, 1.0]], variant="lstm", seed=0),
    ]
    table = "\n".join(efficiency_tables(results))
    assert "| t | 200, 3 s (2/3) | > 300 (0/1) |" in table  # median of 100, 200 and "never"


# ------------------------------------------------------------------------------------------------ the report
def _fake(
    out: Path,
    task: str,
    family: str,
    length: int,
    horizon: str,
    core: str,
    seed: int,
    final: float,
    sizing: str = "hidden",
    hidden: int = 32,
) -> None:
    run = out / "runs" / f"{task}-{core}{'-eqp' if sizing == 'params' else ''}-s{seed}"
    run.mkdir(parents=True)
    result = {
        "run_id": run.name,
        "task": task,
        "core": core,
        "seed": seed,
        "timesteps": 1000,
        "budget": 1000,
        "final_return": final,
        "best_return": final,
        "wall_seconds": 10.0,
        "steps_per_second": 1000.0,
        "params": 900,
        "recurrent_params": {"gru": 300, "lstm": 400}[core] if sizing == "hidden" else 400,
        "inference_latency_us": 50.0,
        "peak_memory_mb": 300.0,
        "status": "ok",
        "sizing": sizing,
        "hidden_size": hidden,
        "env_kwargs": {"length": length},
        "curve": [[100 * i, final * i / 10, float(i)] for i in range(1, 11)],
        "task_info": {
            "optimal_return": 1.0,
            "memoryless_return": 0.0,
            "horizon": horizon,
            "family": family,
            "memory_length": length,
        },
    }
    (run / "result.json").write_text(json.dumps(result))


def test_report_has_the_horizon_headline_equal_budgets_efficiency_and_one_html_page(tmp_path: Path) -> None:
    for length, horizon in ((4, "short"), (8, "short"), (64, "long"), (128, "long")):
        task = f"Task-{length}"
        for seed in range(4):
            lstm = 0.97 + 0.005 * seed
            gru = lstm if horizon == "short" else 0.2 + 0.01 * seed
            _fake(tmp_path, task, "Task", length, horizon, "lstm", seed, lstm)
            _fake(tmp_path, task, "Task", length, horizon, "gru", seed, gru)
            _fake(tmp_path, task, "Task", length, horizon, "gru", seed, lstm, sizing="params", hidden=37)
    readme = write_report(tmp_path, n_resamples=100).read_text()
    assert "## Where each core breaks" in readme and "![where each core breaks](horizon.png)" in readme
    assert (tmp_path / "horizon.png").stat().st_size > 0
    assert "| 0.22 [0.20, 0.23] | 8 | 64 |" in readme  # gru holds to 8, breaks at 64
    final_table = [line for line in readme.splitlines() if "| short |" in line or "| long |" in line]
    tasks = [line.split(" | ")[0] for line in final_table]
    assert tasks == ["| Task-4", "| Task-8", "| Task-64", "| Task-128"]  # in order of length, not of text
    assert "GRU as good as LSTM on short horizons but not on very long ones (at equal width): supported." in readme
    assert "(at equal parameters): half supported" in readme
    assert "## Equal width or equal parameters" in readme and "| gru | 32 / 300 |" in readme
    assert "worse at equal width" in readme and "as good (no significant difference) at equal parameters" in readme
    assert "## Steps and seconds to 90% of the optimum" in readme
    assert "## Cost of this benchmark" in readme
    page = (tmp_path / "report.html").read_text()
    assert "<table>" in page and "Where each core breaks" in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)  # nothing to fetch


def test_report_says_when_results_are_partial(tmp_path: Path) -> None:
    for seed in range(2):
        _fake(tmp_path, "Task-4", "Task", 4, "short", "gru", seed, 0.9)
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": 5, "wall_seconds": 7200.0, "workers": 2}))
    readme = write_report(tmp_path, n_resamples=20).read_text()
    assert "**Partial results: 2 of the suite's 5 runs have completed.**" in readme
    assert "Wall time: 2.00 h" in readme
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": 2}))
    assert "Partial results" not in write_report(tmp_path, n_resamples=20).read_text()
