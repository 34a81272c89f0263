"""Fused kernel benchmark, one cell at a time: rlgru's fused GRU or LSTM against PyTorch.

One process, one intra-op thread by default. Candidates run interleaved, round after round, and each cell of a
table is the median over rounds. Training: forward + backward (input size = H, gradients for inputs and
parameters). The one-off kernel compile is timed in a subprocess with an empty extension cache, then once more with
the cache warm.

* GRU (``results/gru_kernel.md``): GRUCore (fused) against nn.LSTM, nn.GRU and GRUCore's PyTorch fallback, with
  episode starts at t = 0 (sequence-cut training batches) and inside the sequence; a rollout step (T = 1, B = 8,
  no grad) against nn.LSTM, nn.LSTMCell and nn.GRU.
* LSTM (``results/lstm_kernel.md``): one fused layer against nn.LSTM (oneDNN), which cannot take resets inside a
  sequence; the training case that motivates the kernel, velocity-masked CartPole minibatches (input size 2,
  H = 64): with native resets the core replays whole rollout lanes, [32, 8] with the episode starts inside, while
  cutting at resets gives ~17 sequences padded to [32, 17], which is what nn.LSTM gets; a rollout step: LSTMCore's
  torch.lstm_cell path (what it runs for rollout steps) against the kernel at T = 1 and nn.LSTM.

    python benchmarks/kernels.py --cell gru --out results/gru_kernel.md
    python benchmarks/kernels.py --cell lstm --out results/lstm_kernel.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import torch
from machine import cpu_name
from torch import nn

from rlgru.cores import fused_gru as fg
from rlgru.cores import fused_lstm as fl
from rlgru.cores.gru import GRUCore
from rlgru.cores.lstm import LSTMCore

SHAPES = [(32, 8, 64), (32, 64, 128), (128, 16, 256)]
INFERENCE_BATCH = 8
# the LSTM's training case: velocity-masked CartPole
LANES, STEPS, OBS, HIDDEN = 8, 32, 2, 64
Candidates = dict[str, Callable[[], object]]


@contextlib.contextmanager
def pytorch_fallback(kernel: ModuleType) -> Iterator[None]:
    """Run cores on PyTorch's module, exactly as when the kernel is unavailable."""
    previous = os.environ.get(kernel.DISABLE_ENV)
    os.environ[kernel.DISABLE_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[kernel.DISABLE_ENV]
        else:
            os.environ[kernel.DISABLE_ENV] = previous


def interleaved_medians(candidates: Candidates, rounds: int, warmup: int = 3, calls: int = 1) -> dict[str, float]:
    """Median seconds per call; each round runs every candidate `calls` times, in a rotating order."""
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = candidates[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            if r >= warmup:
                samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def train_step(module: nn.Module, x: torch.Tensor, run: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """Forward + backward with a fixed random output gradient; gradients reset each call."""
    grad = None

    def fn() -> None:
        nonlocal grad
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = run()
        if grad is None:
            grad = torch.randn_like(out)
        out.backward(grad)

    return fn


def layer_weights(rnn: nn.RNNBase) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(rnn, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def rollout_medians(candidates: Callable[[int], Candidates]) -> Iterator[tuple[int, dict[str, float]]]:
    """Medians of rollout-step candidates (no grad, 50 calls a round) for every hidden size of SHAPES."""
    with torch.no_grad():
        for hidden in sorted({h for _, _, h in SHAPES}):
            yield hidden, interleaved_medians(candidates(hidden), rounds=30, warmup=3, calls=50)


def emit(lines: list[str], row: str) -> None:
    lines.append(row)
    print(row, flush=True)


# -------------------------------------------------------------------------------------------------------- GRU
def gru_training(seq_len: int, batch: int, hidden: int, starts: torch.Tensor) -> Candidates:
    torch.manual_seed(0)
    lstm, gru, core = nn.LSTM(hidden, hidden), nn.GRU(hidden, hidden), GRUCore(hidden, hidden)
    x = torch.randn(seq_len, batch, hidden, requires_grad=True)
    h0 = torch.zeros(1, batch, hidden)
    state = torch.randn(1, batch, hidden)

    def fallback() -> torch.Tensor:
        with pytorch_fallback(fg):
            return core(x, state, starts)[0]

    return {
        "nn.LSTM": train_step(lstm, x, lambda: lstm(x, (h0, h0))[0]),
        "nn.GRU": train_step(gru, x, lambda: gru(x, h0)[0]),
        "GRUCore fused": train_step(core, x, lambda: core(x, state, starts)[0]),
        "GRUCore fallback": train_step(core, x, fallback),
    }


def gru_rollout(hidden: int) -> Candidates:
    torch.manual_seed(0)
    b = INFERENCE_BATCH
    lstm, lstm_cell = nn.LSTM(hidden, hidden), nn.LSTMCell(hidden, hidden)
    gru, core = nn.GRU(hidden, hidden), GRUCore(hidden, hidden)
    x = torch.randn(1, b, hidden)
    h = torch.randn(1, b, hidden)
    starts = (torch.rand(1, b) < 0.1).float()

    def fallback() -> None:
        with pytorch_fallback(fg):
            core(x, h, starts)

    return {
        "nn.LSTM (T=1)": lambda: lstm(x, (h, h)),
        "nn.LSTMCell": lambda: lstm_cell(x[0], (h[0], h[0])),
        "nn.GRU (T=1)": lambda: gru(x, h),
        "GRUCore fused": lambda: core(x, h, starts),
        "GRUCore fallback": fallback,
    }


def gru_sections(rounds: int) -> list[str]:
    lines = [
        "## Training step: forward + backward (input size = H, grads for input and parameters)",
        "",
        "Episode starts at t = 0 for ~30% of the envs (sequence-cut training batches), given to GRUCore;",
        "nn.LSTM and nn.GRU get zero initial states and no resets.",
        "",
        "| T, B, H | nn.LSTM ms | nn.GRU ms | GRUCore fused ms | GRUCore fallback ms | fused / LSTM "
        "| fused / nn.GRU | fallback / LSTM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    mid_lines = [
        "",
        "## Resets inside the sequence (5% of steps, any t): the kernel masks them in the loop",
        "",
        "| T, B, H | GRUCore fused ms | fused, starts at t=0 only ms | GRUCore fallback ms (splits at resets) |",
        "|---|---|---|---|",
    ]
    for seq_len, batch, hidden in SHAPES:
        torch.manual_seed(1)
        starts = torch.zeros(seq_len, batch)
        starts[0] = (torch.rand(batch) < 0.3).float()
        t = interleaved_medians(gru_training(seq_len, batch, hidden, starts), rounds)
        lstm, fused, fallback = t["nn.LSTM"], t["GRUCore fused"], t["GRUCore fallback"]
        emit(
            lines,
            f"| {seq_len}, {batch}, {hidden} | {fmt_ms(lstm)} | {fmt_ms(t['nn.GRU'])} | {fmt_ms(fused)} "
            f"| {fmt_ms(fallback)} | **{fused / lstm:.2f}x** | {fused / t['nn.GRU']:.2f}x | {fallback / lstm:.2f}x |",
        )
        cands = gru_training(seq_len, batch, hidden, (torch.rand(seq_len, batch) < 0.05).float())
        mid = interleaved_medians(
            {"fused": cands["GRUCore fused"], "fallback": cands["GRUCore fallback"]}, max(5, rounds // 3), warmup=2
        )
        emit(
            mid_lines,
            f"| {seq_len}, {batch}, {hidden} | {fmt_ms(mid['fused'])} | {fmt_ms(fused)} | {fmt_ms(mid['fallback'])} |",
        )
    lines += mid_lines
    lines += [
        "",
        f"## Rollout step: T = 1, B = {INFERENCE_BATCH}, no grad (GRUCore also gets episode starts)",
        "",
        "| H | nn.LSTM (T=1) us | nn.LSTMCell us | nn.GRU (T=1) us | GRUCore fused us | GRUCore fallback us "
        "| fused / LSTM (T=1) | fused / LSTMCell |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for hidden, t in rollout_medians(gru_rollout):
        fused = t["GRUCore fused"]
        emit(
            lines,
            f"| {hidden} | {fmt_us(t['nn.LSTM (T=1)'])} | {fmt_us(t['nn.LSTMCell'])} "
            f"| {fmt_us(t['nn.GRU (T=1)'])} | {fmt_us(fused)} | {fmt_us(t['GRUCore fallback'])} "
            f"| **{fused / t['nn.LSTM (T=1)']:.2f}x** | **{fused / t['nn.LSTMCell']:.2f}x** |",
        )
    return lines


# ------------------------------------------------------------------------------------------------------- LSTM
def lstm_layer_training(seq_len: int, batch: int, hidden: int) -> Candidates:
    torch.manual_seed(0)
    lstm = nn.LSTM(hidden, hidden)
    x = torch.randn(seq_len, batch, hidden, requires_grad=True)
    zeros = torch.zeros(batch, hidden)
    starts = torch.zeros(seq_len, batch)
    starts[0] = (torch.rand(batch) < 0.3).float()
    w = layer_weights(lstm)
    return {
        "nn.LSTM": train_step(lstm, x, lambda: lstm(x, (zeros[None], zeros[None]))[0]),
        "fused": train_step(lstm, x, lambda: fl.lstm_layer(x, zeros, zeros, *w, resets=starts)[0]),
    }


def rollout_starts(steps: int, lanes: int, mean_episode: float, seed: int) -> torch.Tensor:
    """Episode starts of a rollout with geometric episode lengths (mean ``mean_episode``)."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, lanes, generator=gen) < 1.0 / mean_episode).float()


def n_cut_sequences(starts: torch.Tensor) -> int:
    """How many sequences cutting each lane at its episode starts gives (a lane's first step always starts one)."""
    return int(LANES + starts[1:].sum().item())


def lstm_training_case(starts: torch.Tensor, n_sequences: int) -> Candidates:
    torch.manual_seed(0)
    lstm = nn.LSTM(OBS, HIDDEN)
    core = LSTMCore(OBS, HIDDEN)
    core.lstm.load_state_dict(lstm.state_dict(), strict=False)
    lanes_x = torch.randn(STEPS, LANES, OBS, requires_grad=True)
    padded_x = torch.randn(STEPS, n_sequences, OBS, requires_grad=True)
    state = torch.randn(1, LANES, 2 * HIDDEN)
    zeros = torch.zeros(1, n_sequences, HIDDEN)
    return {
        "padded": train_step(lstm, padded_x, lambda: lstm(padded_x, (zeros, zeros))[0]),
        "lanes": train_step(core, lanes_x, lambda: core(lanes_x, state, starts)[0]),
    }


def lstm_rollout(hidden: int) -> Candidates:
    torch.manual_seed(0)
    b = INFERENCE_BATCH
    core = LSTMCore(hidden, hidden)
    lstm = core.lstm
    x = torch.randn(1, b, hidden)
    state = torch.randn(1, b, 2 * hidden)
    h, c = state[..., :hidden].contiguous(), state[..., hidden:].contiguous()
    starts = (torch.rand(1, b) < 0.1).float()
    keep = (1 - starts).view(1, b, 1)
    return {
        "nn.LSTM (T=1)": lambda: lstm(x, (h, c)),
        # What LSTMCore does for a rollout step: mask the state, then torch.lstm_cell per layer.
        "LSTMCore, lstm_cell": lambda: core.run_segment(x, state * keep),
        # What sending the step to the kernel would cost: the core's dispatch checks and keep, then the kernel.
        "kernel via LSTMCore dispatch": lambda: (
            fl.fused_ok(x) and fl.run_layers(x, state, core.layers(), 1 - starts.to(x.dtype))
        ),
        "kernel alone": lambda: fl.run_layers(x, state, core.layers(), keep[..., 0]),
    }


def lstm_sections(rounds: int) -> list[str]:
    lines = [
        "## One layer, forward + backward (input size = H, grads for input and parameters)",
        "",
        "Episode starts at t = 0 for ~30% of the envs, given to the kernel; nn.LSTM (oneDNN) gets zero states.",
        "",
        "| T, B, H | nn.LSTM ms | fused ms | fused / nn.LSTM |",
        "|---|---|---|---|",
    ]
    for seq_len, batch, hidden in SHAPES:
        t = interleaved_medians(lstm_layer_training(seq_len, batch, hidden), rounds)
        emit(
            lines,
            f"| {seq_len}, {batch}, {hidden} | {fmt_ms(t['nn.LSTM'])} | {fmt_ms(t['fused'])} "
            f"| **{t['fused'] / t['nn.LSTM']:.2f}x** |",
        )
    lines += [
        "",
        f"## The training case: velocity-masked CartPole minibatch (input {OBS}, H = {HIDDEN}, {LANES} envs, "
        f"n_steps {STEPS})",
        "",
        "Episode starts drawn with geometric episode lengths. Uncut lanes with the resets inside go through",
        "LSTMCore (the kernel); cutting the same lanes at every reset gives the padded grid nn.LSTM has to run.",
        "",
        "| mean episode length | cut sequences | real steps in padded grid | nn.LSTM padded ms | fused lanes ms "
        "| fused / nn.LSTM |",
        "|---|---|---|---|---|---|",
    ]
    for mean_episode, seed in ((20.0, 0), (60.0, 1)):
        starts = rollout_starts(STEPS, LANES, mean_episode, seed)
        n_seq = n_cut_sequences(starts)
        t = interleaved_medians(lstm_training_case(starts, n_seq), rounds)
        emit(
            lines,
            f"| {mean_episode:.0f} | {n_seq} | {LANES / n_seq:.0%} | {fmt_ms(t['padded'])} | {fmt_ms(t['lanes'])} "
            f"| **{t['lanes'] / t['padded']:.2f}x** |",
        )
    lines += [
        "",
        f"## Rollout step: T = 1, B = {INFERENCE_BATCH}, no grad, one layer (input size = H)",
        "",
        "LSTMCore runs rollout steps on torch.lstm_cell unless the kernel, with the checks and mask LSTMCore's",
        "dispatch adds, is faster.",
        "",
        "| H | nn.LSTM (T=1) us | LSTMCore, lstm_cell us | kernel via LSTMCore dispatch us | kernel alone us "
        "| dispatch + kernel / lstm_cell |",
        "|---|---|---|---|---|---|",
    ]
    for hidden, t in rollout_medians(lstm_rollout):
        dispatch, cell = t["kernel via LSTMCore dispatch"], t["LSTMCore, lstm_cell"]
        emit(
            lines,
            f"| {hidden} | {fmt_us(t['nn.LSTM (T=1)'])} | {fmt_us(cell)} | {fmt_us(dispatch)} "
            f"| {fmt_us(t['kernel alone'])} | **{dispatch / cell:.2f}x** |",
        )
    return lines


# ------------------------------------------------------------------------------------------------ the report
KERNELS = {"gru": (fg, gru_sections), "lstm": (fl, lstm_sections)}


def compile_times(cell: str) -> dict[str, object]:
    """Cold compile and warm-cache load of the kernel, each in a fresh interpreter with an empty/own cache."""
    code = (
        "import json, time, warnings\n"
        f"from rlgru.cores import fused_{cell} as kernel\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    start = time.perf_counter(); ok = kernel.load_extension(); seconds = time.perf_counter() - start\n"
        "print(json.dumps({'ok': ok, 'seconds': seconds, 'warnings': [str(w.message) for w in caught]}))\n"
    )
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="rlgru_ext_") as cache:
        env = {**os.environ, "TORCH_EXTENSIONS_DIR": cache}
        env.pop(KERNELS[cell][0].DISABLE_ENV, None)
        for label in ("cold", "warm"):
            run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            results[label] = json.loads(run.stdout.strip().splitlines()[-1])
            results[f"{label}_stdout_stderr_lines"] = len((run.stderr + run.stdout).strip().splitlines()) - 1
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", choices=sorted(KERNELS), required=True)
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per training shape")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-compile", action="store_true", help="do not time the kernel compile")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    kernel, sections = KERNELS[args.cell]
    compile_report = None if args.skip_compile else compile_times(args.cell)
    if not kernel.load_extension():
        sys.exit(f"the fused {args.cell.upper()} kernel is unavailable here; nothing to benchmark")
    info = kernel.KERNEL.info()
    lines = [
        f"# {args.cell.upper()} kernel benchmark",
        "",
        f"`python benchmarks/kernels.py --cell {args.cell}` on {cpu_name()}, torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s), Python {platform.python_version()}. Kernel ISA: `{info['isa']}`; "
        f"big GEMMs via oneDNN: {info['onednn_gemm']}. Times are medians over interleaved rounds; ratios < 1 mean "
        "the fused kernel is faster.",
        "",
        *sections(args.rounds),
        "",
        "## One-off kernel compile",
        "",
    ]
    if compile_report is None:
        lines.append("(not measured: --skip-compile)")
    else:
        cold, warm = compile_report["cold"], compile_report["warm"]
        lines += [
            f"- cold (empty `TORCH_EXTENSIONS_DIR`, ninja + g++ -O3): **{cold['seconds']:.1f} s**, ok={cold['ok']}, "
            f"warnings={len(cold['warnings'])}, other output lines={compile_report['cold_stdout_stderr_lines']}",
            f"- warm (cached .so, new process): **{warm['seconds'] * 1e3:.0f} ms**, ok={warm['ok']}",
        ]
        print(lines[-2], lines[-1], sep="\n", flush=True)
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
