"""Single-step inference latency of a deployed recurrent policy: exported ONNX and TorchScript against ``predict``.

For every rlgru core and batch sizes 1 and 64, one step (observation and state in, action and state out, numpy on
both sides) through: onnxruntime on the exported ``.onnx``, ``torch.jit.load`` of the exported ``.pt``, rlgru's
``RecurrentPPO.predict``, and sb3-contrib's ``RecurrentPPO.predict`` (LSTM, the same sizes) as the reference.
Untrained policies (latency does not depend on the weights) on RepeatFirst's observations (5 floats, 4 actions),
VecNormalize statistics baked into the exported files. One intra-op thread everywhere; the candidates of one
(core, batch) run interleaved, round after round in rotating order; each cell is the median over rounds of the mean
of ``--calls`` consecutive calls, each fed the state the previous call returned.

    python benchmarks/inference_latency.py --out results/inference_latency.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from machine import cpu_name
from sb3_contrib import RecurrentPPO as ContribPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from rlgru import RecurrentPPO
from rlgru.cores import core_names
from rlgru.export import export_policy

ENV_ID = "rlgru/RepeatFirst-Medium-v0"
BATCHES = (1, 64)
METHODS = ("sb3-contrib predict", "rlgru predict", "TorchScript", "ONNX")


def interleaved_medians(
    candidates: dict[str, Callable[[], None]], rounds: int, calls: int, warmup: int = 3
) -> dict[str, float]:
    """Median over rounds of seconds per call; each round runs every candidate ``calls`` times, rotating order."""
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run = candidates[name]
            start = time.perf_counter()
            for _ in range(calls):
                run()
            if r >= warmup:
                samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def stepper(step: Callable[[np.ndarray], np.ndarray], state: np.ndarray) -> Callable[[], None]:
    """A call that feeds the state the previous call returned, as a deployed control loop does."""
    box = [state]

    def run() -> None:
        box[0] = step(box[0])

    return run


def candidates(core: str, batch: int, hidden: int, directory: Path) -> dict[str, Callable[[], None]]:
    venv = VecNormalize(make_vec_env(ENV_ID, n_envs=2, seed=0))
    venv.training = False
    kwargs = {"hidden_size": hidden, "net_arch": [hidden]}
    model = RecurrentPPO("MlpPolicy", venv, policy_kwargs={"core": core, **kwargs}, seed=0, device="cpu")
    contrib = ContribPPO(
        "MlpLstmPolicy", venv, policy_kwargs={"lstm_hidden_size": hidden, "net_arch": [hidden]}, seed=0, device="cpu"
    )
    onnx_path = export_policy(model, directory / f"{core}.onnx").path
    script_path = export_policy(model, directory / f"{core}.pt", "torchscript").path

    rng = np.random.default_rng(0)
    obs = rng.random((batch, *venv.observation_space.shape), dtype=np.float32)
    starts = np.zeros(batch, dtype=np.float32)
    state = np.zeros((1, batch, model.policy.state_size), np.float32)

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    module = torch.jit.load(str(script_path))

    def onnx(s: np.ndarray) -> np.ndarray:
        return session.run(["action", "next_state"], {"obs": obs, "state": s, "episode_start": starts})[1]

    def torchscript(s: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            action, next_state = module(torch.from_numpy(obs), torch.from_numpy(s), torch.from_numpy(starts))
        action.numpy()
        return next_state.numpy()

    def rlgru_predict(s: np.ndarray) -> np.ndarray:
        return model.predict(obs, s, starts, deterministic=True)[1]

    h = np.zeros((1, batch, hidden), np.float32)

    def contrib_predict(s: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return contrib.predict(obs, s, starts, deterministic=True)[1]

    return {
        "sb3-contrib predict": stepper(contrib_predict, (h, h.copy())),
        "rlgru predict": stepper(rlgru_predict, state),
        "TorchScript": stepper(torchscript, state),
        "ONNX": stepper(onnx, state),
    }


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    command = (
        f"python benchmarks/inference_latency.py --rounds {args.rounds} --calls {args.calls} --hidden {args.hidden} "
        f"--threads {args.threads}"
        + ("" if args.cores == core_names() else f" --cores {' '.join(args.cores)}")
        + (f" --out results/{args.out.name}" if args.out else "")
    )
    lines = [
        "# Inference latency: exported ONNX and TorchScript vs predict()",
        "",
        f"CPU: {cpu_name()}; torch {torch.__version__}; onnxruntime {ort.__version__}; "
        f"Python {platform.python_version()}; {args.threads} intra-op thread(s) (torch and onnxruntime); median over "
        f"{args.rounds} interleaved rounds of {args.calls} calls each.",
        f"Generated by `{command}`. One step of an untrained policy (hidden size {args.hidden}, one layer, MLP "
        f"[{args.hidden}], its own critic core) on {ENV_ID}'s observations (5 floats, 4 actions), VecNormalize baked "
        "into the files; numpy in and out for every column, the state fed back each call. sb3-contrib's column is "
        "its LSTM policy at the same sizes (the same model in every row of a batch, timed again beside each core).",
        f"Load average (1 min) on this machine's {os.cpu_count()} CPUs: {args.load[0]:.1f} before, {args.load[1]:.1f} "
        "after: other jobs shared the machine when above about 1, and absolute times then vary from run to run; the "
        "speed-ups, from interleaved rounds, vary less.",
        "Speed-up = sb3-contrib predict time / column time.",
        "",
    ]
    for batch in BATCHES:
        lines += [
            f"## Batch {batch}: microseconds per step",
            "",
            "| core | " + " | ".join(METHODS) + " | rlgru predict speed-up | TorchScript speed-up | ONNX speed-up |",
            "|---" * (len(METHODS) + 4) + "|",
        ]
        for row in (r for r in rows if r["batch"] == batch):
            times = row["seconds"]
            reference = times["sb3-contrib predict"]
            cells = [f"{times[m] * 1e6:.0f}" for m in METHODS]
            ratios = [f"{reference / times[m]:.1f}x" for m in METHODS[1:]]
            lines.append(f"| {row['core']} | " + " | ".join(cells + ratios) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--calls", type=int, default=50, help="consecutive calls timed together in a round")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cores", nargs="+", default=core_names())
    parser.add_argument("--out", type=Path, help="markdown report; the raw numbers go beside it as .json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for core in args.cores:
            for batch in BATCHES:
                seconds = interleaved_medians(
                    candidates(core, batch, args.hidden, Path(directory)), args.rounds, args.calls
                )
                rows.append({"core": core, "batch": batch, "seconds": seconds})
                print(core, batch, {name: f"{value * 1e6:.0f} us" for name, value in seconds.items()}, flush=True)
    args.load = (load_before, os.getloadavg()[0])
    report = markdown(rows, args)
    if args.out:
        args.out.write_text(report)
        setup = {
            "cpu": cpu_name(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "threads": args.threads,
            "rounds": args.rounds,
            "calls": args.calls,
            "hidden": args.hidden,
            "load_average": args.load,
        }
        args.out.with_suffix(".json").write_text(json.dumps({**setup, "rows": rows}, indent=1) + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
