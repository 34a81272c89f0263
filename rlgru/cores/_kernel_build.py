"""Building and loading rlgru's C++ kernels (``csrc/``): shared by ``fused_gru`` and ``fused_lstm``.

Each kernel is one ``.cpp`` that registers its operators under its own ``torch.ops`` namespace; all of them
include ``csrc/kernel_common.h``. They are compiled on first use with ``torch.utils.cpp_extension.load`` and cached
in torch's extension directory (``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CSRC = Path(__file__).resolve().parent / "csrc"
#: headers every kernel includes; their contents are part of each extension's name (see extension_name)
HEADERS = (CSRC / "kernel_common.h",)
CFLAGS = ["-O3", "-ffp-contract=fast", "-Wno-psabi"]


def extension_name(prefix: str, source: Path) -> str:
    """``prefix`` + torch version + a digest of the source and the shared headers.

    torch's extension cache keys on the source file and flags but neither on torch's version, whose ABI the
    build uses, nor on included headers; both go into the name so any change gets a fresh build.
    """
    digest = hashlib.sha1()
    for path in (source, *HEADERS):
        digest.update(path.read_bytes())
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z]+', '_', torch.__version__)}_{digest.hexdigest()[:10]}"


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to something other than empty/0/false/no."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def build(name: str, source: Path, ops_namespace: str, check_op: str, verbose: bool) -> None:
    """Compile ``source`` (or reuse the cache) and register its operators; raises on failure."""
    if hasattr(getattr(torch.ops, ops_namespace), check_op):
        return
    from torch.utils.cpp_extension import load

    load(
        name=name,
        sources=[str(source)],
        extra_cflags=CFLAGS,
        extra_include_paths=[str(CSRC)],
        is_python_module=False,
        verbose=verbose,
    )
    getattr(getattr(torch.ops, ops_namespace), check_op)  # raises if registration did not happen


def load_once(
    state: dict[str, Any],
    lock: threading.Lock,
    build_fn: Callable[[bool], None],
    what: str,
    consequence: str,
    disable_env: str,
    verbose: bool = False,
) -> bool:
    """Run ``build_fn`` once per process (thread-safe); remember and return whether it worked.

    ``state`` holds ``done``, ``ok`` and ``error``. A failure warns once: ``what`` could not be built, so
    ``consequence``; set ``disable_env`` to skip the attempt.
    """
    if state["done"]:
        return state["ok"]
    with lock:
        if state["done"]:
            return state["ok"]
        ok, error = False, None
        try:
            build_fn(verbose)
            ok = True
        except Exception as exc:  # noqa: BLE001 - any build or load failure means "use the fallback"
            lines = str(exc).strip().splitlines()
            error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
            warnings.warn(
                f"rlgru: the {what} could not be built or loaded ({error}); {consequence}. "
                f"Set {disable_env}=1 to skip the attempt.",
                RuntimeWarning,
                stacklevel=3,
            )
        state.update(done=True, ok=ok, error=error)
        return ok
