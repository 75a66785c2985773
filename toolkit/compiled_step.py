"""The compiled training step (`train.engine`): a bag of table rows trained by numba loops.

A model whose first stage is a weighted bag of rows of a sparse table (`model.row_bag()`, a
`toolkit.RowBag`; `ngram`'s n-gram table) spends a torch training step mostly in the overhead
of small operations. With the compiled step the trainer flattens the precomputed ids and their
weights of every training text once, and in each step:

1. a compiled loop sums each text's rows times their weights (toolkit.bag_kernels.bag_sums);
2. torch does the rest as usual from those features: the head (`ngram`'s bias, or its Linear
   layers), the loss, backward, clipping and the dense optimiser;
3. a compiled loop sums the gradient of every row the batch touched from the features'
   gradient and applies LazyAdam's update to those rows (`LazyAdam.step_rows`).

The arithmetic is the torch step's, in another order: results equal it to float32 rounding
(tests/test_compiled_step.py), not to the bit, so the run records which engine trained it.
`auto` uses the compiled step when it applies (numba installed, `toolkit[fast]`; a model that
offers a row bag and precomputes; adam or adamw; one process on the CPU) and torch otherwise;
`compiled` insists and says in one line why it cannot.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from toolkit.errors import ToolkitError
from toolkit.precomputed import CHUNK, Precomputed
from toolkit.sparse_adam import LazyAdam
from toolkit.types import PAD, RowBag


def numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


class FlatBags:
    """Every text's ids and weights in flat arrays: text t's are `ids[offsets[t]:offsets[t+1]]`
    (PAD slots left out)."""

    def __init__(self, precomputed: Precomputed, bags: RowBag) -> None:
        texts = len(precomputed.tensors[0])
        ids_parts, weight_parts, counts = [], [], []
        with torch.no_grad():
            for start in range(0, texts, CHUNK):  # bounded memory: a chunk's padded slots at a time
                chunk = [tensor[start:start + CHUNK] for tensor in precomputed.tensors]
                ids, weights = bags.bags(*chunk)
                real = ids != PAD
                ids_parts.append(ids[real].numpy().astype(np.int32))
                weight_parts.append(weights[real].float().numpy())
                counts.append(real.sum(1).numpy())
        self.ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, np.int32)
        self.weights = np.concatenate(weight_parts) if weight_parts else np.zeros(0, np.float32)
        self.offsets = np.zeros(texts + 1, dtype=np.int64)
        np.cumsum(np.concatenate(counts) if counts else np.zeros(0, np.int64), out=self.offsets[1:])


class CompiledStep:
    """The table's part of a training step, compiled; `features(rows)` and `update(...)`."""

    def __init__(self, form: RowBag, precomputed: Precomputed, optimizer: LazyAdam) -> None:
        from toolkit import bag_kernels  # numba: compiles (or loads its cache) here

        self.kernels = bag_kernels
        self.form, self.optimizer = form, optimizer
        self.flat = FlatBags(precomputed, form)

    def features(self, rows: np.ndarray) -> torch.Tensor:
        """The (texts, width) features of the training texts `rows`, a leaf that gets a gradient."""
        texts = np.ascontiguousarray(rows, dtype=np.int64)
        flat = self.flat
        table = self.form.table.detach().numpy()
        sums = self.kernels.bag_sums(texts, flat.offsets, flat.ids, flat.weights, table)
        return torch.from_numpy(sums).requires_grad_()

    def update(self, rows: np.ndarray, features: torch.Tensor) -> None:
        """LazyAdam's step of the table, from the gradient backward left on `features`."""
        grads = features.grad.numpy() if features.grad is not None else np.zeros(features.shape, np.float32)
        flat = self.flat
        self.optimizer.step_rows(self.form.table, np.ascontiguousarray(rows, dtype=np.int64), flat.offsets,
                                 flat.ids, flat.weights, np.ascontiguousarray(grads))


def compiled_step(
    engine: str, model: nn.Module, precomputed: Precomputed | None,
    optimizers: Sequence[torch.optim.Optimizer], device: torch.device, world_size: int,
) -> CompiledStep | None:
    """The compiled step for training `model`, or None to train with torch: `auto` chooses it when
    it applies; `compiled` refuses in one line when it does not."""
    if engine == "torch":
        return None
    form = model.row_bag() if callable(getattr(model, "row_bag", None)) else None
    tables = [o for o in optimizers if isinstance(o, LazyAdam)]
    reason = None
    if form is None:
        reason = "the model offers no row bag (`row_bag()`: a first stage that sums table rows, as ngram's)"
    elif precomputed is None:
        reason = ("the training texts were not precomputed (the model offers no `precompute`, the split "
                  "is too large for memory, or training runs on several ranks)")
    elif world_size > 1:
        reason = "training runs on several ranks"
    elif device.type != "cpu":
        reason = f"training runs on {device.type}; the compiled step runs on the CPU"
    elif len(tables) != 1 or [id(p) for g in tables[0].param_groups for p in g["params"]] != [id(form.table)]:
        reason = "the table gets no Adam update (train.optimizer=sgd; the compiled step is Adam's)"
    elif not numba_installed():
        reason = "numba is not installed (pip install -e '.[fast]' in toolkit's folder)"
    if reason is None:
        return CompiledStep(form, precomputed, tables[0])
    if engine == "compiled":
        raise ToolkitError(f"train.engine=compiled cannot train this run: {reason}; use train.engine=auto.")
    return None
