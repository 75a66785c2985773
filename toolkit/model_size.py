"""How big a run's model is: the numbers in its weights file, and the file's bytes on disk.

Read from the safetensors header alone (names, shapes), so a report does not load the weights
or import torch. The count is every saved tensor's elements: the model's parameters and its
saved buffers (the built-in models save no buffers but their parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.rundir import WEIGHTS
from toolkit.safe_files import shown


@dataclass(frozen=True)
class ModelSize:
    parameters: int
    weights_bytes: int


def model_size(folder: str | Path) -> ModelSize:
    """The size of the model saved in the run folder `folder`."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / WEIGHTS
    try:
        with safe_open(path, "numpy") as weights:
            count = sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())  # noqa: SIM118
        size = path.stat().st_size
    except (SafetensorError, OSError, ValueError) as exc:
        raise ToolkitError(f"'{shown(path)}' is not a valid safetensors file ({shown(exc)}).") from None
    return ModelSize(count, size)


def human_bytes(size: int) -> str:
    """`size` in B, kB, MB or GB (powers of 1000, as file managers show them)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale * 0.9995:  # 999,999 bytes is 1.00 MB, not 1000 kB
            value = size / scale
            return f"{value:.{2 if value < 10 else 1 if value < 100 else 0}f} {unit}"
    return f"{size} B"


def size_line(folder: str | Path) -> str:
    """"N parameters, weights X (N bytes)", or why the weights file cannot be read."""
    try:
        size = model_size(folder)
    except ToolkitError as exc:
        return f"size unknown: {exc}"
    return (f"{size.parameters:,} parameters, weights file {human_bytes(size.weights_bytes)} "
            f"({size.weights_bytes:,} bytes)")
