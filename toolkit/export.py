"""`toolkit.export_run(RUN)`: a run's model as an ONNX graph, optionally quantized to int8.

The graph takes the encoder's output (`indices` (batch, steps) and `lengths` (batch,), int64)
and returns `log_probabilities` (batch, classes); `ngram` hashes its character and word n-grams
inside it. A model is traced with `torch.onnx.export` (the TorchScript exporter, `dynamo=False`);
a model whose forward a trace cannot keep (a loop over the characters, packed sequences) gives
an `onnx_form()`: a module with the same forward that exports (the built-in ones do). Every
export is checked before it is written: onnxruntime must give the model's top class and its
log-probabilities (within 1e-3) on probe texts of other lengths and batch sizes than the traced
ones, so a graph that kept the shape of one batch is refused rather than written.

`quantize="int8"` applies onnxruntime's dynamic quantization (int8 weights of the matrix
products, convolutions, LSTMs and table lookups, in the scratch models' Loop too); the weights it
leaves in float (GRU, RNN) are stored as int8 behind a DequantizeLinear. Both graphs are measured
on the run's test split, when the split can be recovered from what the run recorded (its data
unchanged).
"""

from __future__ import annotations

import io
import logging
import random
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.onnx_runtime import INPUTS, INSTALL_EXTRA, ONNX_FILE, OUTPUT, OnnxScorer, onnxruntime_module
from toolkit.safe_files import shown, write_atomic

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
#: The opset the graphs are written in (onnxruntime 1.17 and later run it).
OPSET = 17
#: Largest difference of a log-probability between onnxruntime and torch on the probe texts.
TOLERANCE = 1e-3


@dataclass(frozen=True)
class SplitAccuracy:
    """The test split's accuracy through the float and the int8 graph."""

    texts: int
    before: float
    after: float


@dataclass(frozen=True)
class ExportResult:
    """What `export_run` wrote: the graph's path and bytes; with `quantize`, the float graph's
    bytes and the test accuracy before and after (None with the reason in `no_accuracy` when
    the run's test split cannot be recovered)."""

    path: Path
    model: str
    bytes: int
    quantized: str | None = None
    float_bytes: int | None = None
    accuracy: SplitAccuracy | None = None
    no_accuracy: str | None = None


def export_run(
    run: str | Path, output: str | Path | None = None, format: str = "onnx", quantize: str | None = None,
    plugins: Sequence[str] = (),
) -> ExportResult:
    """Export the run folder `run`'s model to `output` (default RUN/model.onnx, written atomically)."""
    if format not in FORMATS:
        raise ToolkitError(f"unknown export format '{shown(format)}'; use one of {', '.join(FORMATS)}.")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ToolkitError(
            f"unknown quantization '{shown(quantize)}'; use one of {', '.join(QUANTIZATIONS)}."
        )
    from toolkit.predictor import NEEDED, load_run
    from toolkit.rundir import open_run

    folder, _ = open_run(run, NEEDED)  # a wrong path is said at once, before onnx and torch load
    target = Path(output) if output is not None else folder / ONNX_FILE
    if target.is_dir():
        raise ToolkitError(f"--output '{shown(target)}' is a folder; give a file name.")
    if not target.parent.is_dir():
        raise ToolkitError(f"the folder of --output '{shown(target)}' does not exist; create it first.")
    _need_onnx()
    predictor = load_run(folder, plugins)
    assert predictor.path is not None
    name = predictor.config["model"]["name"]
    if predictor.multi_label is not None:
        raise ToolkitError(
            f"run '{shown(folder)}' is multi-label, and toolkit exports single-label runs only (the graph "
            "ends in a softmax over the classes); predict with --runtime torch."
        )
    graph = onnx_graph(predictor.model, predictor.encoder, name)
    if quantize is None:
        write_atomic(target, graph)
        return ExportResult(target, name, len(graph))
    quantized = quantized_int8(graph)
    test = recovered_test_split(predictor.path, predictor.config, predictor.classes, plugins)
    accuracy = None
    if not isinstance(test, str):
        texts, targets = test
        accuracy = SplitAccuracy(
            len(texts), _accuracy(OnnxScorer(graph), predictor.encoder, texts, targets),
            _accuracy(OnnxScorer(quantized), predictor.encoder, texts, targets),
        )
    write_atomic(target, quantized)
    return ExportResult(target, name, len(quantized), quantize, len(graph), accuracy,
                        test if isinstance(test, str) else None)


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401 - torch.onnx.export writes through it
    except ImportError:
        raise ToolkitError(
            f"exporting to ONNX needs onnx, which is not installed: {INSTALL_EXTRA}."
        ) from None
    onnxruntime_module("exporting to ONNX")


def _wrapper(module: Any) -> Any:
    """`module`'s scores as log-probabilities, the graph's output."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = module

        def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(self.model(indices, lengths), dim=1)

    return Graph().eval()


def onnx_graph(model: Any, encoder: Any, name: str) -> bytes:
    """The ONNX graph of `model` (its `onnx_form()` when it has one) as bytes, checked against
    the model on probe texts; one line saying why when it cannot be exported."""
    import torch

    model = model.cpu().eval()
    form = model.onnx_form() if hasattr(model, "onnx_form") else model
    wrapped = _wrapper(form)
    example = encoder.encode(_probe_texts(encoder, 3, 8, seed=1))
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's and exporter's advice is for model authors
            traced = torch.jit.trace(wrapped, example, check_trace=False)
            torch.onnx.export(
                traced, example, buffer, dynamo=False, opset_version=OPSET, input_names=list(INPUTS),
                output_names=[OUTPUT], dynamic_axes={"indices": {0: "batch", 1: "steps"},
                                                     "lengths": {0: "batch"}, OUTPUT: {0: "batch"}},
            )
    except Exception as exc:  # noqa: BLE001 - the tracer and exporter raise many kinds
        raise ToolkitError(f"model '{shown(name)}' cannot be exported to ONNX: {_first_line(exc)}") from None
    graph = buffer.getvalue()
    _check_graph(graph, model, encoder, name)
    return graph


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return shown(line)[:240]


def _check_graph(graph: bytes, model: Any, encoder: Any, name: str) -> None:
    """Refuse a graph that answers otherwise than the model on texts it was not traced with."""
    import torch

    probe = encoder.encode(_probe_texts(encoder, 37, 40, seed=2))
    with torch.no_grad():
        expected = torch.log_softmax(model(*probe), dim=1).numpy()
    advice = "its forward depends on the batch it was traced with: give the model an onnx_form() that exports"
    try:
        found = OnnxScorer(graph).log_probabilities(probe[0].numpy(), probe[1].numpy())
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own, unexported classes
        raise ToolkitError(
            f"model '{shown(name)}' cannot be exported to ONNX: the traced graph fails on texts of other "
            f"lengths ({_first_line(exc)[:160]}); {advice}."
        ) from None
    gap = float(np.abs(found - expected).max()) if found.shape == expected.shape else float("inf")
    if gap > TOLERANCE or not (found.argmax(1) == expected.argmax(1)).all():
        raise ToolkitError(
            f"model '{shown(name)}' cannot be exported to ONNX: the traced graph answers otherwise than "
            f"the model on texts of other lengths (log-probabilities differ by up to {gap:.3g}); {advice}."
        )


def _probe_texts(encoder: Any, count: int, longest: int, seed: int) -> list[str]:
    """`count` texts of 1 to `longest` characters drawn from the encoder's alphabet (or ASCII
    letters), some with spaces, so word n-grams are probed too."""
    symbols = [s for s in getattr(encoder, "symbols", ()) or () if len(s) == 1 and s.isprintable()]
    alphabet = symbols or list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ '")
    draw = random.Random(seed)
    lengths = [1, longest, *(draw.randint(1, longest) for _ in range(count - 2))]
    return ["".join(draw.choice(alphabet) for _ in range(n)) for n in lengths]


def quantized_int8(graph: bytes) -> bytes:
    """`graph` with its weights quantized to int8 by onnxruntime's dynamic quantization."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="toolkit-export-") as scratch:
        source, target = Path(scratch, "float.onnx"), Path(scratch, "int8.onnx")
        source.write_bytes(graph)
        quiet = logging.getLogger()  # the quantizer advises "pre-processing" on the root logger
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # EnableSubgraph: the scratch models' matrix products sit inside the graph's Loop.
                quantize_dynamic(source, target, weight_type=QuantType.QInt8,
                                 extra_options={"EnableSubgraph": True})
        finally:
            quiet.setLevel(level)
        return _int8_weights_left(target.read_bytes())


#: Float weights with fewer values than this stay float (biases, small layers): not worth a node.
SMALLEST_INT8_WEIGHT = 1024


def _int8_weights_left(graph: bytes) -> bytes:
    """The weights dynamic quantization leaves in float (onnxruntime has no int8 GRU or RNN
    kernel, nor an int8 Gemm) stored as int8, one scale per row, behind a DequantizeLinear: the
    file shrinks as for the others, and onnxruntime computes with the dequantized weights."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(graph)
    kept, nodes = [], []
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or len(tensor.dims) < 2:
            kept.append(tensor)
            continue
        weights = numpy_helper.to_array(tensor)
        if weights.size < SMALLEST_INT8_WEIGHT:
            kept.append(tensor)
            continue
        axis = weights.ndim - 2  # a row per output unit (GRU/RNN gates, Gemm's transposed B)
        reduced = tuple(d for d in range(weights.ndim) if d != axis)
        largest = np.abs(weights).max(axis=reduced)
        scale = np.where(largest > 0, largest / 127, 1.0).astype(np.float32)
        shape = [1] * weights.ndim
        shape[axis] = -1
        values = np.clip(np.rint(weights / scale.reshape(shape)), -127, 127).astype(np.int8)
        name = tensor.name
        stored, scales = f"{name}_int8", f"{name}_scale"
        kept += [numpy_helper.from_array(values, stored), numpy_helper.from_array(scale, scales)]
        nodes.append(helper.make_node(  # no zero point: symmetric, 0
            "DequantizeLinear", [stored, scales], [name], axis=axis, name=f"{name}_dequantize"
        ))
    if not nodes:
        return graph
    del model.graph.value_info[:]  # the quantizer's inferred shapes: onnxruntime infers them again
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    old = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend([*nodes, *old])
    return model.SerializeToString()


def recovered_test_split(
    folder: Path, config: dict[str, Any], classes: Sequence[str], plugins: Sequence[str] = ()
) -> tuple[list[str], np.ndarray] | str:
    """The run's test texts and their class indices, split again from what the run recorded
    (data, split parameters, seed); or the reason they cannot be recovered, as one sentence."""
    from toolkit.api import load_split, plan_run
    from toolkit.rerunning import changed_files, run_file_of

    try:
        plan = plan_run(config=run_file_of(folder, config), plugins=plugins)
        split, _ = load_split(plan)
    except ToolkitError as exc:
        return f"the run's test split cannot be recovered ({shown(exc)})"
    changed = changed_files(config.get("provenance") or {}, split.train.provenance)
    if changed:
        return f"the run's test split cannot be recovered: its data changed ({changed[0]})"
    recorded = (config.get("split") or {}).get("sizes")
    if recorded is not None and recorded != split.sizes():
        return "the run's test split cannot be recovered: splitting the data again gives other sizes"
    index = {label: i for i, label in enumerate(classes)}
    labels = [split.test.classes[t] for t in split.test.targets]
    if any(label not in index for label in labels):
        return "the run's test split cannot be recovered: it holds classes the run does not know"
    return list(split.test.texts), np.array([index[label] for label in labels])


def _accuracy(scorer: OnnxScorer, encoder: Any, texts: Sequence[str], targets: np.ndarray) -> float:
    return float((scorer.predict_proba(encoder, texts).argmax(axis=1) == targets).mean())
