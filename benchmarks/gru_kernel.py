"""GRU kernel benchmark: rlgru's fused GRUCore against nn.LSTM, nn.GRU and GRUCore's PyTorch fallback.

One process, one intra-op thread by default. Training: forward + backward over a [T, B, H] minibatch (input size
= H, gradients for inputs and parameters, episode starts at t = 0 as in sequence-cut training batches).
Inference: one rollout step (T = 1, no grad, B = 8). Candidates run interleaved, round after round, and each
cell is the median over rounds. The one-off kernel compile is timed in a subprocess with an empty extension
cache, then once more with the cache warm.

    python benchmarks/gru_kernel.py --out results/gru_kernel.md
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

import torch
from machine import cpu_name
from torch import nn

from rlgru.cores import GRUCore
from rlgru.cores import fused_gru as fg

SHAPES = [(32, 8, 64), (32, 64, 128), (128, 16, 256)]
INFERENCE_BATCH = 8


@contextlib.contextmanager
def pytorch_fallback() -> Iterator[None]:
    """Run GRUCore on nn.GRU, exactly as when the kernel is unavailable."""
    previous = os.environ.get(fg.DISABLE_ENV)
    os.environ[fg.DISABLE_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[fg.DISABLE_ENV]
        else:
            os.environ[fg.DISABLE_ENV] = previous


def interleaved_medians(
    candidates: dict[str, Callable[[], None]], rounds: int, warmup: int = 3, calls: int = 1
) -> dict[str, float]:
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


def training_candidates(seq_len: int, batch: int, hidden: int, starts: torch.Tensor) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    lstm, gru, core = nn.LSTM(hidden, hidden), nn.GRU(hidden, hidden), GRUCore(hidden, hidden)
    x = torch.randn(seq_len, batch, hidden, requires_grad=True)
    grad = torch.randn(seq_len, batch, hidden)
    h0 = torch.zeros(1, batch, hidden)
    state = torch.randn(1, batch, hidden)

    def step(module: nn.Module, run: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def fn() -> None:
            module.zero_grad(set_to_none=True)
            x.grad = None
            run().backward(grad)

        return fn

    def fallback() -> torch.Tensor:
        with pytorch_fallback():
            return core(x, state, starts)[0]

    return {
        "nn.LSTM": step(lstm, lambda: lstm(x, (h0, h0))[0]),
        "nn.GRU": step(gru, lambda: gru(x, h0)[0]),
        "GRUCore fused": step(core, lambda: core(x, state, starts)[0]),
        "GRUCore fallback": step(core, fallback),
    }


def inference_candidates(hidden: int) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    b = INFERENCE_BATCH
    lstm, lstm_cell = nn.LSTM(hidden, hidden), nn.LSTMCell(hidden, hidden)
    gru, core = nn.GRU(hidden, hidden), GRUCore(hidden, hidden)
    x = torch.randn(1, b, hidden)
    h = torch.randn(1, b, hidden)
    starts = (torch.rand(1, b) < 0.1).float()

    def fallback() -> None:
        with pytorch_fallback():
            core(x, h, starts)

    return {
        "nn.LSTM (T=1)": lambda: lstm(x, (h, h)),
        "nn.LSTMCell": lambda: lstm_cell(x[0], (h[0], h[0])),
        "nn.GRU (T=1)": lambda: gru(x, h),
        "GRUCore fused": lambda: core(x, h, starts),
        "GRUCore fallback": fallback,
    }


def compile_times() -> dict[str, object]:
    """Cold compile and warm-cache load of the kernel, each in a fresh interpreter with an empty/own cache."""
    code = (
        "import json, time, warnings\n"
        "from rlgru.cores import fused_gru as fg\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    start = time.perf_counter(); ok = fg.load_extension(); seconds = time.perf_counter() - start\n"
        "print(json.dumps({'ok': ok, 'seconds': seconds, 'warnings': [str(w.message) for w in caught]}))\n"
    )
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="rlgru_ext_") as cache:
        env = {**os.environ, "TORCH_EXTENSIONS_DIR": cache}
        env.pop(fg.DISABLE_ENV, None)
        for label in ("cold", "warm"):
            run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            report = json.loads(run.stdout.strip().splitlines()[-1])
            results[label] = report
            results[f"{label}_stdout_stderr_lines"] = len((run.stderr + run.stdout).strip().splitlines()) - 1
    return results


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per training shape")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-compile", action="store_true", help="do not time the kernel compile")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    compile_report = None if args.skip_compile else compile_times()
    if not fg.load_extension():
        sys.exit("the fused GRU kernel is unavailable here; nothing to benchmark")
    info = fg.fused_gru_info()
    lines = [
        "# GRU kernel benchmark",
        "",
        f"`python benchmarks/gru_kernel.py` on {cpu_name()}, torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s), Python {platform.python_version()}. Kernel ISA: `{info['isa']}`; "
        f"big GEMMs via oneDNN: {info['onednn_gemm']}. Times are medians over interleaved rounds.",
        "",
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
        times = interleaved_medians(training_candidates(seq_len, batch, hidden, starts), args.rounds)
        lstm = times["nn.LSTM"]
        row = (
            f"| {seq_len}, {batch}, {hidden} | {fmt_ms(lstm)} | {fmt_ms(times['nn.GRU'])} "
            f"| {fmt_ms(times['GRUCore fused'])} | {fmt_ms(times['GRUCore fallback'])} "
            f"| **{times['GRUCore fused'] / lstm:.2f}x** | {times['GRUCore fused'] / times['nn.GRU']:.2f}x "
            f"| {times['GRUCore fallback'] / lstm:.2f}x |"
        )
        lines.append(row)
        print(row, flush=True)

        mid = (torch.rand(seq_len, batch) < 0.05).float()
        cands = training_candidates(seq_len, batch, hidden, mid)
        mid_times = interleaved_medians(
            {"fused": cands["GRUCore fused"], "fallback": cands["GRUCore fallback"]},
            max(5, args.rounds // 3),
            warmup=2,
        )
        mid_row = (
            f"| {seq_len}, {batch}, {hidden} | {fmt_ms(mid_times['fused'])} | {fmt_ms(times['GRUCore fused'])} "
            f"| {fmt_ms(mid_times['fallback'])} |"
        )
        mid_lines.append(mid_row)
        print(mid_row, flush=True)

    inf_lines = [
        "",
        f"## Rollout step: T = 1, B = {INFERENCE_BATCH}, no grad (GRUCore also gets episode starts)",
        "",
        "| H | nn.LSTM (T=1) us | nn.LSTMCell us | nn.GRU (T=1) us | GRUCore fused us | GRUCore fallback us "
        "| fused / LSTM (T=1) | fused / LSTMCell |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with torch.no_grad():
        for hidden in sorted({h for _, _, h in SHAPES}):
            t = interleaved_medians(inference_candidates(hidden), rounds=30, warmup=3, calls=50)
            row = (
                f"| {hidden} | {fmt_us(t['nn.LSTM (T=1)'])} | {fmt_us(t['nn.LSTMCell'])} "
                f"| {fmt_us(t['nn.GRU (T=1)'])} | {fmt_us(t['GRUCore fused'])} | {fmt_us(t['GRUCore fallback'])} "
                f"| **{t['GRUCore fused'] / t['nn.LSTM (T=1)']:.2f}x** "
                f"| **{t['GRUCore fused'] / t['nn.LSTMCell']:.2f}x** |"
            )
            inf_lines.append(row)
            print(row, flush=True)

    lines += mid_lines + inf_lines
    lines += ["", "## One-off kernel compile", ""]
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
