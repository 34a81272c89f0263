"""Building and loading rlgru's C++ kernels (``csrc/``), one extension per cell (``fused_gru``, ``fused_lstm``).

Each kernel is one ``.cpp`` holding its cell's gate math; it registers its operators under its own ``torch.ops``
namespace and gets everything else from the shared headers ``csrc/*.h``. They are compiled on first use with
``torch.utils.cpp_extension.load`` and cached in torch's extension directory (``$TORCH_EXTENSIONS_DIR`` or
``~/.cache/torch_extensions``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

CSRC = Path(__file__).resolve().parent / "csrc"
#: sources any kernel may include (the cells' headers and cell sources); part of each extension's name
SHARED_SOURCES = tuple(sorted([*CSRC.glob("*.h"), *CSRC.glob("*.cpp")]))
CFLAGS = ["-O3", "-ffp-contract=fast", "-Wno-psabi"]


def extension_name(prefix: str, source: Path) -> str:
    """``prefix`` + torch version + a digest of the source, the headers it may include and the Python environment.

    torch's extension cache keys on the source file and flags but neither on torch's version, whose ABI the
    build uses, nor on included headers; both go into the name so any change gets a fresh build. The environment
    (``sys.prefix``) and the source folder go in too: two virtualenvs, or two checkouts run from one virtualenv,
    sharing one cache folder would otherwise see each other's build files (other paths) and rebuild the kernels at
    every switch.
    """
    digest = hashlib.sha1(sys.prefix.encode())
    digest.update(str(source.resolve().parent).encode())
    own_headers = sorted(source.resolve().parent.glob("*.h"))
    for path in dict.fromkeys((source, *own_headers, *SHARED_SOURCES)):
        digest.update(path.read_bytes())
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z]+', '_', torch.__version__)}_{digest.hexdigest()[:10]}"


#: the one switch that turns every fast path off (also ``fast_paths=False`` on a model): rlgru.fast.plan
NO_FAST_PATHS_ENV = "RLGRU_NO_FAST_PATHS"


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to something other than empty/0/false/no."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def build(name: str, source: Path, ops_namespace: str, check_op: str, verbose: bool) -> None:
    """Compile ``source`` (or reuse the cache) and register its operators; raises on failure."""
    if hasattr(getattr(torch.ops, ops_namespace), check_op):
        return
    from torch.utils.cpp_extension import load

    with exclusive_build(name):
        load(
            name=name,
            sources=[str(source)],
            extra_cflags=CFLAGS,
            extra_include_paths=[str(CSRC)],
            is_python_module=False,
            verbose=verbose,
        )
    getattr(getattr(torch.ops, ops_namespace), check_op)  # raises if registration did not happen


@contextlib.contextmanager
def exclusive_build(name: str) -> Iterator[None]:
    """Hold extension ``name``'s build directory while torch builds or loads it, and clear a baton a killed
    process left there.

    torch marks a build in progress with a ``lock`` file that it creates and deletes (a "baton") and waits, with no
    time limit, while the file exists. A process killed inside ``load`` (``kill -9`` of a run or a tuning worker just
    started) leaves the file behind, and every later process waits for ever. An ``flock`` on a file of our own, which
    the kernel releases when its holder dies, makes rlgru's loads take turns; whoever holds it knows that no live
    rlgru process is inside ``load``, so a baton it finds is stale and is removed.
    """
    from torch.utils import cpp_extension

    try:
        directory = Path(cpp_extension._get_build_directory(name, verbose=False))
    except Exception:  # noqa: BLE001 - a torch without this helper: load as before
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / "rlgru.flock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            (directory / "lock").unlink()
        yield
    finally:
        os.close(descriptor)  # releases the flock


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


class CompiledKernel:
    """One C++ kernel of ``csrc/``: built and loaded at most once per process, with an opt-out variable.

    ``what`` names it in the warning a failed build gives and ``consequence`` says what happens instead.
    """

    def __init__(
        self, prefix: str, source: Path, disable_env: str, what: str, consequence: str, check_op: str = "forward"
    ) -> None:
        self.prefix = prefix  # also the torch.ops namespace the kernel registers
        self.source = source
        self.check_op = check_op  # an operator whose presence proves the extension registered its ops
        self.disable_env = disable_env
        self.what = what
        self.consequence = consequence
        self.state: dict[str, Any] = {"done": False, "ok": False, "error": None}
        self._lock = threading.Lock()

    @property
    def ops(self) -> Any:
        return getattr(torch.ops, self.prefix)

    def disabled(self) -> bool:
        """Whether its own opt-out variable, or the one that turns every fast path off, is set."""
        return env_flag(self.disable_env) or env_flag(NO_FAST_PATHS_ENV)

    def why_unavailable(self) -> str:
        """Why ``available()`` is false, in a few words (for the fast-path plan); empty when it is not false."""
        for variable in (NO_FAST_PATHS_ENV, self.disable_env):
            if env_flag(variable):
                return f"{variable}=1"
        if self.load():
            return ""
        return f"the {self.what} could not be built ({self.state['error']})"

    def build_and_load(self, verbose: bool) -> None:
        """Compile the kernel (or reuse torch's on-disk cache) and register its operators; raises on failure."""
        build(extension_name(self.prefix, self.source), self.source, self.prefix, self.check_op, verbose)

    def load(self, verbose: bool = False) -> bool:
        """Compile (first time only) and load; returns whether it is usable. Failure warns once, and is remembered."""
        return load_once(
            self.state,
            self._lock,
            lambda v: self.build_and_load(v),  # looked up per call (tests)
            self.what,
            self.consequence,
            self.disable_env,
            verbose,
        )

    def available(self) -> bool:
        """Whether cores will use the kernel (compiling it on first call)."""
        return not self.disabled() and self.load()

    def info(self) -> dict[str, Any]:
        """What the kernel path is using: SIMD ISA and whether big GEMMs go to oneDNN (for reports)."""
        if not self.available():
            return {"available": False, "disabled": self.disabled(), "error": self.state["error"]}
        return {"available": True, "isa": self.ops.isa(), "onednn_gemm": self.ops.onednn_gemm()}

    def release_cached_memory(self) -> None:
        """Free the kernel's pooled buffers that no tensor uses any more."""
        if self.state["ok"]:
            self.ops.release_cached_memory()
