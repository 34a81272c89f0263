"""Export a trained policy, memory included, to ONNX or TorchScript (VecNormalize and image handling baked in).

The run directory says which env the model plays and where its VecNormalize statistics are (``resolve_target``,
as ``rlgru eval`` finds them); the file is then checked against ``predict`` on episodes of that env.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stable_baselines3.common.vec_env import VecEnv

from rlgru.export import FORMATS, ExportError, compare_with_policy, export_policy, load_exported
from rlgru.export.errors import require
from rlgru.harness.agent import check_model_fits, load_agent
from rlgru.harness.env_factory import EVAL_SEED_OFFSET, load_normalization, make_env
from rlgru.harness.errors import HarnessError
from rlgru.harness.eval_target import EvalTarget, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", type=Path, metavar="RUN_DIR_OR_MODEL", help="a run directory or a model zip")
    parser.add_argument("--format", choices=list(FORMATS), default="onnx", help="file format (default: onnx)")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write (default: beside the model, model.onnx or model.pt); the metadata goes to OUT.json",
    )
    parser.add_argument("--value", action="store_true", help="also output the critic's value")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="sample actions from the policy's distribution (default: deterministic, its mode)",
    )
    parser.add_argument(
        "--env",
        dest="env_id",
        metavar="ID",
        help="env the model plays (required for a model zip with no config.yaml beside it)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument(
        "--check-steps",
        type=int,
        default=200,
        metavar="N",
        help="steps of the env on which the file is checked against predict (0: no check)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="also load pickled objects outside rlgru's allow-list from the model and statistics files (can run "
        "code from them: only for files you made or trust)",
    )


def run(args: argparse.Namespace) -> int:
    target = resolve_target(args.target, args.env_id)
    for skip in target.skipped:
        print(f"rlgru export: {skip}; using {target.model}", file=sys.stderr)
    if target.config is not None and target.config.algorithm.implementation != "rlgru":
        raise HarnessError("this is an sb3-contrib run; rlgru export reads rlgru policies", where=target.model)
    out = args.out or target.model.with_suffix(FORMATS[args.format])
    if args.format == "onnx" and args.check_steps > 0:
        try:  # before anything is written
            require("onnxruntime", "checking the ONNX file against predict (--check-steps 0 skips the check)")
        except ExportError as error:
            raise HarnessError(str(error)) from None
    seed = (target.config.seed if target.config else 0) + EVAL_SEED_OFFSET
    env = _env(target, seed, args.trust_pickle)
    try:
        model = load_agent(target.model, env=None, device="cpu", trust_pickle=args.trust_pickle)
        check_model_fits(model, env, target.env.id, target.model)
        env_info = {
            "id": target.env.id,
            "kwargs": dict(target.env.env_kwargs),
            "wrappers": [{"name": w.name, "kwargs": dict(w.kwargs)} for w in target.env.wrappers],
        }
        try:
            result = export_policy(
                model,
                out,
                args.format,
                env=env,
                value=args.value,
                sample=args.sample,
                opset=args.opset,
                env_info=env_info,
            )
            check = None
            if args.check_steps > 0:
                check = compare_with_policy(load_exported(result.path), model.policy, env, args.check_steps)
        except ExportError as error:
            raise HarnessError(str(error), where=target.model) from None
    finally:
        env.close()
    if check is not None and not check.ok:
        raise HarnessError(f"the exported file disagrees with predict: {check.describe()}", where=result.path)
    summary = {
        "path": str(result.path),
        "metadata": str(result.metadata_path),
        "format": args.format,
        "bytes": result.path.stat().st_size,
        "check": None if check is None else check.describe(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        state = ", ".join(str(n) for n in result.metadata["state"]["shape"])
        print(
            f"wrote {result.path} ({summary['bytes'] / 1024:.0f} KiB, {args.format}; state [{state}]) and "
            f"{result.metadata_path}"
        )
        print(f"checked against predict on {target.env.id}: {summary['check']}" if check else "not checked")
    return 0


def _env(target: EvalTarget, seed: int, trust_pickle: bool) -> VecEnv:
    """Two envs of the run's task (the check steps both, resetting each on its own) with its statistics."""
    env = make_env(target.env, seed=seed, n_envs=2, vec_env="dummy")
    if target.vecnormalize is not None:
        env = load_normalization(env, target.vecnormalize, training=False, trust_pickle=trust_pickle)
    return env
