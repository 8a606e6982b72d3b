"""The wheel-provided CUDA libraries are found and loaded when present (no GPU needed: the test
builds a fake ``nvidia.cublas`` package whose lib/ holds a real shared library)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from speechiq.asr import cuda


@pytest.mark.skipif(sys.platform != "linux", reason="ELF shared libraries")
def test_preload_finds_wheel_libraries(tmp_path, monkeypatch):
    import ctypes.util

    libm = ctypes.util.find_library("m")
    src = next((p for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                            "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64")
                for p in [Path(d) / (libm or "libm.so.6")] if p.exists()), None)
    if src is None:
        pytest.skip("no libm to stand in for a CUDA library")
    lib = tmp_path / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    (tmp_path / "nvidia" / "cublas" / "__init__.py").write_text("")
    shutil.copy(src, lib / "libcublas.so.12")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cuda, "_loaded", [])
    for mod in [m for m in sys.modules if m == "nvidia" or m.startswith("nvidia.")]:
        monkeypatch.delitem(sys.modules, mod)
    loaded = cuda.preload_cuda_libraries()
    assert loaded == [str(lib / "libcublas.so.12")]
    assert cuda.preload_cuda_libraries() == loaded  # once


def test_preload_without_wheels_is_a_no_op(monkeypatch):
    monkeypatch.setattr(cuda, "_loaded", [])
    monkeypatch.setattr(cuda, "_lib_dir", lambda package: None)
    assert cuda.preload_cuda_libraries() == []
