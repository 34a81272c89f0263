"""Write an ``ExportedPolicy`` as an ONNX file with a free batch axis and the metadata inside.

The TorchScript-based exporter (``dynamo=False``) is used: it needs only the ``onnx`` package (for the metadata and
the model check), handles every core's step, and exports the traced graph the TorchScript writer checks, so both
formats run the same operations. The dynamo exporter would add ``onnxscript`` and gives nothing a one-step policy
needs.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from rlgru.export.errors import ExportError, require
from rlgru.export.graph import ExportedPolicy, trace
from rlgru.export.metadata import METADATA_KEY, dumps

#: opset 17: LayerNorm and every op the cores need, and read by onnxruntime >= 1.13
DEFAULT_OPSET = 17


def write_onnx(module: ExportedPolicy, path: Path, metadata: dict, opset: int = DEFAULT_OPSET) -> None:
    onnx = require("onnx", "writing ONNX files")
    inputs = module.example_inputs()
    traced = trace(module, inputs)
    batch_axes = {name: {0: "batch"} for name in module.input_names + module.output_names}
    batch_axes["state"] = batch_axes["next_state"] = {1: "batch"}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based exporter announces its deprecation on every call, notes that a traced module has no
        # Python signature (input_names names the inputs), and warns that an nn.GRU/nn.LSTM (a user's core) may fix
        # the batch size unless its initial state is an input, which here it always is
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="no signature found")
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        try:
            torch.onnx.export(
                traced,
                inputs,
                buffer,
                dynamo=False,
                input_names=module.input_names,
                output_names=module.output_names,
                dynamic_axes=batch_axes,
                opset_version=opset,
                do_constant_folding=True,
            )
        except Exception as error:  # noqa: BLE001 - an op the exporter cannot write is the user's answer
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"torch.onnx.export failed at opset {opset} ({type(error).__name__}: {first})") from None
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, dumps(metadata)
    model.producer_name = "rlgru"
    model.producer_version = str(metadata.get("rlgru_version", ""))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


__all__ = ["DEFAULT_OPSET", "write_onnx"]
