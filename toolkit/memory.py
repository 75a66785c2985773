"""Whether a model can train in the memory there is, estimated without allocating it.

The model is built on torch's "meta" device (shapes, no memory). Training holds its weights,
their gradients and the optimiser's state (Adam: two moments; SGD: momentum), so the parameter
bytes count `COPIES` times; the activations a batch keeps for the backward pass are estimated
from `train.batch_size` x `train.max_length` x the features each layer produces per character
(every weight matrix's output width; an embedding's width), in 4-byte floats.
A model that cannot fit is refused before any data is read, naming the numbers; an allocation
that fails all the same during training is one line too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError
from toolkit.limits import available_memory

if TYPE_CHECKING:
    from torch import nn

    from toolkit.types import ModelSpec

#: Copies of every parameter while training: weights, gradients and the optimiser's state.
COPIES = {"adam": 4, "adamw": 4, "sgd": 3}


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int  # how many
    parameter_bytes: int  # one copy
    copies: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.parameter_bytes * self.copies + self.activation_bytes


def estimate(model: nn.Module, train: Mapping[str, Any]) -> MemoryEstimate:
    """What training `model` (built on any device, "meta" included) with the trainer
    parameters `train` takes in memory, roughly."""
    from torch import nn

    parameters = sum(p.numel() for p in model.parameters())
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    features = 0
    for module in model.modules():
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            features += module.embedding_dim
            continue
        features += sum(p.shape[0] for p in module.parameters(recurse=False) if p.dim() >= 2)
    activations = train["batch_size"] * train["max_length"] * features * 4
    return MemoryEstimate(parameters, parameter_bytes, COPIES.get(train["optimizer"], 4), activations)


def free_memory(device: Any) -> int | None:
    """The bytes training on `device` may still take: on a GPU what CUDA reports free; on the
    CPU the machine's available memory, or less under an address-space limit (ulimit -v)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    found = [size for size in (available_memory(), _address_space_left()) if size is not None]
    return min(found) if found else None


#: The in-place tensor methods nn.init's initialisers fill weights with.
_INITIALISERS = frozenset({"normal_", "uniform_", "zero_", "fill_", "trunc_normal_", "bernoulli_"})


@contextlib.contextmanager
def shapes_only(device: str = "meta") -> Iterator[None]:
    """Modules built inside are made on `device` ("meta": shapes, no memory) with their weights'
    initialisers skipped: on "meta" those run torch's Python reference code, whose first use
    imports sympy and torch._dynamo (measured: about a second; the values would be unused)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class SkipInitialisers(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            kwargs = kwargs or {}
            target = args[0] if args else kwargs.get("tensor")  # nn.init's functions pass it by name
            if getattr(func, "__name__", "") in _INITIALISERS and getattr(target, "is_meta", False):
                return target
            return func(*args, **kwargs)

    with torch.device(device), SkipInitialisers():
        yield


def check_fits(spec: ModelSpec, params: Mapping[str, Mapping[str, Any]], encoder: Any, num_classes: int,
               device: Any) -> None:
    """Refuse, in one line naming the numbers, the model `spec` with a run's `params` (by group)
    when training it on `device` cannot fit in the memory left there. `encoder` may be unfitted
    (before any data is read): a model that cannot be built from it is checked later, with the
    fitted one."""
    try:
        with shapes_only():
            model = spec.build(vocab_size=encoder.vocab_size, num_classes=num_classes,
                               params=params["model"], encoder=encoder)
    except Exception:  # noqa: BLE001 - an unfitted encoder the model cannot use yet
        return
    needed, free = estimate(model, params["train"]), free_memory(device)
    if free is None or needed.total <= free:
        return
    train = params["train"]
    raise ToolkitError(
        f"model '{spec.name}' with these parameters needs about {gib(needed.total)} to train: "
        f"{needed.parameters:,} parameters ({gib(needed.parameter_bytes)}) x{needed.copies} for weights, "
        f"gradients and {train['optimizer']}'s state, plus {gib(needed.activation_bytes)} of activations "
        f"for batch_size {train['batch_size']} x max_length {train['max_length']}; only {gib(free)} of "
        f"memory is available on {device.type}. Make the model smaller or lower train.batch_size."
    )


@contextlib.contextmanager
def allocation_failures(what: str) -> Iterator[None]:
    """An allocation that fails inside the block (torch's CPU allocator, CUDA, Python) as one
    line naming `what` was being done."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not failed_allocation(exc):
            raise
        raise _out_of_memory(what, exc) from None


def failed_allocation(exc: BaseException) -> bool:
    """Whether `exc` is an allocation that failed (Python's, torch's CPU allocator, CUDA's)."""
    import torch

    text = str(exc)
    return isinstance(exc, MemoryError | torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text))


def gib(size: float) -> str:
    """Two decimals: an estimate just over the memory there is must not read the same."""
    return f"{size / 2**30:.2f} GiB"


def _out_of_memory(what: str, exc: BaseException) -> ToolkitError:
    tried = re.search(r"tried to allocate (\d+) bytes", str(exc))
    size = f" (an allocation of {gib(int(tried.group(1)))} failed)" if tried else ""
    return ToolkitError(
        f"ran out of memory while {what}{size}; lower train.batch_size or train.max_length, make the "
        "model smaller, or free memory."
    )


def _address_space_left() -> int | None:
    """What `ulimit -v` leaves this process, when one is set (Linux)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as file:
            size = next(int(line.split()[1]) * 1024 for line in file if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    return max(soft - size, 0)
