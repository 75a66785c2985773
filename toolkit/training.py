"""The trainer: mini-batches, optimisers, early stopping, progress.

`train(model, encoder, train_data, val_data, params)` encodes the texts once, then feeds the
model mini-batches of names of similar length (little padding), either shuffled epochs or
the tutorial's class-balanced draws (a random class, then a random name of it). After every
epoch it measures the validation loss and keeps the best weights. A NaN or infinite loss
stops training with a ToolkitError; Ctrl-C stops it cleanly and keeps what was learned.

The trainer chooses the loss from the data: cross-entropy over the classes for single-label
data, and for multi-label data (`TextDataset.label_sets`) binary cross-entropy on each class's
logit (one yes/no question per class). There `label_smoothing` moves each 0/1 target towards
1/2 by its share, `class_weights` weighs each class's positive texts as cross-entropy weighs a
class's texts, `logit_adjust` adds the log prior odds of each class, and the history's
`train_acc`/`val_acc` are micro-F1 at the threshold 0.5 (the run's own threshold is chosen
after training, on validation: toolkit.multilabel).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn import functional as F

from toolkit import distributed
from toolkit.compiled_step import CompiledStep, LinearStep, compiled_step, linear_step
from toolkit.encoded import encode_compact
from toolkit.errors import ToolkitError
from toolkit.inference import PREDICT_BATCH, resolve_device
from toolkit.memory import failed_allocation
from toolkit.precomputed import Precomputed, offers_precompute, precompute
from toolkit.sparse_adam import LazyAdam
from toolkit.train_config import TrainConfig
from toolkit.types import Encoder, TextDataset
from toolkit.weight_average import EpochAverage

#: Bucketing sorts this many batches' worth of names by length at a time, then shuffles batches.
BUCKET_WINDOW = 50
#: Seconds between progress-bar updates.
REPORT_EVERY = 0.2
HISTORY_COLUMNS = (
    "epoch", "examples", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "names_per_sec", "lr",
)
#: The `threads=0` choice. Two threads train about 1.3x faster on a quiet machine, but when
#: another process holds a core they wait on each other and a 6-second training took over
#: 200 s (bench/threads_bench.py, docs/benchmarks.md); one thread never collapses.
MAX_AUTO_THREADS = 1


@dataclass(frozen=True)
class BatchInfo:
    """What a callback sees after every optimiser step."""

    epoch: int
    step: int
    examples_seen: int
    loss: float
    model: nn.Module


@dataclass
class TrainResult:
    """The trained model (best validation weights, eval mode) and how training went."""

    model: nn.Module
    history: pd.DataFrame
    seconds: float  # the whole fit: encoding, precomputing, the steps and the validation passes
    stop_reason: str
    best_epoch: int | None
    interrupted: bool = False  # stopped by Ctrl-C (or a callback raising KeyboardInterrupt)
    epochs_completed: int = 0
    epochs_planned: int = 0
    engine: str = "torch"  # what computed the steps: torch, or compiled (train.engine)


def train(
    model: nn.Module,
    encoder: Encoder,
    train_data: TextDataset,
    val_data: TextDataset | None = None,
    params: Mapping[str, Any] | TrainConfig | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
    callbacks: Sequence[Callable[[BatchInfo], None]] = (),
    epoch_callbacks: Sequence[Callable[[Mapping[str, Any]], None]] = (),
) -> TrainResult:
    """Train `model` on `train_data` encoded by the (fitted) `encoder`.

    `params` are the trainer parameters (TRAIN_PARAMS). The same seed on the CPU repeats a
    run exactly (the model's initial weights are the caller's: seed before building it).
    `progress` shows a progress bar; by default there is one when stderr is a terminal, and
    otherwise (a log, a pipe) a plain line on stderr after every epoch. Every callback is
    called after each step; one that raises KeyboardInterrupt stops training like Ctrl-C.
    Every epoch callback is called after each epoch with its history row (validation loss
    and accuracy included); what it raises ends training and reaches the caller (the tuner
    prunes this way). A model that trains its members separately calls them only once, at
    the end, with the combined model's row.
    """
    config = TrainConfig.from_params(params)
    target = device if isinstance(device, torch.device) else resolve_device(device)
    if getattr(model, "separate_members", None):
        result = _train_members(
            model, encoder, train_data, val_data, config,
            seed=seed, device=target, progress=progress, callbacks=callbacks,
        )
        for epoch_callback in epoch_callbacks:
            epoch_callback(result.history.iloc[-1].to_dict())
        return result
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(thread_count(config.threads))
    # The whole fit is timed, as a scikit-learn fit is: encoding and precomputing included.
    started = time.perf_counter()
    try:
        return _train_one(model, encoder, train_data, val_data, config, seed, target, progress, callbacks,
                          epoch_callbacks, started)
    finally:
        torch.set_num_threads(previous_threads)


def _train_one(
    model: nn.Module, encoder: Encoder, train_data: TextDataset, val_data: TextDataset | None,
    config: TrainConfig, seed: int, target: torch.device, progress: bool | None,
    callbacks: Sequence[Callable[[BatchInfo], None]],
    epoch_callbacks: Sequence[Callable[[Mapping[str, Any]], None]], started: float,
) -> TrainResult:
    """`train` for one model, on the threads it set; `started` is when its clock started."""
    data = _Batches(encoder, train_data, target)
    val = _Batches(encoder, val_data, target) if val_data is not None and len(val_data) else None
    model.to(target)
    check_model_reads_encoder(model, data, len(train_data.classes))
    ranks = distributed.current()  # rank 0 of 1 unless torchrun started several processes
    if ranks.world_size == 1 and offers_precompute(model):  # DistributedDataParallel wraps forward alone
        for batches in (data, val):
            if batches is not None:
                batches.precompute_for(model)
    network, model = model, distributed.wrap(model, target)
    # Every rank draws the same global batches (same seed) and trains on its slice of each.
    batching = dataclasses.replace(config, batch_size=config.batch_size * ranks.world_size)

    torch.manual_seed(seed + ranks.rank)  # dropout
    rng = np.random.default_rng(seed)  # which names, in which batches
    total = config.examples or config.epochs * len(train_data)
    epoch_sizes = list(_epoch_sizes(total, len(train_data)))
    steps = sum(math.ceil(size / batching.batch_size) for size in epoch_sizes)
    loop = _Loop(model, config, data, train_data, steps, callbacks)
    loop.compiled = compiled_step(config.engine, network, data.precomputed, loop.optimizers, target,
                                  ranks.world_size)
    loop.linear = linear_step(loop.compiled, loop.dense, loop.optimizers, data.targets, config.clip,
                              config.label_smoothing, config.class_weights, loop.logit_shift, config.loss)
    average = EpochAverage(network, config.average) if config.average else None
    rows: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    stop_reason = "completed"
    interrupted = False
    epoch = 0
    show = (sys.stderr.isatty() if progress is None else progress) and ranks.is_main
    log_epochs = _logs_epochs(progress) and ranks.is_main
    try:
        with _progress_bar(show) as bar:
            task = bar.add_task("training", total=total, status="")
            for epoch, size in enumerate(epoch_sizes, start=1):
                epoch_start = time.perf_counter()
                batches = distributed.shard(_epoch_batches(train_data, data.lengths, size, batching, rng))
                row = loop.run_epoch(epoch, batches, functools.partial(bar.update, task))
                if average is not None:
                    average.update()
                validated = average.applied() if average is not None else contextlib.nullcontext()
                with validated:
                    if val is not None and ranks.is_main:
                        row["val_loss"], row["val_acc"] = _evaluate(network, val, config.loss)
                        if not math.isfinite(row["val_loss"]):
                            raise _diverged(row["val_loss"], epoch, loop.step, config, "validation ")
                        score = row["val_loss"] if config.select == "loss" else -row["val_acc"]
                        if best is None or score < best[0]:
                            best = (score, epoch, copy.deepcopy(network.state_dict()))
                row["seconds"] = time.perf_counter() - epoch_start
                rows.append(row)
                if log_epochs:  # no bar in a log: a plain line per epoch, as pip and git write there
                    print(epoch_line(row, len(epoch_sizes)), file=sys.stderr, flush=True)
                if ranks.is_main:
                    for epoch_callback in epoch_callbacks:
                        epoch_callback(row)
                waited = epoch - best[1] if best is not None else 0
                more = epoch < len(epoch_sizes)  # patience running out on the last epoch stops nothing
                if distributed.rank0_decides(bool(config.patience) and waited >= config.patience and more):
                    stop_reason = (
                        f"early stop: no better validation {config.select} for {config.patience} epochs"
                    )
                    break
    except KeyboardInterrupt:
        interrupted = True
        stop_reason = (
            f"interrupted in epoch {epoch} of {len(epoch_sizes)} ({len(rows)} completed, "
            f"{loop.seen:,} texts seen)"
        )
    finally:
        loop.settle()  # an interrupted epoch ends with weights up to date too
    seconds = time.perf_counter() - started
    if best is not None:
        network.load_state_dict(best[2])
    elif average is not None and average.epochs:  # no validation: the last average is the result
        average.apply()
    network.eval()
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return TrainResult(
        network, history, seconds, stop_reason, best[1] if best else None, interrupted, len(rows),
        len(epoch_sizes), "compiled" if loop.compiled is not None else "torch",
    )


def _logs_epochs(progress: bool | None) -> bool:
    """Whether training writes a plain line per epoch: by default, when stderr is a log."""
    return progress is None and not sys.stderr.isatty()


def epoch_line(row: Mapping[str, Any], epochs: int) -> str:
    """An epoch's row of the history as one plain line, for a log."""
    line = f"epoch {row['epoch']}/{epochs}: training loss {row['train_loss']:.3f}, "
    line += f"accuracy {row['train_acc']:.1%}"
    if math.isfinite(row["val_loss"]):
        line += f"; validation loss {row['val_loss']:.3f}, accuracy {row['val_acc']:.1%}"
    return f"{line} ({row['seconds']:.1f} s, {row['names_per_sec']:,.0f} texts/s)"


def _train_members(
    model: nn.Module, encoder: Encoder, train_data: TextDataset, val_data: TextDataset | None,
    config: TrainConfig, **options: Any,
) -> TrainResult:
    """Train each of `model.separate_members` (name, module, trainer defaults, own trainer
    settings) on its own, each with its own early stopping; the history lists their epochs one
    after another and ends with a row for the combined model's validation loss and accuracy.
    A trainer value the run set away from the trainer's own default (threads, epochs...)
    applies to every member, over the member's defaults; a member's own settings over both."""
    started = time.perf_counter()
    device = options["device"]
    model.to(device)
    check_model_reads_encoder(model, _Batches(encoder, train_data, device), len(train_data.classes))
    histories, reasons, engines, seen, last_epoch = [], [], [], 0, 0
    interrupted, completed, planned = False, 0, 0
    defaults = TrainConfig().as_dict()
    changed = {k: v for k, v in config.as_dict().items() if v != defaults[k]}
    member_configs = []
    for name, _, member_defaults, member_settings in model.separate_members:
        try:  # every member's trainer checked before any trains
            member_configs.append(TrainConfig.from_params({**member_defaults, **changed, **member_settings}))
        except ToolkitError as exc:
            raise ToolkitError(
                f"ensemble member '{name}': {exc} A member's own trainer values go in model.members "
                f"(e.g. {name}:train.NAME=VALUE)."
            ) from None
    for (name, member, _, _), member_config in zip(model.separate_members, member_configs, strict=True):
        if _logs_epochs(options["progress"]) and distributed.current().is_main:
            print(f"training member {name}", file=sys.stderr, flush=True)
        result = train(member, encoder, train_data, val_data, member_config, **options)
        history = result.history.assign(epoch=result.history["epoch"] + last_epoch)
        last_epoch += len(history)
        histories.append(history)
        seen += int(history["examples"].iloc[-1]) if len(history) else 0
        reasons.append(f"{name}: {result.stop_reason}")
        engines.append(f"{name}: {result.engine}")
        completed, planned = completed + result.epochs_completed, planned + result.epochs_planned
        if result.interrupted:
            interrupted = True
            break
    model.eval()
    row = dict.fromkeys(HISTORY_COLUMNS, math.nan) | {"epoch": last_epoch + 1, "examples": seen}
    if val_data is not None and len(val_data):
        val = _Batches(encoder, val_data, device)
        if hasattr(model, "weigh_members") and not interrupted:
            model.weigh_members(*_member_log_probs(model, val))
        row["val_loss"], row["val_acc"] = _evaluate(model, val)
        model.eval()
    history = pd.concat([*histories, pd.DataFrame([row])], ignore_index=True)[list(HISTORY_COLUMNS)]
    return TrainResult(model, history, time.perf_counter() - started, "; ".join(reasons),
                       last_epoch + 1, interrupted, completed, planned, "; ".join(engines))


class _Loop:
    """The optimisation steps: forward, loss, NaN check, backward, clip, step, callbacks."""

    def __init__(
        self, model: nn.Module, config: TrainConfig, data: _Batches, train_data: TextDataset,
        steps: int, callbacks: Sequence[Callable[[BatchInfo], None]],
    ) -> None:
        self.model, self.config, self.data, self.callbacks = model, config, data, callbacks
        dense, sparse = _split_parameters(model)
        self.dense = dense
        self.optimizers = _optimizers(dense, sparse, config)
        self.schedulers = [_scheduler(optimizer, config, steps) for optimizer in self.optimizers]
        self.class_weights = (
            _class_weights(train_data, len(train_data.classes), config.class_weights).to(data.device)
            if config.class_weights else None
        )
        self.logit_shift = (
            config.logit_adjust * _log_prior(train_data, len(train_data.classes)).to(data.device)
            if config.logit_adjust else None
        )
        self.step = self.seen = 0
        self.compiled: CompiledStep | None = None  # the table's part of each step, compiled
        self.linear: LinearStep | None = None  # or the whole step, for a linear bag

    def run_epoch(
        self, epoch: int, batches: list[np.ndarray], report: Callable[..., None]
    ) -> dict[str, Any]:
        """Train on `batches`; return this epoch's row of the history (without validation)."""
        self.model.train()
        started = time.perf_counter()
        loss_sum, correct, count, unreported, last_report = 0.0, 0, 0, 0, started
        scored = 0  # the denominator of train_acc: texts, or for multi-label 2tp + fp + fn
        for rows in batches:
            step = self._linear_step if self.linear is not None else self._torch_step
            loss_value, hits, out_of = step(rows, epoch)
            self.step += 1
            self.seen += len(rows)
            count += len(rows)
            loss_sum += loss_value * len(rows)
            correct, scored = correct + hits, scored + out_of
            unreported += len(rows)
            if time.perf_counter() - last_report > REPORT_EVERY:  # redrawing per step costs time
                unreported *= distributed.current().world_size  # the bar counts all ranks' texts
                status = self._status(epoch, loss_sum, correct, count, scored, started)
                report(advance=unreported, status=status)
                unreported, last_report = 0, time.perf_counter()
            for callback in self.callbacks:
                callback(BatchInfo(epoch, self.step, self.seen, loss_value, self.model))
        local_count = count
        loss_sum, correct, count, scored = distributed.sum_over_ranks(loss_sum, correct, count, scored)
        self.seen += int(count) - local_count  # every rank counts the texts of all ranks
        self.settle()
        report(advance=unreported * distributed.current().world_size,
               status=self._status(epoch, loss_sum, correct, count, scored, started))
        seconds = time.perf_counter() - started
        return {
            "epoch": epoch, "examples": self.seen, "train_loss": loss_sum / count,
            "train_acc": correct / max(scored, 1), "val_loss": math.nan, "val_acc": math.nan,
            "seconds": seconds, "names_per_sec": count / max(seconds, 1e-9),
            "lr": self.optimizers[0].param_groups[0]["lr"],
        }

    def _torch_step(self, rows: np.ndarray, epoch: int) -> tuple[float, int, int]:
        """One optimisation step in torch (the table's part compiled with `self.compiled`); the
        loss and the batch's right answers out of how many (`_hits`)."""
        if self.compiled is not None:
            y = self.data.targets_of(rows)
            features = self.compiled.features(rows)
            logits = self.compiled.form.head(features)
        else:
            inputs, y = self.data.inputs(rows)
            logits = self.data.forward(self.model, inputs)
        trained_logits = logits if self.logit_shift is None else logits + self.logit_shift
        loss = self._loss(trained_logits, y)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise _diverged(loss_value, epoch, self.step + 1, self.config)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip and self.dense:  # norms of sparse gradients are not defined
            nn.utils.clip_grad_norm_(self.dense, self.config.clip)
        if self.compiled is not None:  # the table's update; its optimiser's step() then skips it
            self.compiled.update(rows, features)
        self._step_optimizers()
        return (loss_value, *_hits(logits.detach(), y))

    def _linear_step(self, rows: np.ndarray, epoch: int) -> tuple[float, int, int]:
        """One optimisation step, compiled whole (toolkit.compiled_step.LinearStep)."""
        loss_value, grads, logits = self.linear.loss(rows)
        if not math.isfinite(loss_value):
            raise _diverged(loss_value, epoch, self.step + 1, self.config)
        self.linear.update(rows, grads)
        # The optimisers have no gradient to apply. Their step() is called once, so that the
        # schedulers know they ran (torch warns otherwise); after that the schedules advance alone.
        self._step_optimizers(optimizers=self.step == 0)
        return loss_value, self.linear.right_answers(rows, logits), len(rows)

    def _step_optimizers(self, optimizers: bool = True) -> None:
        for optimizer, scheduler in zip(self.optimizers, self.schedulers, strict=True):
            if optimizers:
                optimizer.step()
            scheduler.step()

    def settle(self) -> None:
        """Bring the weights up to date where an optimiser defers work (LazyAdam's lazy weight
        decay of rows no batch touched lately), before they are evaluated or kept."""
        for optimizer in self.optimizers:
            if isinstance(optimizer, LazyAdam):
                optimizer.settle()

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy for class indices; binary cross-entropy per class for multi-hot targets;
        or the one-vs-rest squared hinge (loss=squared-hinge), summed over classes, mean over texts."""
        if self.config.loss == "squared-hinge":
            per_text = _squared_hinge(logits, y)
            if self.class_weights is None:
                return per_text.mean()
            weights = self.class_weights[y] if y.dim() == 1 else (y * self.class_weights).amax(1)
            return (per_text * weights).sum() / weights.sum()
        if y.dim() == 1:
            return F.cross_entropy(
                logits, y, weight=self.class_weights, label_smoothing=self.config.label_smoothing
            )
        smoothed = y * (1 - self.config.label_smoothing) + self.config.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(logits, smoothed, pos_weight=self.class_weights)

    @staticmethod
    def _status(epoch: int, loss_sum: float, correct: int, count: int, scored: int, started: float) -> str:
        rate = count / max(time.perf_counter() - started, 1e-9)
        accuracy = correct / max(scored, 1)
        return f"epoch {epoch} loss {loss_sum / count:.3f} acc {accuracy:.1%} {rate:,.0f} texts/s"


def _hits(logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """(right, out of): texts whose top class is right, of all texts; for multi-hot targets, the
    micro-F1 at threshold 0.5 as 2tp out of 2tp + fp + fn."""
    if y.dim() == 1:
        return int((logits.argmax(1) == y).sum()), len(y)
    chosen, truth = logits >= 0, y >= 0.5
    tp = int((chosen & truth).sum())
    return 2 * tp, 2 * tp + int((chosen ^ truth).sum())


def check_model_reads_encoder(model: nn.Module, batches: _Batches, num_classes: int) -> None:
    """Run one small batch through the model, so a mismatch is reported before training."""
    x, lengths, _ = batches.take(np.arange(min(4, batches.size)))
    try:
        with torch.no_grad():
            logits = model(x, lengths)
    except (RuntimeError, IndexError, ValueError, TypeError) as exc:
        if failed_allocation(exc):
            raise  # not a mismatch: said as running out of memory (toolkit.memory)
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ToolkitError(
            f"the model cannot read the encoder's output ({first_line}); "
            "choose an encoder this model consumes."
        ) from None
    expected = (len(lengths), num_classes)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ToolkitError(
            f"the model returned {got} for a batch of {len(lengths)} names; it must return "
            f"logits of shape {expected} (batch, classes)."
        )


class _Batches:
    """A dataset encoded once; `take(rows)` cuts a batch trimmed to its longest name, and
    `inputs(rows)` the model's inputs for it (precomputed ones after `precompute_for`)."""

    def __init__(self, encoder: Encoder, data: TextDataset, device: torch.device) -> None:
        indices, lengths = encode_compact(encoder, data.texts)
        self.size = len(data)
        self.indices, self.lengths_tensor = indices, lengths
        self.lengths = lengths.numpy()
        if data.label_sets is not None:  # multi-hot, for binary cross-entropy
            from toolkit.multilabel import multi_hot

            self.targets = torch.from_numpy(multi_hot(data.label_sets, len(data.classes))).float()
        else:
            self.targets = torch.tensor(data.targets, dtype=torch.long)
        self.device = device
        self.precomputed: Precomputed | None = None

    def precompute_for(self, model: nn.Module) -> None:
        """Compute `model.precompute` once for every text (see toolkit.precomputed)."""
        self.precomputed = precompute(model, self.indices, self.lengths_tensor)

    def inputs(self, rows: np.ndarray) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """The model's inputs for a batch (for `forward`), and its targets."""
        if self.precomputed is None:
            x, lengths, y = self.take(rows)
            return (x, lengths), y
        rows_t = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return self.precomputed.take(rows_t, self.device), self.targets_of(rows)

    def targets_of(self, rows: np.ndarray) -> torch.Tensor:
        return self.targets[torch.from_numpy(np.asarray(rows, dtype=np.int64))].to(self.device)

    def forward(self, model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """`model`'s logits for `inputs(rows)`."""
        return model(*inputs) if self.precomputed is None else model.forward_precomputed(*inputs)

    def take(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows_t = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        lengths = self.lengths_tensor[rows_t]
        x = self.indices[rows_t, : int(lengths.max())].long()
        return x.to(self.device), lengths.to(self.device), self.targets[rows_t].to(self.device)

    def in_batches(self, size: int) -> Iterator[np.ndarray]:
        order = np.argsort(self.lengths, kind="stable")
        for start in range(0, self.size, size):
            yield order[start:start + size]


def _epoch_sizes(total: int, dataset_size: int) -> Iterator[int]:
    """Examples per epoch: whole epochs of the dataset's size, then the remainder."""
    while total > 0:
        yield min(total, dataset_size)
        total -= dataset_size


def _epoch_batches(
    data: TextDataset, lengths: np.ndarray, size: int, config: TrainConfig, rng: np.random.Generator
) -> list[np.ndarray]:
    """The row numbers of each mini-batch of one epoch of `size` names."""
    if config.sampling == "balanced":
        members = _members_of_classes(data)
        members = [m for m in members if len(m)]
        chosen_class = rng.integers(len(members), size=size)
        rows = np.empty(size, dtype=np.int64)
        for c, pool in enumerate(members):
            where = np.flatnonzero(chosen_class == c)
            rows[where] = pool[rng.integers(len(pool), size=len(where))]
    else:
        rows = rng.permutation(len(data))[:size]
    b = config.batch_size
    if not config.bucket:
        return [rows[i:i + b] for i in range(0, len(rows), b)]
    batches = []
    window = b * BUCKET_WINDOW
    for start in range(0, len(rows), window):
        chunk = rows[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + b] for i in range(0, len(chunk), b))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def _members_of_classes(data: TextDataset) -> list[np.ndarray]:
    """The rows of every class: its texts, or for multi-label data the texts carrying it."""
    if data.label_sets is None:
        targets = np.asarray(data.targets)
        return [np.flatnonzero(targets == c) for c in range(len(data.classes))]
    rows: list[list[int]] = [[] for _ in data.classes]
    for i, labels in enumerate(data.label_sets):
        for c in labels:
            rows[c].append(i)
    return [np.asarray(r, dtype=np.int64) for r in rows]


def _class_counts(data: TextDataset, num_classes: int) -> np.ndarray:
    """Texts per class (for multi-label data, texts carrying each class)."""
    if data.label_sets is None:
        return np.bincount(np.asarray(data.targets), minlength=num_classes).astype(np.float64)
    counts = np.zeros(num_classes)
    for labels in data.label_sets:
        counts[list(labels)] += 1
    return counts


def thread_count(threads: int) -> int:
    """torch threads for `train.threads`: its value, or with 0 (auto) at most MAX_AUTO_THREADS."""
    return threads or min(torch.get_num_threads(), MAX_AUTO_THREADS)


def _member_log_probs(model: nn.Module, data: _Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Each separately trained member's log-probabilities (members, texts, classes) on `data`
    (of each class on its own, log-sigmoid, for multi-label data), and the texts' targets."""
    members = [member for _, member, _, _ in model.separate_members]
    parts, targets = [], []
    with torch.inference_mode():
        for rows in data.in_batches(PREDICT_BATCH):
            x, lengths, y = data.take(rows)
            log_p = F.logsigmoid if y.dim() == 2 else functools.partial(F.log_softmax, dim=1)
            parts.append(torch.stack([log_p(member(x, lengths)) for member in members]))
            targets.append(y)
    return torch.cat(parts, dim=1), torch.cat(targets)


def _squared_hinge(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each text's one-vs-rest squared hinge, summed over the classes: its classes' logits pushed
    past +1, the others' below -1 (class indices, or multi-hot targets)."""
    signs = (F.one_hot(y, logits.shape[1]).to(logits.dtype) if y.dim() == 1 else y) * 2 - 1
    return F.relu(1 - signs * logits).square().sum(1)


def _evaluate(model: nn.Module, data: _Batches, loss: str = "cross-entropy") -> tuple[float, float]:
    """The mean loss and the accuracy on a whole encoded dataset: cross-entropy (for multi-label
    data, binary cross-entropy per class, and micro-F1 at threshold 0.5), or with
    loss=squared-hinge the mean squared hinge per text, as the trainer minimises them (without
    class weights or smoothing)."""
    model.eval()
    loss_sum, correct, scored, terms = 0.0, 0, 0, 0
    with torch.inference_mode():
        for rows in data.in_batches(PREDICT_BATCH):
            inputs, y = data.inputs(rows)
            logits = data.forward(model, inputs)
            if loss == "squared-hinge":
                loss_sum += float(_squared_hinge(logits, y).sum())
                terms += len(y)
            elif y.dim() == 1:
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                terms += len(y)
            else:
                loss_sum += float(F.binary_cross_entropy_with_logits(logits, y, reduction="sum"))
                terms += y.numel()
            hits, out_of = _hits(logits, y)
            correct, scored = correct + hits, scored + out_of
    model.train()
    return loss_sum / terms, correct / max(scored, 1)


def optimizers_for(model: nn.Module, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """The optimisers the trainer uses for `model`: the configured one for dense parameters,
    and one for embeddings marked sparse (see `_optimizers`)."""
    return _optimizers(*_split_parameters(model), config)


def _split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The trainable parameters with dense gradients, and those of embeddings marked sparse."""
    sparse = [
        p for module in model.modules() if getattr(module, "sparse", False) is True
        for p in module.parameters(recurse=False) if p.requires_grad
    ]
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids]
    return dense, sparse


def _optimizers(
    dense: list[nn.Parameter], sparse: list[nn.Parameter], config: TrainConfig
) -> list[torch.optim.Optimizer]:
    """The configured optimiser for dense parameters; for embeddings marked sparse, which
    update only the rows a batch used (a large n-gram table stays fast), plain SGD when the
    optimiser is sgd (without weight decay) and Adam's sparse update otherwise
    (toolkit.sparse_adam, with weight_decay as AdamW's decoupled decay, applied lazily)."""
    optimizers: list[torch.optim.Optimizer] = []
    kinds = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if dense:
        optimizers.append(kinds[config.optimizer](dense, lr=config.lr, weight_decay=config.weight_decay))
    if sparse and config.optimizer == "sgd":
        optimizers.append(torch.optim.SGD(sparse, lr=config.lr))  # sparse steps, no decay
    elif sparse:
        optimizers.append(LazyAdam(sparse, lr=config.lr, weight_decay=config.weight_decay))
    if not optimizers:
        raise ToolkitError("the model has no trainable parameters.")
    return optimizers


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int) -> Any:
    steps = max(1, steps)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _class_weights(data: TextDataset, num_classes: int, power: float) -> torch.Tensor:
    """(names / (classes * class count)) ** power: at power 1 every class weighs the same in
    total; a class missing from the training data gets weight 0."""
    counts = _class_counts(data, num_classes)
    weights = np.where(counts > 0, (len(data) / (num_classes * np.maximum(counts, 1))) ** power, 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def _log_prior(data: TextDataset, num_classes: int) -> torch.Tensor:
    """log(class share) in the training data; a class absent there counts as one text. For
    multi-label data, the log odds of each class (log(share / (1 - share)))."""
    if data.label_sets is None:
        counts = np.bincount(np.asarray(data.targets), minlength=num_classes).astype(np.float64)
        return torch.tensor(np.log(np.maximum(counts, 1) / len(data)), dtype=torch.float32)
    share = np.clip(np.maximum(_class_counts(data, num_classes), 1) / len(data), 1e-6, 1 - 1e-6)
    return torch.tensor(np.log(share / (1 - share)), dtype=torch.float32)


def _diverged(value: float, epoch: int, step: int, config: TrainConfig, where: str = "") -> ToolkitError:
    return ToolkitError(
        f"training diverged: the {where}loss became {value} at epoch {epoch}, step {step} "
        f"(lr={config.lr:g}); lower train.lr or keep train.clip on."
    )


def _progress_bar(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
        console=Console(stderr=True), disable=not show, transient=False,
    )
