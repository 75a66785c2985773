"""Class probabilities through onnxruntime, from a run's ONNX export (`toolkit export`).

The graph takes what the run's encoder produces (character indices and lengths) and returns
log-probabilities; `OnnxScorer.predict_proba` batches texts as `toolkit.inference.predict_proba`
does and returns the same (texts, classes) matrix, so a `Predictor` can use either.

ONNX is a safe format: the file is a graph of standard operators and their weights, read from
bytes (so it cannot point at other files on disk), and onnxruntime runs no code from it; no
custom-operator library is ever registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.rundir import CONFIG, read_json
from toolkit.safe_files import read_bounded, shown

#: The export's file name in a run folder.
ONNX_FILE = "model.onnx"
#: The graph's inputs and output, as `toolkit.export` names them.
INPUTS, OUTPUT = ("indices", "lengths"), "log_probabilities"
#: How to get onnx and onnxruntime.
INSTALL_EXTRA = "pip install -e '.[onnx]' in toolkit's folder"
#: Protobuf's limit: a larger graph would need external data, which an export never uses.
MAX_ONNX_BYTES = 2 * 2**30


def onnxruntime_module(purpose: str) -> Any:
    """onnxruntime, or one line saying which extra installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise ToolkitError(f"{purpose} needs onnxruntime, which is not installed: {INSTALL_EXTRA}.") from None
    return onnxruntime


class OnnxScorer:
    """An ONNX graph of a run's model in an onnxruntime session (`threads` intra-op threads)."""

    def __init__(self, graph: bytes, threads: int = 1, name: str = ONNX_FILE) -> None:
        ort = onnxruntime_module("--runtime onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # its errors reach the user as one ToolkitError line, not a log
        try:
            self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own, unexported classes
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ToolkitError(f"'{shown(name)}' is not a valid ONNX graph ({shown(first)[:200]}).") from None
        inputs = tuple(i.name for i in self.session.get_inputs())
        outputs = tuple(o.name for o in self.session.get_outputs())
        # A model that never reads the lengths (it finds the padding in the indices) exports without them.
        if not inputs or not set(inputs) <= set(INPUTS) or outputs != (OUTPUT,):
            raise ToolkitError(
                f"'{shown(name)}' is not a toolkit export (inputs {shown(', '.join(inputs))}, outputs "
                f"{shown(', '.join(outputs))}); export the run again with `toolkit export`."
            )
        self.name = name
        self.inputs = inputs

    def log_probabilities(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The graph's (batch, classes) log-probabilities for one encoded batch."""
        given = {"indices": indices, "lengths": lengths}
        return self.session.run([OUTPUT], {name: given[name] for name in self.inputs})[0]

    def predict_proba(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (len(texts), classes) in float64, rows in the order of `texts`;
        batched by length as `toolkit.inference.predict_proba` batches them."""
        from toolkit.inference import PREDICT_BATCH

        indices, lengths = (t.numpy() for t in encoder.encode(list(texts)))
        order = np.argsort(lengths, kind="stable")
        rows = []
        for start in range(0, len(order), PREDICT_BATCH):
            batch = order[start:start + PREDICT_BATCH]
            width = int(lengths[batch].max())
            rows.append(self.log_probabilities(
                np.ascontiguousarray(indices[batch, :width], dtype=np.int64), lengths[batch].astype(np.int64)
            ))
        if not rows:
            return np.zeros((0, 0))
        from toolkit.numpy_runtime import softmax

        # Renormalised in float64, so each row sums to 1 exactly, as the torch runtime's does.
        probabilities = softmax(np.concatenate(rows).astype(np.float64))
        result = np.empty_like(probabilities)
        result[order] = probabilities
        return result


def read_export(folder: Path) -> bytes:
    """The run folder's ONNX export, read (bounded); one line when the run has none or when
    onnxruntime, which will run it, is missing."""
    path = folder / ONNX_FILE
    config = read_json(folder / CONFIG) if not path.is_file() and (folder / CONFIG).is_file() else None
    if isinstance(config, dict) and config.get("multi_label") is not None:
        raise ToolkitError(
            f"run '{shown(folder)}' is multi-label, and the ONNX runtime runs single-label runs only (an "
            "export ends in a softmax over the classes); predict with --runtime auto, numpy or torch."
        )
    if not path.is_file():
        raise ToolkitError(
            f"run '{shown(folder)}' has no ONNX export ({ONNX_FILE}); run `toolkit export --run "
            f"{shown(folder)}` first."
        )
    onnxruntime_module("--runtime onnx")  # said before reading a large file
    return read_bounded(path, MAX_ONNX_BYTES)


def open_scorer(folder: Path, threads: int = 1) -> OnnxScorer:
    """The run folder's ONNX export in a session; one line when the run has none."""
    return OnnxScorer(read_export(folder), threads, str(folder / ONNX_FILE))
