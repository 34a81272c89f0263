"""Sweeps that are cut short or lose a machine: unfinished runs are rerun, results are complete or absent, and a Ray
node lost mid-sweep costs no run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlgru.bench import runner
from rlgru.bench.results import is_complete
from rlgru.bench.sweep import plan, run_sweep
from rlgru.cli import main
from tests.fault_scenarios import lost_ray_node
from tests.fault_tools import lock_held_elsewhere, write_suite


def test_a_run_with_a_model_but_no_result_is_finished_with_every_figure(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    out = tmp_path / "out"
    [spec] = plan(suite, out)[1]
    first = runner.execute(spec.as_dict(), str(out))
    assert is_complete(first)
    run = runner.run_dir_of(out, spec.run_id)
    (run.path / "result.json").unlink()  # killed between model.zip and result.json
    assert [s.run_id for s in plan(suite, out)[1]] == [spec.run_id]
    outcome = run_sweep(suite, out, workers=1)
    [result] = outcome.completed
    assert is_complete(result) and result["resumed_from"] == 64, "nothing trained twice"
    assert result["steps_per_second"] == pytest.approx(first["steps_per_second"]), "from training_time.csv"
    ok_but_empty = {**result, "steps_per_second": None}  # as an older rlgru recorded such a run
    (run.path / "result.json").write_text(json.dumps(ok_but_empty))
    assert [s.run_id for s in plan(suite, out)[1]] == [spec.run_id], "an incomplete result is not done"
    assert main(["report", str(out)]) == 0
    assert "steps_per_second" in (out / "README.md").read_text().split("## Unfinished runs")[1]


def test_a_second_sweep_on_the_same_out_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with lock_held_elsewhere(out / "run.lock"):
        assert main(["bench", str(suite), "--out", str(out), "--no-progress"]) == 2
        assert "another rlgru process is writing this sweep's out directory" in capsys.readouterr().err
        assert not (out / "runs").exists()


def test_ray_cluster_losing_a_node_mid_sweep_loses_no_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    assert lost_ray_node(tmp_path) == (True, [])


def test_a_terminated_sweep_stops_its_workers_and_records_its_wall_time(tmp_path: Path) -> None:
    """SIGTERM ends ``rlgru bench`` like Ctrl-C (exit 130, no worker left behind), and ``sweep.json`` holds the wall
    time up to then, so the report's cost of a resumed benchmark counts every call."""
    suite = write_suite(tmp_path, budget=4096, seeds=(0, 1, 2), checkpoint_freq=1024)
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "rlgru.cli", "bench", str(suite), "--out", str(out), "--workers", "1", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "sweep.json").is_file():  # written after the first run
        time.sleep(0.1)
    assert (out / "sweep.json").is_file(), "a sweep records its wall time after every run"
    first = json.loads((out / "sweep.json").read_text())["wall_seconds"]
    children = subprocess.run(["pgrep", "-P", str(sweep.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the pool's worker processes are running"
    sweep.terminate()
    assert sweep.wait(timeout=60) == 130, sweep.stderr.read() if sweep.stderr else ""
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["wall_seconds"] >= first > 0 and meta["runs"] == 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.1)
    alive = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children if Path(f"/proc/{pid}").exists()}
    assert alive == {}, "no worker outlives the sweep"
