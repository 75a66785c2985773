"""Data-parallel training: PyTorch's DistributedDataParallel, launched by torchrun.

`torchrun --nproc-per-node N -m toolkit run ...` (one machine or many) starts N processes
("ranks") with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; `toolkit run
--nproc N` does the same on one machine through torchrun's own launcher
(`torch.distributed.launcher.api.elastic_launch`). Every rank loads the same data, splits it
and fits the encoder identically (same seed; checked by a digest), then trains the same model
(wrapped in DistributedDataParallel, gloo on the CPU, nccl on GPUs) on its share of every
mini-batch: each step draws one global batch of `train.batch_size x world size` texts and
rank r takes the r-th slice, so N ranks take the steps one process would take with the
larger batch. Rank 0 alone validates, keeps the best weights, writes the run folder and
prints. When any rank fails, torchrun's agent stops the others; `--nproc` reports it in one
line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError
from toolkit.limits import check_processes

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

#: Set by `launch` in the ranks it starts: they leave the one-line report to the launcher.
LAUNCHER_ENV = "TOOLKIT_LAUNCHER"
#: Where torchrun tells each rank to write why it failed (torch.distributed.elastic's convention).
ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
#: Seconds a crashing rank waits before recording why, so a crash caused by another rank's
#: death is not reported as the cause (see `recording_failure`).
SECONDARY_FAILURE_GRACE = 2.0
#: At most this many processes per machine from `--nproc` (bounded like every other input).
MAX_NPROC = 64


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job; one process alone is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_current = Ranks()


def current() -> Ranks:
    """The ranks of the process group this process joined (rank 0 of 1 when it joined none)."""
    return _current


def under_torchrun() -> bool:
    """Whether torchrun (or `--nproc`) started this process as one of several ranks."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def join(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun described in the environment, once; return this
    process's ranks and the device it trains on (GPU `LOCAL_RANK` with CUDA). Without
    torchrun, returns rank 0 of 1 and `device` unchanged."""
    global _current
    if not under_torchrun():
        return Ranks(), device
    import atexit

    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type not in ("cpu", "cuda"):
        raise ToolkitError(
            f"distributed training runs on cpu (gloo) or cuda (nccl), not {device.type}; pass --device cpu."
        )
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        except (ValueError, RuntimeError) as exc:  # e.g. WORLD_SIZE set without MASTER_ADDR
            reason = " ".join(str(exc).split())[:300]
            raise ToolkitError(
                f"cannot join the process group described by WORLD_SIZE={os.environ.get('WORLD_SIZE')} "
                f"({reason}); start the ranks with torchrun or `toolkit run --nproc N`, or unset WORLD_SIZE."
            ) from None
        atexit.register(_leave)
    _current = Ranks(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    return _current, device


def _leave() -> None:
    import torch.distributed as dist

    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = Ranks()


# -- used by the trainer -----------------------------------------------------------------


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model in DistributedDataParallel when there are several ranks; else itself."""
    if _current.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def shard(batches: list[np.ndarray]) -> list[np.ndarray]:
    """This rank's slice of every global batch (a batch with fewer rows than ranks is dropped,
    so every rank takes the same number of steps)."""
    if _current.world_size == 1:
        return batches
    import numpy as np

    world, rank = _current.world_size, _current.rank
    return [np.array_split(rows, world)[rank] for rows in batches if len(rows) >= world]


def sum_over_ranks(*values: float) -> tuple[float, ...]:
    """The sums of `values` over all ranks (the values themselves with one rank)."""
    if _current.world_size == 1:
        return values
    import torch
    import torch.distributed as dist

    device = "cuda" if _current.backend == "nccl" else "cpu"
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return tuple(total.cpu().tolist())


def rank0_decides(flag: bool) -> bool:
    """Rank 0's `flag`, on every rank (e.g. early stopping, decided by its validation)."""
    if _current.world_size == 1:
        return flag
    import torch.distributed as dist

    box = [flag]
    dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def check_same_everywhere(what: str, digest: str) -> None:
    """Refuse to train when the ranks do not hold the same `what` (compared by digest)."""
    if _current.world_size == 1:
        return
    import torch.distributed as dist

    digests: list[Any] = [None] * _current.world_size
    dist.all_gather_object(digests, digest)
    differing = [rank for rank, d in enumerate(digests) if d != digests[0]]
    if differing:
        raise ToolkitError(
            f"rank {differing[0]} has different {what} from rank 0; every rank must read the same "
            "data with the same toolkit, plugins and seed."
        )


def digest(*parts: Any) -> str:
    """A SHA-256 of JSON-able parts (texts, targets, encoder state)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(json.dumps(part, ensure_ascii=False, sort_keys=True, default=str).encode())
    return hasher.hexdigest()


# -- failures, seen from a rank and from the launcher ------------------------------------


@contextmanager
def recording_failure() -> Iterator[None]:
    """In a rank started by torchrun: write why it failed to torchrun's error file (JSON in
    torch.distributed.elastic's format, plus the one line toolkit shows), then re-raise."""
    try:
        yield
    except Exception as exc:
        path = os.environ.get(ERROR_FILE_ENV)
        if path and under_torchrun() and not isinstance(exc, ToolkitError):
            # A crash here may only be the echo of another rank dying (gloo: "Connection closed
            # by peer"). The agent stops the survivors within its monitor interval, so a rank
            # still alive after this pause failed by itself and its reason is the one to show.
            time.sleep(SECONDARY_FAILURE_GRACE)
        if path:
            line = str(exc) if isinstance(exc, ToolkitError) else f"{type(exc).__name__}: {exc}"
            line = " ".join(line.split()) or type(exc).__name__
            record = {
                "message": {
                    "message": line,
                    "extraInfo": {"py_callstack": traceback.format_exc(), "timestamp": str(int(time.time()))},
                },
                "toolkit": {"line": line, "time": time.time()},
            }
            Path(path).write_text(json.dumps(record), encoding="utf-8")
        raise


def launcher_reports() -> bool:
    """Whether this rank was started by `launch`, which reports failures itself."""
    return os.environ.get(LAUNCHER_ENV) == "1"


def check_launch(nproc: int) -> None:
    """Refuse in one line `nproc` ranks this machine or process cannot start."""
    if not 1 <= nproc <= MAX_NPROC:
        raise ToolkitError(f"--nproc must be between 1 and {MAX_NPROC}; got {nproc}.")
    if under_torchrun():
        raise ToolkitError("this process already runs under torchrun; leave out --nproc.")
    check_processes("--nproc", nproc)


def launch(nproc: int, toolkit_args: Sequence[str]) -> None:
    """Run `python -m toolkit <toolkit_args>` as `nproc` ranks on this machine with torchrun's
    launcher (as `torchrun --standalone --nproc-per-node nproc -m toolkit ...` would).

    Rank 0's output goes to this process's stdout. When a rank fails the others are stopped
    and a ToolkitError says which rank failed and why, in one line; Ctrl-C stops every rank
    and raises KeyboardInterrupt, SIGTERM stops them and raises SystemExit(143).
    """
    check_launch(nproc)
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # torchrun's agent logs every step and failure at length; the one line below replaces it.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    logging.getLogger("torch.distributed.launcher").setLevel(logging.CRITICAL)
    log_dir = Path(tempfile.mkdtemp(prefix="toolkit-ranks-"))
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
        rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0,
        monitor_interval=0.1, logs_specs=DefaultLogsSpecs(log_dir=str(log_dir)),
    )
    previous = os.environ.get(LAUNCHER_ENV)
    os.environ[LAUNCHER_ENV] = "1"  # the ranks inherit it
    try:
        elastic_launch(config, sys.executable)("-m", "toolkit", *toolkit_args)
    except ChildFailedError as failed:
        raise ToolkitError(_failure_line(failed, nproc)) from None
    except SignalException as stopped:  # the agent stopped every rank on the way here
        if stopped.sigval == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM) from None  # the shell's status for SIGTERM
        raise KeyboardInterrupt from None
    finally:
        if previous is None:
            os.environ.pop(LAUNCHER_ENV, None)
        else:
            os.environ[LAUNCHER_ENV] = previous
        shutil.rmtree(log_dir, ignore_errors=True)


def _failure_line(failed: Any, nproc: int) -> str:
    """The first rank that failed and its own one-line reason (from its error file), or its
    exit code or signal when it wrote none."""
    reported = []
    for rank, failure in failed.failures.items():
        data = failure.error_file_data if isinstance(failure.error_file_data, dict) else {}
        mine = data.get("toolkit")
        if isinstance(mine, dict) and isinstance(mine.get("line"), str):
            reported.append((float(mine.get("time", 0)), rank, mine["line"]))
    if reported:
        _, rank, line = min(reported)
        return f"rank {rank} of {nproc} failed: {line} (the other ranks were stopped)"
    # The agent stops the survivors with SIGTERM (toolkit run exits 143 on it): a rank that
    # exited by itself came first.
    def stopped(exitcode: int) -> bool:
        return exitcode < 0 or exitcode == 128 + signal.SIGTERM

    rank, failure = min(
        failed.failures.items(), key=lambda item: (stopped(item[1].exitcode), item[1].timestamp, item[0])
    )
    how = (
        f"was killed by {failure.signal_name()}" if failure.exitcode < 0
        else f"exited with code {failure.exitcode}"
    )
    return f"rank {rank} of {nproc} {how} (the other ranks were stopped)"


def child_exit_code(exc: BaseException) -> int:
    """The exit code of a rank that failed with `exc` (2 for a user error, 1 otherwise)."""
    return 2 if isinstance(exc, ToolkitError) else 1

