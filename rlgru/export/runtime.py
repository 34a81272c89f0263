"""Run an exported file from Python with numpy in and out: the same call for ONNX (onnxruntime) and TorchScript.

What ``rlgru export`` checks its output with and what the latency benchmark times. It is not needed to deploy: a
runtime needs only the file (see ``examples/onnx_policy.py`` for onnxruntime without rlgru or torch).
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rlgru.export.errors import require
from rlgru.export.graph import DEPRECATION
from rlgru.export.metadata import EXTRA_FILE, METADATA_KEY

Observation = np.ndarray | dict[str, np.ndarray]


class ExportedRunner:
    """``runner(obs, state, episode_start) -> (action, next_state, value or None)`` on numpy arrays.

    ``obs`` is a batch as the env's vec env gives it (a dict of arrays for Dict spaces); it is cast to the dtypes
    the file declares, so a float64 array is fine.
    """

    def __init__(self, path: str | Path, threads: int | None = 1) -> None:
        self.path = Path(path)
        self.format = "torchscript" if zipfile.is_zipfile(self.path) else "onnx"
        if self.format == "onnx":
            ort = require("onnxruntime", "running ONNX files")
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = options.inter_op_num_threads = threads
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self.metadata = json.loads(self._session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        else:
            import torch

            extra = {EXTRA_FILE: ""}
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=DEPRECATION)
                self._module = torch.jit.load(str(self.path), map_location="cpu", _extra_files=extra)
            self.metadata = json.loads(extra[EXTRA_FILE])
        self.inputs: list[dict[str, Any]] = self.metadata["inputs"]
        self.output_names = [output["name"] for output in self.metadata["outputs"]]

    def initial_state(self, batch_size: int) -> np.ndarray:
        n_layers, _, size = self.metadata["state"]["shape"]
        return np.zeros((n_layers, batch_size, size), dtype=np.float32)

    def __call__(
        self, obs: Observation, state: np.ndarray, episode_start: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        feed = self.feed(obs, state, episode_start)
        if self.format == "onnx":
            outputs = self._session.run(self.output_names, feed)
        else:
            import torch

            with torch.no_grad():
                outputs = [tensor.numpy() for tensor in self._module(*(torch.from_numpy(v) for v in feed.values()))]
        return outputs[0], outputs[1], outputs[2] if len(outputs) > 2 else None

    def feed(self, obs: Observation, state: np.ndarray, episode_start: np.ndarray) -> dict[str, np.ndarray]:
        """The named inputs, in the graph's order and dtypes."""
        values = dict(obs) if isinstance(obs, dict) else {"": obs}
        values = {("obs" if not key else f"obs.{key}"): value for key, value in values.items()}
        values.update(state=state, episode_start=episode_start)
        return {item["name"]: np.ascontiguousarray(values[item["name"]], dtype=item["dtype"]) for item in self.inputs}


def load_exported(path: str | Path, threads: int | None = 1) -> ExportedRunner:
    """An exported file, ready to call; ``threads=None`` lets onnxruntime choose (TorchScript uses torch's)."""
    return ExportedRunner(path, threads)


__all__ = ["ExportedRunner", "load_exported"]
