"""``export_policy``: a trained recurrent policy to one self-contained ONNX or TorchScript file plus its metadata.

This is the library entry point (``rlgru export`` is a thin command over it): it checks what can be exported,
assembles the ``ExportedPolicy`` graph from the model and the vec env it plays, and hands it to a writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.vec_env import VecEnv

from rlgru.algorithm.policies import RecurrentActorCriticPolicy
from rlgru.export.errors import ExportError
from rlgru.export.graph import ExportedPolicy
from rlgru.export.metadata import build_metadata, dumps
from rlgru.export.observations import ObservationPipeline
from rlgru.export.onnx_writer import DEFAULT_OPSET, write_onnx
from rlgru.export.torchscript_writer import write_torchscript

#: format -> file suffix
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    metadata_path: Path
    metadata: dict[str, Any]


def export_policy(
    model: Any,
    path: str | Path,
    format: str = "onnx",
    *,
    env: VecEnv | None = None,
    value: bool = False,
    sample: bool = False,
    opset: int = DEFAULT_OPSET,
    env_info: dict[str, Any] | None = None,
) -> ExportResult:
    """Write ``model`` (an rlgru ``RecurrentPPO`` or its policy) to ``path`` and ``<path>.json``.

    :param env: the vec env the model plays, whose ``VecNormalize`` statistics and image transposition are baked in
        so the file takes the observations of the env beneath them; defaults to the model's own env, if it has one.
        Without any env the file takes what the policy reads (normalised, channel-first observations).
    :param value: also output the critic's value.
    :param sample: sample actions from the policy's distribution instead of taking its mode.
    :param env_info: recorded in the metadata as ``env`` (e.g. ``{"id": ..., "kwargs": ...}``) for the runtime.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}: choose {' or '.join(FORMATS)}")
    policy = getattr(model, "policy", model)
    if not isinstance(policy, RecurrentActorCriticPolicy):
        raise ExportError(
            f"export takes rlgru's recurrent policies; this is a {type(policy).__module__}."
            f"{type(policy).__name__} (sb3-contrib models: load them with rlgru.RecurrentPPO first)"
        )
    if policy.device.type != "cpu":
        raise ExportError(f"the policy is on {policy.device}; load it with device='cpu' to export it")
    if env is None and hasattr(model, "get_env"):
        env = model.get_env()
    observations = ObservationPipeline(policy.observation_space, env, policy.normalize_images)
    exported = ExportedPolicy(policy, observations, sample=sample, value=value)
    metadata = build_metadata(
        exported,
        policy,
        format=format,
        hidden_reset=getattr(model, "hidden_reset", "episode"),
        timesteps=getattr(model, "num_timesteps", None),
        env_info=env_info,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if format == "onnx":
            write_onnx(exported, path, metadata, opset)
        else:
            write_torchscript(exported, path, metadata)
    metadata_path = path.with_name(path.name + ".json")
    metadata_path.write_text(dumps(metadata) + "\n")
    return ExportResult(path, metadata_path, metadata)


__all__ = ["FORMATS", "ExportResult", "export_policy"]
