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
import math
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

    def sums(self, rows: np.ndarray) -> np.ndarray:
        """(texts, width) float32: each of the training texts `rows`' weighted sum of its rows."""
        flat = self.flat
        return self.kernels.bag_sums(np.ascontiguousarray(rows, dtype=np.int64), flat.offsets, flat.ids,
                                     flat.weights, self.form.table.detach().numpy())

    def step_table(self, rows: np.ndarray, grads: np.ndarray) -> None:
        """LazyAdam's step of the table, given the gradient of each text's sum (`sums(rows)`)."""
        flat = self.flat
        self.optimizer.step_rows(self.form.table, np.ascontiguousarray(rows, dtype=np.int64), flat.offsets,
                                 flat.ids, flat.weights, np.ascontiguousarray(grads, dtype=np.float32))

    def features(self, rows: np.ndarray) -> torch.Tensor:
        """The (texts, width) features of the training texts `rows`, a leaf that gets a gradient."""
        return torch.from_numpy(self.sums(rows)).requires_grad_()

    def update(self, rows: np.ndarray, features: torch.Tensor) -> None:
        """LazyAdam's step of the table, from the gradient backward left on `features`."""
        grads = features.grad.numpy() if features.grad is not None else np.zeros(features.shape, np.float32)
        self.step_table(rows, grads)


class LinearStep:
    """The whole step of a linear bag (`RowBag.bias`: the head adds a bias) on single-label data,
    compiled: the features plus the bias (plus `logit_shift`), the cross-entropy and its gradient
    (toolkit.bag_kernels.cross_entropy_grads), the bias's gradient clipped as `clip_grad_norm_`
    clips it, the dense optimiser's Adam or AdamW update of the bias (its learning rate, betas,
    eps and weight decay), and LazyAdam's update of the table. The optimisers' own `step()` then
    find no gradient and change nothing, and the schedulers advance their learning rates as usual."""

    def __init__(
        self, compiled: CompiledStep, dense: torch.optim.Optimizer, targets: torch.Tensor, clip: float,
        smoothing: float, logit_shift: torch.Tensor | None,
    ) -> None:
        self.compiled, self.dense = compiled, dense
        self.bias = compiled.form.bias
        self.targets = targets.numpy().astype(np.int64)
        self.clip, self.smoothing = clip, smoothing
        self.shift = None if logit_shift is None else logit_shift.numpy().astype(np.float32)
        self.moments = np.zeros((2, len(self.bias)), dtype=np.float32)
        self.steps = 0

    def loss(self, rows: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """The batch's mean loss, its gradient of the logits, and the logits (without the shift)."""
        logits = self.compiled.sums(rows)
        logits += self.bias.detach().numpy()
        trained = logits + self.shift if self.shift is not None else logits.copy()
        loss = self.compiled.kernels.cross_entropy_grads(trained, self.targets[rows], self.smoothing)
        return loss, trained, logits

    def right_answers(self, rows: np.ndarray, logits: np.ndarray) -> int:
        """How many of the texts `rows` have their class as the logits' top one."""
        return int((logits.argmax(1) == self.targets[rows]).sum())

    def update(self, rows: np.ndarray, grads: np.ndarray) -> None:
        """Update the bias and the table from the gradient of the logits."""
        bias_grad = grads.sum(0)
        if self.clip:  # clip_grad_norm_ over the dense parameters: the bias alone
            norm = float(np.linalg.norm(bias_grad.astype(np.float64)))
            bias_grad *= np.float32(min(1.0, self.clip / (norm + 1e-6)))
        self._adam(bias_grad)
        self.compiled.step_table(rows, grads)

    def _adam(self, grad: np.ndarray) -> None:
        """torch's Adam (AdamW: decoupled weight decay) step of the bias, on numpy arrays."""
        group = self.dense.param_groups[0]
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        decoupled = group.get("decoupled_weight_decay", isinstance(self.dense, torch.optim.AdamW))
        bias = self.bias.detach().numpy()
        if decay and decoupled:
            bias *= np.float32(1 - lr * decay)
        elif decay:
            grad = grad + np.float32(decay) * bias
        self.steps += 1
        first, second = self.moments
        first += np.float32(1 - beta1) * (grad - first)
        second *= np.float32(beta2)
        second += np.float32(1 - beta2) * grad * grad
        step_size = lr / (1 - beta1**self.steps)
        denominator = np.sqrt(second) / np.float32(math.sqrt(1 - beta2**self.steps)) + np.float32(eps)
        bias -= np.float32(step_size) * (first / denominator)


def linear_step(
    compiled: CompiledStep | None, dense: Sequence[nn.Parameter], optimizers: Sequence[torch.optim.Optimizer],
    targets: torch.Tensor, clip: float, smoothing: float, class_weights: float,
    logit_shift: torch.Tensor | None, loss: str = "cross-entropy",
) -> LinearStep | None:
    """The whole compiled step where it applies: a row bag naming its bias, the bias the only dense
    parameter, an Adam or AdamW optimiser for it, class indices as targets, no class weights, the
    cross-entropy loss (its gradient is the compiled one)."""
    if compiled is None or compiled.form.bias is None or targets.dim() != 1 or class_weights \
            or loss != "cross-entropy":
        return None
    optimizer = next((o for o in optimizers if o is not compiled.optimizer), None)
    if [id(p) for p in dense] != [id(compiled.form.bias)] or not isinstance(optimizer, torch.optim.Adam):
        return None
    group = optimizer.param_groups[0]
    if group.get("amsgrad") or group.get("maximize") or len(optimizer.param_groups) != 1:
        return None
    return LinearStep(compiled, optimizer, targets, clip, smoothing, logit_shift)


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
