"""Fault injection for runs: launch ``rlgru train`` in a process, kill it at a chosen or random moment, resume it, and
check that nothing was lost or logged twice. The scenarios built from these are in ``tests/fault_scenarios.py``.

``python -m tests.fault_tools [rlgru args]`` runs the CLI; with ``RLGRU_FAULT_KILL_ON=<glob>[#n]`` in its environment
it SIGKILLs itself at the moment the (n-th) file matching the glob would be renamed into place, i.e. after the new
contents are written and fsync'ed but before they replace the old file: the worst moment of an atomic write.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fnmatch
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
KILL_ON = "RLGRU_FAULT_KILL_ON"

#: 2 envs x 16 steps = 32 steps a rollout; 8 rollouts; a checkpoint every update, an evaluation every other one
FAULT_CONFIG: dict[str, Any] = {
    "seed": 0,
    "env": {"id": "rlgru/TMaze-Easy-v0", "n_envs": 2},
    "algorithm": {"n_steps": 16, "batch_size": 32, "n_epochs": 2, "learning_rate": 3e-3},
    "policy": {"core": "gru", "hidden_size": 8, "net_arch": [8]},
    "training": {"total_timesteps": 256, "checkpoint_freq": 32, "log_interval": 1},
    "evaluation": {"episodes": 4, "freq": 64},
}


def fault_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """``FAULT_CONFIG`` with each section's keys updated from ``sections``."""
    data = copy.deepcopy(FAULT_CONFIG)
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def write_config(directory: Path, name: str = "fault", **sections: dict[str, Any]) -> Path:
    path = Path(directory) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(fault_config(**sections)))
    return path


def write_suite(directory: Path, budget: int = 64, seeds: tuple[int, ...] = (0,), checkpoint_freq: int = 32) -> Path:
    """A one-task ``rlgru bench`` suite (TMaze-Easy, GRU) at the fault config's settings."""
    path = Path(directory) / "suite.yaml"
    base = {key: FAULT_CONFIG[key] for key in ("env", "algorithm", "policy", "training", "evaluation")}
    base["training"] = {**base["training"], "checkpoint_freq": checkpoint_freq}
    task = {"name": "tmaze", "env": {"id": "rlgru/TMaze-Easy-v0"}, "budgets": [budget]}
    suite = {"name": "faults", "base": base, "cores": ["gru"], "seeds": list(seeds), "tasks": [task]}
    path.write_text(yaml.safe_dump(suite))
    return path


def train_args(config: Path, run_dir: Path, *more: str, resume: bool = False) -> list[str]:
    return ["train", str(config), "--run-dir", str(run_dir), "--no-progress", *more, *(["--resume"] if resume else [])]


#: ``rlgru ARGS`` run somehow -> ``(exit code, stdout, stderr)``
Cli = Callable[[list[str]], tuple[int, str, str]]


def in_a_process(args: list[str]) -> tuple[int, str, str]:
    """``rlgru ARGS`` in a new process, as a user runs it."""
    process = launch(args)
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def in_this_process(args: list[str]) -> tuple[int, str, str]:
    """``rlgru ARGS`` called in this process: the same code path, seconds faster (for tests)."""
    from rlgru.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def launch(args: list[str], kill_on: str | None = None, **popen: Any) -> subprocess.Popen:
    """``rlgru ARGS`` in a new process (from the repository root, so ``tests.*`` entry points resolve)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(KILL_ON, None)
    if kill_on:
        env[KILL_ON] = kill_on
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fault_tools", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def kill_after(process: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL ``process`` after ``seconds`` unless it ended first; True if it was killed."""
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True


def children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux ``/proc``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def kill_during_training(process: subprocess.Popen, run_dir: Path, checkpoints: int, extra: float) -> bool:
    """SIGKILL ``process`` ``extra`` seconds after its run holds ``checkpoints`` checkpoints (a random moment in
    training that does not depend on how fast this machine is); True if it was killed before it ended."""
    directory = Path(run_dir) / "checkpoints"
    while process.poll() is None and len(list(directory.glob("model_*_steps.zip"))) < checkpoints:
        time.sleep(0.02)
    return kill_after(process, extra)


# ------------------------------------------------------------------------------------------------ invariants
def due_steps(final: int, rollout: int, every: int) -> list[int]:
    """Steps at which an after-update callback firing every ``every`` steps runs (rollout starts before the end)."""
    steps, next_due = [], every
    for step in range(rollout, final, rollout):
        if step >= next_due:
            steps.append(step)
            next_due = (step // every + 1) * every
    return steps


def check_run(run_dir: Path, config: dict[str, Any]) -> list[str]:
    """Problems with a finished run: anything missing, duplicated or unreadable. Empty means nothing was lost."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlgru import RecurrentPPO
    from rlgru.harness.checkpoints import model_file_problem
    from rlgru.harness.run_dir import RunDir
    from rlgru.harness.run_logs import read_rows

    run = RunDir(Path(run_dir))
    rollout = config["env"]["n_envs"] * config["algorithm"]["n_steps"]
    total = config["training"]["total_timesteps"]
    final = -(-total // rollout) * rollout
    problems: list[str] = []

    def compare(what: str, found: list[int], expected: list[int]) -> None:
        if found != expected:
            lost, twice = sorted(set(expected) - set(found)), sorted({s for s in found if found.count(s) > 1})
            problems.append(f"{what}: steps {found}, expected {expected} (lost {lost}, logged twice {twice})")

    if model_file_problem(run.model) is not None:
        return [f"model.zip: {model_file_problem(run.model)}"]
    if RecurrentPPO.load(run.model, device="cpu").num_timesteps != final:
        problems.append(f"model.zip is not at step {final}")
    checkpoint_due = due_steps(final, rollout, config["training"]["checkpoint_freq"]) + [final]
    checkpoints = run.list_checkpoints()
    compare("checkpoints", [c.steps for c in checkpoints], checkpoint_due)
    problems += [f"{c.model.name}: {model_file_problem(c.model)}" for c in checkpoints if model_file_problem(c.model)]
    evaluations_due = due_steps(final, rollout, config["evaluation"]["freq"])
    compare("evaluations.csv", [int(r["timesteps"]) for r in read_rows(run.evaluations_csv)], evaluations_due)
    compare("training_time.csv", [int(r["timesteps"]) for r in read_rows(run.training_time_csv)], checkpoint_due)
    event_dirs = sorted(run.tensorboard.iterdir())
    if len(event_dirs) != 1:
        problems.append(f"TensorBoard: {len(event_dirs)} event directories, expected one continued run")
    accumulator = EventAccumulator(str(event_dirs[-1]), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]

    def steps(tag: str) -> list[int]:
        return [event.step for event in accumulator.Scalars(tag)] if tag in tags else []

    compare("TensorBoard time/fps", steps("time/fps"), list(range(rollout, final + 1, rollout)))
    compare("TensorBoard eval/mean_reward", steps("eval/mean_reward"), evaluations_due)
    problems += [
        f"TensorBoard {tag}: a step logged twice ({steps(tag)})"
        for tag in tags
        if len(steps(tag)) != len(set(steps(tag)))
    ]
    return problems


def finish(config_path: Path, run_dir: Path, cli: Cli = in_a_process, attempts: int = 4) -> tuple[int, list[str]]:
    """Resume a killed run until it completes, as a user would (in new processes unless ``cli`` is another way);
    ``(resumes, their outputs)``."""
    outputs = []
    for attempt in range(1, attempts + 1):
        code, out, err = cli(train_args(config_path, run_dir, resume=started(run_dir)))
        outputs.append(out + err)
        if code == 0:
            return attempt, outputs
    return attempts, outputs


def started(run_dir: Path) -> bool:
    """A run that wrote its config: ``rlgru train`` resumes it (``--resume``) rather than starting it."""
    return (Path(run_dir) / "config.yaml").is_file()


def damage(path: Path, kind: str) -> None:
    """What a kill mid-write (of a file written in place), a full disk or a bad copy does to a model zip."""
    data = path.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "bit flip":  # inside the compressed weights: the zip directory still reads, the CRC does not
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("policy.pth")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
        path.write_bytes(data[:offset] + bytes([data[offset] ^ 0xFF]) + data[offset + 1 :])
    elif kind == "garbage":
        path.write_bytes(b"PK\x03\x04 but nothing of a zip after it")
    else:
        raise ValueError(kind)


#: each kind of ``damage`` -> how rlgru names what is wrong with the file ("" where that depends on where it was cut)
DAMAGE_KINDS = {
    "empty": "empty (0 bytes)",
    "truncated": "",
    "bit flip": "corrupted (member policy.pth fails its CRC check)",
    "garbage": "not a whole zip archive",
}


class Payload:
    """Unpickling this runs a shell command that creates ``marker``: what a crafted file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def craft_model(source: Path, target: Path, key: str, payload: object) -> Path:
    """``source`` with ``data[key]`` replaced by a pickled payload, as SB3 stores its cloudpickled attributes."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data[key] = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(payload)).decode()}
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return target


def _install_kill_hook(spec: str) -> None:
    """SIGKILL this process when ``rlgru.runtime.files`` is about to rename a finished temporary file onto a name
    matching ``spec`` (``glob`` or ``glob#n``: the n-th such rename)."""
    import rlgru.runtime.files

    pattern, _, nth = spec.partition("#")
    remaining = [int(nth or 1)]
    real_replace = os.replace

    def replace(source: Any, destination: Any, *args: Any, **kwargs: Any) -> None:
        if rlgru.runtime.files.TEMPORARY_MARK in Path(source).name and fnmatch.fnmatch(Path(destination).name, pattern):
            remaining[0] -= 1
            if remaining[0] == 0:
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(10)  # the signal is delivered before this ends
        real_replace(source, destination, *args, **kwargs)

    os.replace = replace


if __name__ == "__main__":
    if os.environ.get(KILL_ON):
        _install_kill_hook(os.environ[KILL_ON])
    from rlgru.cli import main

    sys.exit(main(sys.argv[1:]))


@contextlib.contextmanager
def lock_held_elsewhere(lock_path: Path) -> Iterator[subprocess.Popen]:
    """Another process holds ``lock_path``'s flock (recording its pid, as rlgru's run lock does) while this lasts:
    a second writer, without the cost of training one."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid %d' % os.getpid()); print('held', flush=True); "
            "time.sleep(60)",
            str(lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def lose_a_ray_node_mid_work(work: Callable[[str], Any], side_by_side: Callable[[], bool]) -> Any:
    """``work(address)`` on a local Ray cluster of three nodes (a head without CPUs, two one-CPU workers); once
    ``side_by_side()`` says both workers are busy, one worker node is removed (it and every process on it die) and a
    fresh one added. Returns what ``work`` returned, after asserting it ended without an error."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work(cluster.address)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    try:
        thread = threading.Thread(target=run)
        thread.start()
        deadline, busy = time.monotonic() + 240, False
        while time.monotonic() < deadline and not busy:
            busy = side_by_side()
            time.sleep(0.05)
        # both nodes busy at once, so the node removed next holds work mid-training (on a loaded machine Ray can
        # start the second node late and run both pieces on one node, one after the other)
        assert busy, "the work never ran side by side on the two nodes"
        cluster.remove_node(workers[0])
        cluster.add_node(num_cpus=1)
        thread.join(timeout=400)
        assert not thread.is_alive() and "error" not in outcome, outcome
    finally:
        cluster.shutdown()
    return outcome["result"]
