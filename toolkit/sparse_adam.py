"""Adam for sparse embedding gradients, updating only the rows a batch touched.

The same update as `torch.optim.SparseAdam` (the moments and the weights of the touched rows
only, Adam's bias correction from the step count), computed with dense row gathers and
scatters: torch's version coalesces the gradient by sorting every n-gram occurrence of the
batch and updates the moments through sparse-tensor operations, which made it about half of
an `ngram` training step (profiled with py-spy). Here the touched rows are found without
sorting: each occurrence writes its position into a table with one slot per row, and an
occurrence is its row's representative when it reads its own position back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def touched_rows(rows: torch.Tensor, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct values of `rows` (in no particular order) and, for every element, the
    position of its value among them. `slots` is scratch with one entry per possible row."""
    positions = torch.arange(len(rows), device=rows.device, dtype=slots.dtype)
    slots.scatter_(0, rows, positions)  # one writer per row wins; which one does not matter
    winner = slots.index_select(0, rows)
    first = winner == positions
    distinct = rows[first]
    where = first.cumsum(0, dtype=torch.long) - 1
    return distinct, where.index_select(0, winner.long())


class LazyAdam(torch.optim.Optimizer):
    """`torch.optim.SparseAdam`'s update, faster: for parameters with sparse gradients."""

    def __init__(
        self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's signature
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not grad.is_sparse:
                    raise RuntimeError("LazyAdam is for sparse gradients; use Adam for dense ones.")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    # both moments of a row side by side: one gather and one scatter per step
                    state["moments"] = param.new_zeros((len(param), 2, *param.shape[1:]))
                    state["slots"] = torch.empty(len(param), dtype=torch.int32, device=param.device)
                occurrences, values = grad._indices()[0], grad._values()
                if not len(occurrences):
                    continue
                rows, where = touched_rows(occurrences, state["slots"])
                summed = values.new_zeros((len(rows), *values.shape[1:])).index_add_(0, where, values)
                state["step"] += 1
                moments = state["moments"].index_select(0, rows)
                exp_avg, exp_avg_sq = moments[:, 0], moments[:, 1]
                exp_avg.lerp_(summed, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(summed, summed, value=1 - beta2)
                state["moments"].index_copy_(0, rows, moments)
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                denominator = exp_avg_sq.sqrt().add_(group["eps"])
                # a gather and a copy: index_add_ adds row by row, several times slower here
                updated = param.index_select(0, rows).addcdiv_(exp_avg, denominator, value=-step_size)
                param.index_copy_(0, rows, updated)
        return loss
