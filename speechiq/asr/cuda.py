"""Make the CUDA libraries CTranslate2 needs loadable from pip wheels.

CTranslate2's Linux wheels link ``libcublas.so.12`` (and cuDNN 9 for Whisper's convolutions) but
look for them only on the system library path. ``pip install 'speechiq[gpu]'`` brings them as the
``nvidia-cublas-cu12`` / ``nvidia-cudnn-cu12`` wheels (under ``site-packages/nvidia/*/lib``); this
module loads them once with ``RTLD_GLOBAL`` before the model is created, so the dynamic loader
finds them already in the process. System-wide CUDA installs need nothing and are left alone.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
from importlib import util

log = logging.getLogger(__name__)
# load order matters: cuBLASLt before cuBLAS, cuDNN's sub-libraries after its front library
LIBS = (("nvidia.cublas", "libcublasLt.so.12"), ("nvidia.cublas", "libcublas.so.12"),
        ("nvidia.cudnn", "libcudnn.so.9"), ("nvidia.cudnn", "libcudnn_*.so.9"))
_loaded: list[str] = []


def _lib_dir(package: str) -> str | None:
    try:
        spec = util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        d = os.path.join(root, "lib")
        if os.path.isdir(d):
            return d
    return None


def preload_cuda_libraries() -> list[str]:
    """Load the wheel-provided CUDA libraries that exist; returns the paths loaded (idempotent).
    Missing wheels are not an error: the system's libraries may serve, and a CUDA model load that
    still fails reports its own message."""
    if _loaded or os.name != "posix":
        return list(_loaded)
    for package, pattern in LIBS:
        d = _lib_dir(package)
        if d is None:
            continue
        for path in sorted(glob.glob(os.path.join(d, pattern))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                _loaded.append(path)
            except OSError as exc:
                log.warning("could not load %s: %s", path, exc)
    if _loaded:
        log.info("loaded %d CUDA libraries from pip wheels", len(_loaded))
    return list(_loaded)
