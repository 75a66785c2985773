"""The run folder: everything a run produced, in plain, safe formats.

    config.json          every parameter, plugins and versions, seed, split, data provenance
    config.toml          the run as a config file: `toolkit run --config config.toml` repeats it
    model.safetensors    the weights (safetensors: loading it never runs code)
    encoder.json         the encoder's name, parameters and fitted state (its vocabulary)
    labels.json          the class names, in the model's output order
    metrics.json         overall and per-class metrics on the test split; calibration, reliability,
                         abstention and conformal sections (toolkit.calibration)
    calibration.json     the temperature and the calibration texts' conformal scores, used by
                         every prediction (optional: runs written before it existed still load)
    per_class.csv, confusion.csv, history.csv
    mistakes.csv         a few misclassified test texts per confused pair (bounded)
    explain.json         what the model looks at, per class and per confused pair (optional;
                         toolkit.explain_report)
    model.onnx           the model as an ONNX graph, written later by `toolkit export` (optional;
                         toolkit.export, read by `predict --runtime onnx`)
    loss.png, confusion.png, reliability.png, abstention.png, report.html, per_class.md, confusion.md
                         pages for people, drawn by toolkit.rendering (`write_run`'s `render`)

A run folder is claimed (created, with a lock file in it) before training starts, so a
second run on the same folder is refused at once and default names never collide. The files
are written into a fresh private folder inside it and moved into place at the end, config.json
last, so a crashed run never leaves a folder that looks complete.

A run folder may come from someone else, so every read is bounded (`toolkit.limits`), every
write goes through a fresh temporary that is renamed into place (a symlink planted in the
folder is replaced, never followed), and text from the folder is escaped in the HTML report.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError
from toolkit.safe_files import file_mode, read_bounded, shown, write_atomic
from toolkit.safe_files import read_json as _read_json

if TYPE_CHECKING:  # pandas and sklearn load only when a run is written or read in full, so that
    import pandas as pd  # checking a run folder (open_run) takes no time
    import torch

    from toolkit.evaluation import Report

FORMAT_VERSION = 1
CONFIG, WEIGHTS, ENCODER, LABELS, METRICS = (
    "config.json", "model.safetensors", "encoder.json", "labels.json", "metrics.json",
)
PER_CLASS, CONFUSION, HISTORY = "per_class.csv", "confusion.csv", "history.csv"
MISTAKES = "mistakes.csv"  # optional: runs written before it existed still read
CALIBRATION = "calibration.json"  # optional, as mistakes.csv
#: The sections of metrics.json that toolkit.calibration.evaluate_calibration writes.
EVALUATION_SECTIONS = ("calibration", "reliability", "abstention", "conformal", "multi_label")
LOSS_PNG, CONFUSION_PNG, REPORT_HTML = "loss.png", "confusion.png", "report.html"
RELIABILITY_PNG, ABSTENTION_PNG = "reliability.png", "abstention.png"  # optional, as mistakes.csv
REQUIRED = (CONFIG, WEIGHTS, ENCODER, LABELS, METRICS, PER_CLASS, CONFUSION, HISTORY)
#: Every file a run folder may hold that toolkit wrote (the list at the top of this module).
OWN_FILES = frozenset((
    *REQUIRED, MISTAKES, CALIBRATION, "config.toml", "explain.json", "model.onnx", LOSS_PNG, CONFUSION_PNG,
    RELIABILITY_PNG, ABSTENTION_PNG, REPORT_HTML, "per_class.md", "confusion.md",
))
#: The lock file of a run folder being written: its presence refuses a second run at once.
CLAIM = ".toolkit-run.lock"


@dataclass
class RunClaim:
    """A run folder this process has claimed: it holds our lock file until the run is written.
    `created` says whether we made the folder (then a failed run removes it again)."""

    path: Path
    created: bool

    def finish(self) -> None:
        """The run is written: drop the lock."""
        (self.path / CLAIM).unlink(missing_ok=True)

    def release(self) -> None:
        """The run failed: drop the lock, and the folder when we made it and it is empty."""
        self.finish()
        if self.created:
            with contextlib.suppress(OSError):  # not empty: someone else's files, keep them
                self.path.rmdir()


def claim_run_dir(path: str | Path) -> RunClaim:
    """Claim `path` for a new run before any training: create it (or take an existing empty
    folder) and put a lock file in it. A folder with files, or one another run holds, is
    refused with one line, as is a place that cannot be written."""
    path = Path(path)
    _make_parent(path)
    created = True
    try:
        os.mkdir(path)
    except FileExistsError:
        created = False
        if path.is_symlink():
            raise ToolkitError(
                f"output '{shown(path)}' is a symbolic link; give the folder itself or a new one as --output."
            ) from None
        if not path.is_dir():
            raise ToolkitError(
                f"output '{shown(path)}' exists and is not a folder; choose another --output."
            ) from None
        if (path / CLAIM).exists():
            raise _claimed(path) from None
        if any(path.iterdir()):
            raise ToolkitError(
                f"output '{shown(path)}' already exists and is not empty; choose another --output."
            ) from None
    except OSError as exc:
        raise _unwritable(path, exc) from None
    _lock(path, created)
    return RunClaim(path, created)


def claim_default_run_dir(dataset: str, model: str, root: str | Path = "runs") -> RunClaim:
    """Claim runs/<UTC time>-<dataset>-<model>, with -2, -3... when that name is taken: the
    folder is created exclusively, so runs started in the same second never share one."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{dataset}-{model}"
    _make_parent(base)
    for number in range(1, 10_000):
        path = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _unwritable(path, exc) from None
        _lock(path, created=True)
        return RunClaim(path, created=True)
    raise ToolkitError(f"too many runs named '{shown(base)}-N'; give an --output folder.")


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ToolkitError(
            f"cannot create output '{shown(path)}': a part of its path is a file, not a folder; "
            "choose another --output."
        ) from None
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _lock(path: Path, created: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        handle = os.open(path / CLAIM, flags, 0o666)
    except FileExistsError:
        raise _claimed(path) from None  # another run took the empty folder first
    except OSError as exc:
        if created:
            path.rmdir()
        raise _unwritable(path, exc) from None
    with os.fdopen(handle, "w") as lock:
        lock.write(f"{os.getpid()}\n")


def _claimed(path: Path) -> ToolkitError:
    return ToolkitError(
        f"output '{shown(path)}' is being written by another toolkit run (it holds {CLAIM}); "
        "choose another --output, or delete the folder if that run is no longer running."
    )


def _unwritable(path: Path, exc: OSError) -> ToolkitError:
    return ToolkitError(
        f"cannot create output '{shown(path)}' ({exc.strerror or exc}); choose a writable --output."
    )


def write_run(
    target: Path | RunClaim,
    *,
    config: Mapping[str, Any],
    weights: Mapping[str, torch.Tensor],
    encoder: Mapping[str, Any],
    classes: Sequence[str],
    report: Report,
    history: pd.DataFrame,
    mistakes: pd.DataFrame,
    render: Callable[[RunRecord], object] | None = None,
    files: Mapping[str, str] | None = None,
    calibration: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
) -> Path:
    """Write a run folder into `target` (a path, or a folder claimed before training).

    `config` is what config.json records about the run (its "training" section, how training
    ended, goes into metrics.json too; the format version, toolkit version and time are added
    here); `weights` the model's state dict; `encoder` its name, parameters and fitted state;
    `classes` the class names in the model's output order; `report` the test evaluation;
    `history` a row per epoch; `mistakes` example misclassified texts (see
    `toolkit.evaluation.confused_examples`). `render(record)` may add pages (plots, HTML)
    to the folder before it is moved into place; `files` are more text files by name (the
    run's config.toml). `calibration` is what calibration.json holds
    (`Calibration.to_json`), `evaluation` the sections it adds to metrics.json
    (`toolkit.calibration.evaluate_calibration`).

    The files are written in a fresh private folder inside it and moved into place, config.json
    last; on any failure (or SIGTERM turned into SystemExit) everything written is removed.
    """
    from safetensors.torch import save_file

    from toolkit import __version__

    claim = target if isinstance(target, RunClaim) else claim_run_dir(target)
    path = claim.path
    try:
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=path))
    except BaseException:
        claim.release()
        raise
    moved: list[str] = []
    try:
        recorded = {
            "format_version": FORMAT_VERSION, "toolkit_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"), **config,
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
        save_file(tensors, staging / WEIGHTS, metadata={"format": "toolkit", "format_version": "1"})
        _write_json(staging / ENCODER, dict(encoder))
        _write_json(staging / LABELS, list(classes))
        _write_json(staging / CONFIG, recorded)
        _write_json(staging / METRICS, {**report.metrics(), **(evaluation or {}),
                                        "training": recorded.get("training", {})})
        if calibration is not None:
            _write_json(staging / CALIBRATION, dict(calibration))
        _write_text(staging / PER_CLASS, report.per_class.to_csv())
        _write_text(staging / CONFUSION, report.confusion.to_csv())
        _write_text(staging / HISTORY, history.to_csv(index=False))
        _write_text(staging / MISTAKES, mistakes.to_csv(index=False))
        for name, text in (files or {}).items():
            _write_text(staging / name, text)
        if render is not None:
            render(RunRecord(staging, recorded, report, history, mistakes, folder=path,
                             evaluation=dict(evaluation or {})))
        for name in sorted(os.listdir(staging), key=lambda n: n == CONFIG):  # config.json last
            os.chmod(staging / name, file_mode())  # the same for every file, weights included
            os.replace(staging / name, path / name)
            moved.append(name)
        staging.rmdir()
        claim.finish()
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if CONFIG not in moved:  # a run is all or nothing
            for name in moved:
                (path / name).unlink(missing_ok=True)
        claim.release()
        if isinstance(exc, OSError) or type(exc).__name__ == "SafetensorError":  # e.g. a full disk
            reason = getattr(exc, "strerror", None) or " ".join(str(exc).split())[:200]
            raise ToolkitError(
                f"cannot write the run folder '{shown(path)}' ({shown(reason)}); the trained model was "
                "not saved and nothing of it was left there. Free some space or choose another --output."
            ) from None
        raise
    return path


@dataclass(frozen=True)
class RunRecord:
    """A run folder read back: its config, test report, training history and example
    mistakes (None for runs written before mistakes.csv existed). While a run is being
    written, `path` is the private folder its files go to and `folder` the run's own folder."""

    path: Path
    config: dict[str, Any]
    report: Report
    history: pd.DataFrame
    mistakes: pd.DataFrame | None = None
    folder: Path | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)  # metrics.json's calibration sections

    @property
    def name(self) -> str:
        """The run's name: its own folder's, never the private one its files are written in."""
        return (self.folder or self.path).name


def incomplete_run(folder: Path, missing: str) -> ToolkitError:
    """The one line for a run folder that lacks `missing` (its files, said in words)."""
    return ToolkitError(
        f"'{shown(folder)}' is not a complete toolkit run folder (missing {missing}); copy the run "
        "folder whole, or train it again."
    )


def open_run(path: str | Path, required: Sequence[str] = REQUIRED) -> tuple[Path, dict[str, Any]]:
    """Check that `path` is a run folder with the `required` files and a config.json of this
    format version; return the folder and its config."""
    folder = Path(path)
    if folder.is_file():
        raise ToolkitError(
            f"'{shown(folder)}' is a file, not a run folder; give a folder made by `toolkit run`."
        )
    if not folder.is_dir():
        raise ToolkitError(
            f"run folder '{shown(folder)}' does not exist; give a folder made by `toolkit run`."
        )
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise incomplete_run(folder, ", ".join(missing))
    config = read_json(folder / CONFIG)
    found = config.get("format_version") if isinstance(config, dict) else None
    if found != FORMAT_VERSION:
        raise ToolkitError(
            f"run folder '{shown(folder)}' has format version {shown(repr(found))[:40]}; this "
            f"toolkit reads version {FORMAT_VERSION}."
        )
    return folder, config


#: Class names are read back as written: "1" stays a string, "NA" and "None" are not missing.
_EXACT: dict[str, Any] = {"keep_default_na": False, "na_values": [""]}


def read_run(path: str | Path) -> RunRecord:
    """Read a run folder's config, metrics and tables, checking that it is complete."""
    import pandas as pd

    from toolkit.evaluation import Report

    folder, config = open_run(path)
    metrics = read_json(folder / METRICS)
    try:
        summary = pd.DataFrame({"value": metrics["summary"]})
        summary.index.name = "metric"
        per_class = pd.read_csv(
            _table(folder / PER_CLASS), index_col="class", dtype={"class": str, "confused_with": str},
            **_EXACT,
        )
        confusion = pd.read_csv(_table(folder / CONFUSION), index_col="true", dtype={"true": str}, **_EXACT)
        confusion.columns.name = "predicted"
        confusion = confusion.apply(pd.to_numeric)
        history = pd.read_csv(_table(folder / HISTORY))
        for column in ("epoch", "train_loss", "val_loss"):
            history[column] = pd.to_numeric(history[column])
        mistakes = None
        if (folder / MISTAKES).is_file():
            mistakes = pd.read_csv(
                _table(folder / MISTAKES), dtype={"true": str, "predicted": str, "text": str, "extra": str,
                                                  "missing": str}, **_EXACT,
            )
            # a multi-label run's mistakes also name their wrong extra and missing labels
            wanted = ["true", "predicted", "text", "probability"]
            mistakes = mistakes[wanted + [c for c in ("extra", "missing") if c in mistakes.columns]]
    except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ToolkitError(
            f"run folder '{shown(folder)}' has a malformed table or metrics file "
            f"({shown(type(exc).__name__)}: {shown(exc)[:200]})."
        ) from None
    totals = confusion.sum(axis=1).replace(0, 1)
    normalized = confusion.div(totals, axis=0)
    report = Report(summary, per_class, confusion, normalized)
    evaluation = {k: metrics[k] for k in EVALUATION_SECTIONS if isinstance(metrics, dict) and k in metrics}
    return RunRecord(folder, config, report, history, mistakes, evaluation=evaluation)


def _table(path: Path) -> io.BytesIO:
    return io.BytesIO(read_bounded(path))


def read_json(path: Path) -> Any:
    """A run-folder JSON file, bounded in size and depth (see `toolkit.limits`)."""
    return _read_json(path)


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text)


def _write_json(path: Path, value: Any) -> None:
    _write_text(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
