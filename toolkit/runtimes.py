"""Where a predictor's probabilities come from (`load_run(..., runtime=...)`, `--runtime`)."""

#: The torch model; the model's forward pass on numpy arrays (for a model that has one,
#: `ModelSpec.array_factory`); either (numpy when there is one); or the ONNX export in onnxruntime.
RUNTIMES = ("torch", "numpy", "auto", "onnx")
#: The runtime unless one is asked for: the fastest there is for the model without an export
#: (the same classes as torch; probabilities equal to about 1e-16 for a linear ngram, within
#: float32 rounding, about 1e-7 to 1e-6, for the recurrent models, cnn and an ensemble of these).
DEFAULT_RUNTIME = "auto"


def check_runtime(runtime: str) -> None:
    """Refuse, in one line, a runtime that is not one of `RUNTIMES`."""
    if runtime not in RUNTIMES:
        from toolkit.errors import ToolkitError
        from toolkit.safe_files import shown

        raise ToolkitError(f"unknown runtime '{shown(runtime)}'; use one of {', '.join(RUNTIMES)}.")
