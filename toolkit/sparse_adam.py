"""Adam for sparse embedding gradients, updating only the rows a batch touched.

The same update as `torch.optim.SparseAdam` (the moments and the weights of the touched rows
only, Adam's bias correction from the step count), computed with dense row gathers and
scatters: torch's version coalesces the gradient by sorting every n-gram occurrence of the
batch and updates the moments through sparse-tensor operations, which made it about half of
an `ngram` training step (profiled with py-spy). Here the touched rows are found without
sorting: each occurrence writes its position into a table with one slot per row, and an
occurrence is its row's representative when it reads its own position back.

Weight decay is decoupled (AdamW's: a row is multiplied by 1 - lr * weight_decay before its
Adam step) and lazy, so a step still touches only the batch's rows: the optimiser keeps the
running log of every step's decay factor, and each row the log at which it was last brought up
to date. A touched row first catches up on every step's decay since then (the product of the
factors of the steps it missed, at their own learning rates), which is exactly the decay a
dense AdamW would have applied to it step by step; `settle()` brings the rows no batch touched
lately up to date too (the trainer calls it before it evaluates or keeps the weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

#: `lazy_adam_rows`'s decay log when there is no weight decay (never read).
_NO_DECAY = np.zeros(0)


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
    """`torch.optim.SparseAdam`'s update, faster: for parameters with sparse gradients; with
    `weight_decay`, AdamW's decoupled decay applied lazily (see the module's docstring)."""

    def __init__(
        self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
    ) -> None:
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more; got {weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def settle(self) -> None:
        """Apply the decay every row still owes (rows no batch touched since their last step), so
        the weights are those of dense decoupled decay. Calling it again changes nothing."""
        for param in (param for group in self.param_groups for param in group["params"]):
            state = self.state.get(param, {})
            if "decayed_at" in state:
                owed = torch.exp(state["decay_log"] - state["decayed_at"]).to(param.dtype)
                param.mul_(owed.view(-1, *[1] * (param.dim() - 1)))
                state["decayed_at"].fill_(state["decay_log"])

    @staticmethod
    def _decay(state: dict, param: torch.Tensor, decay: float) -> None:
        """Add this step's decay factor (1 - decay) to the running log of `param`'s decay."""
        if decay >= 1:
            raise ValueError(f"lr * weight_decay must be below 1; got {decay}")
        if "decayed_at" not in state:
            state["decay_log"] = 0.0
            state["decayed_at"] = torch.zeros(len(param), dtype=torch.float64, device=param.device)
        state["decay_log"] += math.log1p(-decay)

    @staticmethod
    def _catch_up(state: dict, updated: torch.Tensor, rows: torch.Tensor) -> None:
        """Multiply the touched rows (`updated`, gathered) by the decay they owe, this step's
        included, and mark them up to date."""
        owed = torch.exp(state["decay_log"] - state["decayed_at"].index_select(0, rows))
        updated.mul_(owed.to(updated.dtype).view(-1, *[1] * (updated.dim() - 1)))
        state["decayed_at"].index_fill_(0, rows, state["decay_log"])

    def _state_of(self, param: torch.Tensor) -> dict:
        """`param`'s state, started at its first step: the step count, and both moments of a row
        side by side (one gather and one scatter per step)."""
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["moments"] = param.new_zeros((len(param), 2, *param.shape[1:]))
        return state

    @staticmethod
    def _step_size(group: dict, step: int) -> float:
        """The learning rate with Adam's bias correction at `step`."""
        beta1, beta2 = group["betas"]
        return group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)

    def _group_of(self, param: torch.Tensor) -> dict:
        for group in self.param_groups:
            if any(p is param for p in group["params"]):
                return group
        raise ValueError("the parameter is not one this optimiser updates")

    @torch.no_grad()
    def step_rows(
        self, param: torch.nn.Parameter, texts: np.ndarray, offsets: np.ndarray, ids: np.ndarray,
        weights: np.ndarray, grads: np.ndarray,
    ) -> None:
        """`step` for `param`, a bag's table, with its gradient given in the bag's form: text
        `texts[b]` read the rows `ids[offsets[t]:offsets[t+1]]` times `weights[...]`, and
        `grads[b]` is the gradient of its features (toolkit.compiled_step). The same update,
        computed by the compiled loop of toolkit.bag_kernels (numba)."""
        from toolkit.bag_kernels import lazy_adam_rows

        group = self._group_of(param)
        beta1, beta2 = group["betas"]
        state = self._state_of(param)
        if "stamps" not in state:  # the step that last touched each row
            state["stamps"] = torch.full((len(param),), -1, dtype=torch.long)
        decay = group["lr"] * group["weight_decay"]
        if decay:
            self._decay(state, param, decay)
        if offsets[texts + 1].sum() == offsets[texts].sum():  # no row read: as `step` with no occurrence
            return
        state["step"] += 1
        decaying = "decayed_at" in state
        lazy_adam_rows(
            texts, offsets, ids, weights, grads, param.detach().numpy(), state["moments"].numpy(),
            state["stamps"].numpy(), state["step"], self._step_size(group, state["step"]), beta1, beta2,
            group["eps"], decaying,
            float(state.get("decay_log", 0.0)), state["decayed_at"].numpy() if decaying else _NO_DECAY,
        )

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
                state = self._state_of(param)
                if "slots" not in state:
                    state["slots"] = torch.empty(len(param), dtype=torch.int32, device=param.device)
                decay = group["lr"] * group["weight_decay"]
                if decay:
                    self._decay(state, param, decay)
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
                step_size = self._step_size(group, state["step"])
                denominator = exp_avg_sq.sqrt().add_(group["eps"])
                # a gather and a copy: index_add_ adds row by row, several times slower here
                updated = param.index_select(0, rows)
                if "decayed_at" in state:  # decoupled decay: rows owing some catch up before the step
                    self._catch_up(state, updated, rows)
                updated.addcdiv_(exp_avg, denominator, value=-step_size)
                param.index_copy_(0, rows, updated)
        return loss
