"""Class probabilities without torch: a model's forward pass on numpy arrays (`predict --runtime
numpy`, and `auto` for a model that has one).

A model plugin offers it through `ModelSpec.array_factory` (an `ArrayModel`: its weights' shapes,
`load` and `logits`); the encoder's `encode_arrays` gives the indices as numpy arrays (an encoder
without it encodes through torch). `ArrayScorer.predict_proba` returns the same (texts, classes)
matrix as `toolkit.inference.predict_proba`, so a `Predictor` ranks, calibrates and abstains
with either. The logits are the torch model's to the bit when the plugin computes them as torch
does (the linear `ngram` does); the softmax here may differ from torch's in the last bit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np

from toolkit.types import ArrayModel


class ArrayScorer:
    """A model's `ArrayModel` giving a `Predictor` its probabilities: a softmax of the logits, or
    each class's sigmoid for a multi-label run. numpy's BLAS (its matrix products) runs on
    `threads` threads while it does, as torch's do in the torch runtime."""

    def __init__(self, model: ArrayModel, multi_label: bool = False, threads: int = 1) -> None:
        self.model = model
        self.multi_label = multi_label
        self.threads = threads

    def predict_proba(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (len(texts), classes) in float64, rows in the order of `texts`."""
        indices, lengths = encode_arrays(encoder, texts)
        with blas_threads(self.threads):
            logits = np.asarray(self.model.logits(indices, lengths), dtype=np.float64)
        return sigmoid(logits) if self.multi_label else softmax(logits)


@cache
def _blas(with_scipy: bool) -> Any:
    """The BLAS libraries loaded (threadpoolctl, which scikit-learn depends on): numpy's, and
    scipy's when `with_scipy` (threadpoolctl sees the libraries loaded when it is asked)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """numpy's BLAS on `count` threads inside the block, put back after it: left to itself it
    starts one per CPU for a large product, which on a busy machine measured 5x slower. Also
    scipy's, a library of its own, once a model has imported `scipy.linalg.blas` (the recurrent
    models' products, `torch_rnn_numpy.py`)."""
    with _blas("scipy.linalg.blas" in sys.modules).limit(limits=count):
        yield


def encode_arrays(encoder: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(indices, lengths) of `texts` as int64 numpy arrays: the encoder's `encode_arrays`, or its
    `encode` (through torch) for an encoder without one."""
    encode = getattr(encoder, "encode_arrays", None)
    if encode is not None:
        indices, lengths = encode(list(texts))
    else:
        indices, lengths = (tensor.numpy() for tensor in encoder.encode(list(texts)))
    return np.asarray(indices, dtype=np.int64), np.asarray(lengths, dtype=np.int64)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Each row's softmax in float64 (each row sums to 1, as the torch runtime's does)."""
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Each logit's own probability (a multi-label run's classes)."""
    with np.errstate(over="ignore"):  # exp(1000) is inf, and 1 / (1 + inf) the 0 it should be
        return 1 / (1 + np.exp(-logits))
