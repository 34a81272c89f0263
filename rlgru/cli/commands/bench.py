"""Benchmark cores over a suite of tasks × seeds (locally or on Ray), then write the report."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rlgru.bench.report import write_report
from rlgru.bench.suite import SuiteConfig, load_suite
from rlgru.bench.sweep import plan, run_sweep
from rlgru.bench.tuned import tune_pairs, tuned_params, tuning_pairs
from rlgru.harness.progress import show_progress
from rlgru.harness.run_lock import claim_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", type=Path, metavar="SUITE.yaml", help="suite file (see configs/bench/)")
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool on this machine; ray: Ray tasks (pip install 'rlgru[ray]')",
    )
    parser.add_argument("--workers", type=int, help="parallel runs (local default: all CPUs; each uses one thread)")
    parser.add_argument("--address", help="Ray cluster address, e.g. auto (default: start a local Ray instance)")
    parser.add_argument("--out", type=Path, help="results directory (default: results/<suite name>)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs still to do and stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (also off when not a TTY)")


def run(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    out_dir = args.out or Path("results") / suite.name
    if suite.tuned is not None:
        _tune_first(args, suite, out_dir)
    runs, pending = plan(args.suite, out_dir)
    print(
        f"{suite.name}: {len(runs)} runs ({len({run.task for run in runs})} tasks, cores {', '.join(suite.cores)}"
        f"{', sb3-contrib reference' if suite.reference else ''}"
        f"{'; at equal parameters too: ' + ', '.join(suite.matched_cores()) if suite.matched_cores() else ''}"
        f"; {_seed_count(suite)} seeds); "
        f"{len(runs) - len(pending)} already done, {len(pending)} to run -> {out_dir}"
    )
    if args.dry_run:
        for spec in pending:
            print(f"  {spec.run_id}  ({spec.config.env.id}, {spec.budget} steps)")
        return 0
    bar = _bar(len(pending)) if show_progress(args.no_progress) and pending else None

    def on_result(result: dict[str, Any]) -> None:
        outcome = f"return {result['final_return']:.3f}" if result["status"] == "ok" else f"FAILED: {result['error']}"
        line = f"{result['run_id']}: {outcome}"
        if bar is not None:
            bar.write(line)
            bar.update(1)
        else:
            print(line, flush=True)

    try:
        outcome = run_sweep(
            args.suite, out_dir, backend=args.backend, workers=args.workers, address=args.address, on_result=on_result
        )
    finally:
        if bar is not None:
            bar.close()
    print(
        f"{len(outcome.completed)} runs in {outcome.wall_seconds:.0f} s, {len(outcome.failed)} failed; "
        f"{outcome.skipped} skipped as already done"
    )
    readme = write_report(out_dir)
    print(f"report: {readme}")
    return 1 if outcome.failed else 0


def _tune_first(args: argparse.Namespace, suite: Any, out_dir: Path) -> None:
    """The tuned comparison's studies (one per task and core, an equal budget each) before the runs that use them."""
    pairs = tuning_pairs(suite)
    tuned = suite.tuned
    print(
        f"{suite.name}: tuning {len(pairs)} (task, core) pairs first, {tuned.trials} trials each at "
        f"{tuned.budget_fraction:g} of the task's budget, tuning seeds from {tuned.seed} -> {out_dir / 'tuning'}"
    )
    if args.dry_run:
        done = tuned_params(suite, out_dir)
        for task, core in pairs:
            print(f"  tune {task.name} x {core}: {'done' if (task.name, core) in done else 'to run'}")
        return
    with claim_run(out_dir, what="sweep's out directory", hint="choose another --out"):
        tune_pairs(
            suite,
            out_dir,
            where=args.suite,
            workers=args.workers or os.cpu_count() or 1,
            backend=args.backend,
            address=args.address,
        )


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="runs", unit="run")


def _seed_count(suite: SuiteConfig) -> str:
    """``5``, or ``5 to 10`` when some task has seeds of its own."""
    counts = sorted({len(task.seeds or suite.seeds) for task in suite.tasks})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
