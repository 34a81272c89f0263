"""LSTM kernel benchmark: rlgru's fused LSTM (in-loop resets) against PyTorch's nn.LSTM (oneDNN).

One process, one intra-op thread by default. Training: forward + backward (gradients for inputs and parameters)
of one layer; candidates run interleaved, round after round, and each cell is the median over rounds.

* kernel shapes: [T, B, H] with input size = H, episode starts at t = 0 only (nn.LSTM cannot take others);
* the training case that motivates the kernel: velocity-masked CartPole minibatches (input size 2, H = 64).
  With native resets the core replays whole rollout lanes, [32, 8] with the episode starts inside; cutting at
  resets instead gives ~17 sequences padded to [32, 17] (46% real steps), which is what nn.LSTM gets;
* a rollout step (T = 1, B = 8, no grad, with episode starts): LSTMCore's torch.lstm_cell path (what it runs
  for rollout steps) against the kernel at T = 1 and nn.LSTM;
* the one-off compile, timed in a subprocess with an empty extension cache, then once more with it warm.

    python benchmarks/lstm_kernel.py --out results/lstm_kernel.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable

import torch
from gru_kernel import cpu_name, fmt_ms, fmt_us, interleaved_medians
from torch import nn

from rlgru.cores import LSTMCore
from rlgru.cores import fused_lstm as fl

SHAPES = [(32, 8, 64), (32, 64, 128), (128, 16, 256)]
LANES, PADDED, STEPS, OBS, HIDDEN = 8, 17, 32, 2, 64
INFERENCE_BATCH = 8


def layer_weights(lstm: nn.LSTM) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(lstm, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def train_step(module: nn.Module, x: torch.Tensor, run: Callable[[], torch.Tensor]) -> Callable[[], None]:
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


def kernel_candidates(seq_len: int, batch: int, hidden: int, inputs: int | None = None) -> dict[str, Callable]:
    torch.manual_seed(0)
    inputs = inputs or hidden
    lstm = nn.LSTM(inputs, hidden)
    x = torch.randn(seq_len, batch, inputs, requires_grad=True)
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


def training_case_candidates(starts: torch.Tensor, n_sequences: int) -> dict[str, Callable]:
    torch.manual_seed(0)
    lstm = nn.LSTM(OBS, HIDDEN)
    core = LSTMCore(OBS, HIDDEN)
    core.lstm.load_state_dict(lstm.state_dict(), strict=False)
    lanes_x = torch.randn(STEPS, LANES, OBS, requires_grad=True)
    padded_x = torch.randn(STEPS, n_sequences, OBS, requires_grad=True)
    state = torch.randn(1, LANES, 2 * HIDDEN)
    zeros = torch.zeros(1, n_sequences, HIDDEN)
    return {
        f"nn.LSTM, cut + padded [{STEPS}, {n_sequences}]": train_step(
            lstm, padded_x, lambda: lstm(padded_x, (zeros, zeros))[0]
        ),
        f"LSTMCore fused, lanes [{STEPS}, {LANES}] + resets": train_step(
            core, lanes_x, lambda: core(lanes_x, state, starts)[0]
        ),
    }


def n_cut_sequences(starts: torch.Tensor) -> int:
    """How many sequences cutting each lane at its episode starts gives (a lane's first step always starts one)."""
    return int(LANES + starts[1:].sum().item())


def rollout_candidates(hidden: int) -> dict[str, Callable]:
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
        # What LSTMCore does without the kernel: mask the state, then torch.lstm_cell per layer.
        "LSTMCore, lstm_cell": lambda: core._run(x, state * keep),
        # What LSTMCore.forward would do to send the step to the kernel (checks, keep), then the kernel alone.
        "kernel via LSTMCore dispatch": lambda: (
            fl.fused_ok(x) and fl.run_layers(x, state, core.layers(), 1 - starts.to(x.dtype))
        ),
        "kernel alone": lambda: fl.run_layers(x, state, core.layers(), keep[..., 0]),
    }


def compile_times() -> dict[str, dict]:
    """Cold compile and warm-cache load of the kernel, each in a fresh interpreter with its own cache."""
    code = (
        "import json, time, warnings\n"
        "from rlgru.cores import fused_lstm as fl\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    start = time.perf_counter(); ok = fl.load_extension(); seconds = time.perf_counter() - start\n"
        "print(json.dumps({'ok': ok, 'seconds': seconds, 'warnings': [str(w.message) for w in caught]}))\n"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="rlgru_ext_") as cache:
        env = {**os.environ, "TORCH_EXTENSIONS_DIR": cache}
        env.pop(fl.DISABLE_ENV, None)
        for label in ("cold", "warm"):
            run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            results[label] = json.loads(run.stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=str, help="write the markdown report here")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds per training shape")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-compile", action="store_true", help="do not time the kernel compile")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    compile_report = None if args.skip_compile else compile_times()
    if not fl.load_extension():
        sys.exit("the fused LSTM kernel is unavailable here; nothing to benchmark")
    info = fl.fused_lstm_info()
    lines = [
        "# LSTM kernel benchmark",
        "",
        f"`python benchmarks/lstm_kernel.py` on {cpu_name()}, torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s), Python {platform.python_version()}. Kernel ISA: `{info['isa']}`; "
        f"big GEMMs via oneDNN: {info['onednn_gemm']}. Times are medians over interleaved rounds; "
        "ratios < 1 mean the fused kernel is faster.",
        "",
        "## One layer, forward + backward (input size = H, grads for input and parameters)",
        "",
        "Episode starts at t = 0 for ~30% of the envs, given to the kernel; nn.LSTM (oneDNN) gets zero states.",
        "",
        "| T, B, H | nn.LSTM ms | fused ms | fused / nn.LSTM |",
        "|---|---|---|---|",
    ]
    for seq_len, batch, hidden in SHAPES:
        t = interleaved_medians(kernel_candidates(seq_len, batch, hidden), args.rounds)
        lines.append(
            f"| {seq_len}, {batch}, {hidden} | {fmt_ms(t['nn.LSTM'])} | {fmt_ms(t['fused'])} "
            f"| **{t['fused'] / t['nn.LSTM']:.2f}x** |"
        )
        print(lines[-1], flush=True)

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
        cands = training_case_candidates(starts, n_seq)
        t = interleaved_medians(cands, args.rounds)
        padded, fused = (t[name] for name in cands)
        lines.append(
            f"| {mean_episode:.0f} | {n_seq} | {LANES / n_seq:.0%} | {fmt_ms(padded)} | {fmt_ms(fused)} "
            f"| **{fused / padded:.2f}x** |"
        )
        print(lines[-1], flush=True)

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
    with torch.no_grad():
        for hidden in sorted({h for _, _, h in SHAPES}):
            t = interleaved_medians(rollout_candidates(hidden), rounds=30, warmup=3, calls=50)
            lines.append(
                f"| {hidden} | {fmt_us(t['nn.LSTM (T=1)'])} | {fmt_us(t['LSTMCore, lstm_cell'])} "
                f"| {fmt_us(t['kernel via LSTMCore dispatch'])} | {fmt_us(t['kernel alone'])} "
                f"| **{t['kernel via LSTMCore dispatch'] / t['LSTMCore, lstm_cell']:.2f}x** |"
            )
            print(lines[-1], flush=True)

    lines += ["", "## One-off kernel compile", ""]
    if compile_report is None:
        lines.append("(not measured: --skip-compile)")
    else:
        cold, warm = compile_report["cold"], compile_report["warm"]
        lines += [
            f"- cold (empty `TORCH_EXTENSIONS_DIR`, ninja + g++ -O3): **{cold['seconds']:.1f} s**, ok={cold['ok']}, "
            f"warnings={len(cold['warnings'])}",
            f"- warm (cached .so, new process): **{warm['seconds'] * 1e3:.0f} ms**, ok={warm['ok']}",
        ]
        print(lines[-2], lines[-1], sep="\n", flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
