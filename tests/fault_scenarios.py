"""The fault scenarios, defined once: ``benchmarks/fault_injection.py`` runs every one (and many random kills),
``tests/test_fault_*.py`` run each once or a few, some calling rlgru in the test's own process (``cli``).

A scenario returns ``(resumed, lost)``: whether a run was resumed to completion, and every problem found (lost or
doubled data, a file left unreadable, a refusal or error message missing); nothing lost is ``[]``.
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlgru.bench.results import is_complete, read_result
from rlgru.bench.sweep import run_sweep
from rlgru.harness.checkpoints import model_file_problem
from rlgru.harness.errors import DIVERGED
from rlgru.harness.run_dir import RunDir
from tests.fault_tools import (
    DAMAGE_KINDS,
    Cli,
    Payload,
    alive,
    check_run,
    children,
    craft_model,
    damage,
    fault_config,
    finish,
    in_a_process,
    kill_after,
    launch,
    lose_a_ray_node_mid_work,
    started,
    train_args,
    write_config,
    write_suite,
)

Outcome = tuple[bool, list[str]]

# ------------------------------------------------------------------------------------------------ kills
#: (file pattern[#n], config changes): every kind of file a run writes, killed just before it lands
WRITE_KILLS: list[tuple[str, dict[str, Any]]] = [
    ("model_96_steps.zip", {}),
    ("model_32_steps.zip", {}),
    ("model_vecnormalize_128_steps.pkl", {"env": {"normalize": True}}),
    ("evaluations.csv#2", {}),
    ("training_time.csv#3", {}),
    ("config.yaml", {}),
    ("model.zip", {}),
    ("vecnormalize.pkl", {"env": {"normalize": True}}),
    ("eval.json", {}),
]


def write_kill(work: Path, pattern: str, changes: dict[str, Any], cli: Cli = in_a_process) -> Outcome:
    """SIGKILL while the file ``pattern`` names is being written (new contents on disk, not yet renamed into
    place), then ``--resume`` until done."""
    config, run_dir = write_config(work, **changes), work / "run"
    process = launch(train_args(config, run_dir), kill_on=pattern)
    process.communicate(timeout=600)
    if process.returncode != -9:
        return False, [f"the kill hook never fired (exit {process.returncode})"]
    torn = [] if list(run_dir.rglob(f".{pattern.partition('#')[0]}.tmp-*")) else ["no write was under way"]
    lost = resume_to_the_end(config, run_dir, cli)
    if not (run_dir / "model.zip").is_file():
        return False, lost
    return True, torn + lost + check_run(run_dir, fault_config(**changes))


def kills_then_resume(
    work: Path,
    changes: dict[str, Any],
    kills: Sequence[Callable[[subprocess.Popen, Path], bool]],
    cli: Cli = in_a_process,
) -> tuple[bool, list[str], int]:
    """Train with ``changes``; each of ``kills`` stops one process (``--resume`` of the one before), True if it
    landed; then resume until done. ``(resumed, lost, kills that landed)``."""
    config, run_dir = write_config(work, **changes), work / "run"
    landed = 0
    for kill in kills:
        landed += kill(launch(train_args(config, run_dir, resume=started(run_dir))), run_dir)
    lost = resume_to_the_end(config, run_dir, cli)
    if not (run_dir / "model.zip").is_file():
        return False, lost, landed
    return landed > 0, lost + check_run(run_dir, fault_config(**changes)), landed


def resume_to_the_end(config: Path, run_dir: Path, cli: Cli = in_a_process) -> list[str]:
    """``--resume`` a killed run, as a user would, until it is done: each try must succeed."""
    resumes, outputs = finish(config, run_dir, cli)
    if not (run_dir / "model.zip").is_file():
        return [f"did not finish: {outputs[-1][-300:]}"]
    return [f"a resume failed: {output[-300:]}" for output in outputs[:-1]]


#: budgets of the random-kill runs, long enough that most of a run's time is training, not starting up (a checkpoint
#: every 32 steps, an evaluation every 64)
RANDOM_BUDGETS = (4096, 8192, 12288)


def random_kill(work: Path, rng: random.Random, durations: dict[int, float]) -> tuple[bool, list[str], str]:
    """1 or 2 kills at uniform moments of a run of a random budget (normalised 30% of the time), within the time a
    clean run of that budget takes here (``durations``); ``(resumed, lost, what was drawn)``."""
    budget = rng.choice(RANDOM_BUDGETS)
    changes: dict[str, Any] = {"training": {"total_timesteps": budget}}
    if rng.random() < 0.3:
        changes["env"] = {"normalize": True}
    moments: list[str] = []

    def kill_at(delay: float) -> Callable[[subprocess.Popen, Path], bool]:
        def kill(process: subprocess.Popen, run_dir: Path) -> bool:
            landed = kill_after(process, delay)
            moments.append(f"{delay:.1f}s ({_progress(run_dir) if landed else 'ended first'})")
            return landed

        return kill

    kills = [kill_at(rng.uniform(0.05, 0.95) * durations[budget]) for _ in range(rng.choice([1, 1, 2]))]
    resumed, lost, _ = kills_then_resume(work, changes, kills)
    detail = f"{budget} steps, kill after {', '.join(moments)}" + (", normalized" if "env" in changes else "")
    return resumed, lost, detail


def _progress(run_dir: Path) -> str:
    """Where a killed run was: its newest checkpoint, or that it had not trained yet."""
    steps = [int(path.name.split("_")[1]) for path in (run_dir / "checkpoints").glob("model_*_steps.zip")]
    if steps:
        return f"after checkpoint {max(steps)}"
    return "while training" if started(run_dir) else "while starting"


# ------------------------------------------------------------------------------------------------ damaged files
def a_finished_run(work: Path, cli: Cli = in_a_process) -> tuple[Path, Path]:
    """The run whose files are damaged: 160 steps, a checkpoint every 32. ``(config, run dir)``."""
    config, run_dir = write_config(work, training={"total_timesteps": 160}), work / "run"
    code, _, err = cli(train_args(config, run_dir))
    assert code == 0, err
    return config, run_dir


def newest_three(kind: str) -> dict[str, str]:
    """The benchmark's cases (one per kind): model.zip and the two newest checkpoints, all damaged ``kind``."""
    return dict.fromkeys(("model.zip", "checkpoints/model_160_steps.zip", "checkpoints/model_128_steps.zip"), kind)


#: the tests' case: the four newest files, each damaged a different way
EACH_KIND_ONCE = {
    "model.zip": "garbage",
    "checkpoints/model_160_steps.zip": "empty",
    "checkpoints/model_128_steps.zip": "truncated",
    "checkpoints/model_96_steps.zip": "bit flip",
}


def damage_files(run_dir: Path, damaged: dict[str, str]) -> None:
    for name, kind in damaged.items():
        damage(run_dir / name, kind)


def resume_past_damage(config: Path, run_dir: Path, damaged: dict[str, str], cli: Cli = in_a_process) -> Outcome:
    """Resume a run with ``damaged`` files to 256 steps: each is skipped, named with its problem, and set aside;
    the run resumes from the newest checkpoint left whole and loses nothing."""
    run = RunDir(run_dir)
    newest = max(steps for steps in range(32, 161, 32) if f"checkpoints/model_{steps}_steps.zip" not in damaged)
    code, out, err = cli(train_args(config, run_dir, "--set", "training.total_timesteps=256", resume=True))
    if code != 0:
        return False, [f"resume failed: {err.strip()[-300:]}"]
    skipped = [f"skipped {run.path / name}: {DAMAGE_KINDS[kind]}" for name, kind in damaged.items()]
    lost = [f"not reported: {line}" for line in skipped if line not in out]
    lost += [f"{name} not set aside" for name in damaged if not (run.path / f"{name}.unreadable").is_file()]
    if f"resuming from {run.checkpoints / f'model_{newest}_steps.zip'} ({newest} timesteps)" not in out:
        lost.append(f"did not resume from the newest readable checkpoint ({newest})")
    return True, lost + check_run(run_dir, fault_config(training={"total_timesteps": 256}))


def damaged_files(work: Path, kind: str) -> Outcome:
    config, run_dir = a_finished_run(work)
    damage_files(run_dir, newest_three(kind))
    return resume_past_damage(config, run_dir, newest_three(kind))


# ------------------------------------------------------------------------------------------------ two writers
def two_writers(work: Path, vec_env: str = "subprocess") -> Outcome:
    """Two ``rlgru train`` started together on one run directory: one trains, the other is refused, saying why."""
    changes = {"env": {"vec_env": vec_env}, "training": {"total_timesteps": 128}}
    config, run_dir = write_config(work, **changes), work / "run"
    processes = [launch(train_args(config, run_dir)) for _ in range(2)]
    errors = [process.communicate(timeout=600)[1] for process in processes]
    codes = [process.returncode for process in processes]
    lost = [] if sorted(codes) == [0, 2] else [f"exit codes {sorted(codes)}, expected [0, 2]"]
    why = ("another rlgru process is writing this run directory", "already holds a run")
    refusals = [err for err, code in zip(errors, codes, strict=True) if code == 2]
    lost += [f"refused without saying why: {err[-200:]}" for err in refusals if not any(r in err for r in why)]
    return False, lost + check_run(run_dir, fault_config(**changes))


# ------------------------------------------------------------------------------------------------ crafted files
#: the saved attributes a crafted model replaces with a pickled payload (the benchmark tries the first)
CRAFTED_KEYS = ("lr_schedule", "observation_space", "policy_class")


def crafted_model_refused(model: Path, work: Path, key: str, cli: Cli = in_a_process) -> list[str]:
    """``rlgru eval`` of ``model`` with ``data[key]`` a payload refuses it in one line. The crafted file is
    ``work/crafted.zip``; its payload, if it ever runs, creates ``work/payload-ran``."""
    marker = work / "payload-ran"
    crafted = craft_model(model, work / "crafted.zip", key, Payload(marker))
    code, _, err = cli(["eval", str(crafted), "--env", "rlgru/TMaze-Easy-v0", "--episodes", "1"])
    said = (f"data['{key}']: refusing the pickled global posix.system", "--trust-pickle")
    refused = code == 2 and all(text in err for text in said) and len(err.strip().splitlines()) == 1
    return ([] if refused else [f"crafted {key} not refused (exit {code}): {err[-200:]}"]) + _ran(marker)


def crafted_files(work: Path, cli: Cli = in_a_process) -> Outcome:
    """A run's model zip (crafted copy) and its VecNormalize statistics replaced by a payload, given to ``eval``."""
    config, run_dir = write_config(work, env={"normalize": True}, training={"total_timesteps": 32}), work / "run"
    code, _, err = cli(train_args(config, run_dir))
    if code != 0:
        return False, [f"training failed: {err[-200:]}"]
    lost = crafted_model_refused(run_dir / "model.zip", work, CRAFTED_KEYS[0], cli)
    marker = work / "statistics-payload-ran"
    (run_dir / "vecnormalize.pkl").write_bytes(pickle.dumps(Payload(marker)))
    code, _, err = cli(["eval", str(run_dir), "--episodes", "1"])
    if code != 2 or "vecnormalize.pkl: refusing the pickled global posix.system" not in err:
        lost.append(f"crafted vecnormalize.pkl not refused (exit {code}): {err[-200:]}")
    return False, lost + _ran(marker)


def _ran(marker: Path) -> list[str]:
    return ["a payload ran"] if marker.exists() else []


# ------------------------------------------------------------------------------------------------ divergence
BAD_ENV = "tests.fault_envs:BadValueEnv"
#: (what the env gets wrong, the value, how rlgru names it): the benchmark tries the first
BAD_VALUES = [
    ("reward", float("nan"), "reward is nan"),
    ("reward", float("inf"), "reward is inf"),
    ("observation", float("nan"), "observation holds nan"),
]


def bad_env_value(work: Path, what: str, value: float, quantity: str, cli: Cli = in_a_process) -> Outcome:
    """Each of the 2 envs goes bad at its 40th step: step 80 of training, after the checkpoints at 32 and 64. The run
    stops (exit 3) in one line naming env, step, quantity and the last good checkpoint, which is kept whole."""
    config = write_config(work, env={"id": BAD_ENV, "env_kwargs": {"what": what, "value": value}})
    run = RunDir(work / "run")
    code, _, err = cli(train_args(config, run.path))
    said = (
        f"{BAD_ENV}: training diverged at step 80: {quantity}",
        f"the last good checkpoint is {run.checkpoints / 'model_64_steps.zip'}",
    )
    stopped = code == DIVERGED and err.count("\n") == 1 and "Traceback" not in err and all(s in err for s in said)
    lost = [] if stopped else [f"exit {code}: {err[-300:]}"]
    checkpoints = run.list_checkpoints()
    if [c.steps for c in checkpoints] != [32, 64] or run.model.exists():
        lost.append(f"checkpoints {[c.steps for c in checkpoints]} and model.zip {run.model.exists()}, expected 32, 64")
    lost += [f"{c.model.name}: {model_file_problem(c.model)}" for c in checkpoints if model_file_problem(c.model)]
    return False, lost


# ------------------------------------------------------------------------------------------------ sweeps
def orphaned_worker(work: Path) -> Outcome:
    """``rlgru bench`` SIGKILLed while its pool worker trains: the worker dies too, no orphan goes on training."""
    out = work / "out"
    suite = write_suite(work, budget=100_000)
    sweep = launch(["bench", str(suite), "--out", str(out), "--workers", "1", "--no-progress"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not list((out / "runs").glob("*/checkpoints/*.zip")):
        time.sleep(0.2)
    workers = [pid for pid in children(sweep.pid) if alive(pid)]
    sweep.kill()
    sweep.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.1)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # leave nothing of ours training
        os.kill(pid, signal.SIGKILL)
    return False, ([] if workers and not left else [f"pool workers training {workers}, still alive {left}"])


def lost_ray_node(work: Path) -> Outcome | None:
    """Three nodes on this machine (a head without CPUs, two one-CPU workers); one worker node is removed while it
    trains. Ray reruns its task on the node added in its place, which resumes the run from its checkpoints. None
    without Ray."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    budget, out = 768, work / "out"
    suite = write_suite(work, budget=budget, seeds=(0, 1))
    try:
        lose_a_ray_node_mid_work(
            lambda address: run_sweep(suite, out, backend="ray", address=address), lambda: _both_runs_training(out)
        )
    except AssertionError as error:
        return True, [str(error).splitlines()[0]]
    results = [read_result(path.parent) for path in sorted(out.glob("runs/*/result.json"))]
    if len(results) != 2 or not all(result and is_complete(result) for result in results):
        return True, [f"results: {results}"]
    lost = [f"{r['run_id']} at {r['timesteps']} steps, not {budget}" for r in results if r["timesteps"] != budget]
    for result in results:
        lost += check_run(out / "runs" / result["run_id"], fault_config(training={"total_timesteps": budget}))
    if not any(result["resumed_from"] > 0 for result in results):
        lost.append("the lost run restarted, not resumed")
    return True, lost


def _both_runs_training(out: Path) -> bool:
    """Two run directories with a checkpoint and neither finished."""
    begun = {path.parent.parent for path in out.glob("runs/*/checkpoints/*.zip")}
    return len(begun) == 2 and not any((run / "result.json").exists() for run in begun)
