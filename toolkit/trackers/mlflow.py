"""`--track mlflow`: log a run to MLflow (the `mlflow` extra: pip install -e '.[mlflow]').

Where to: MLFLOW_TRACKING_URI, else MLflow's own default (a local `mlflow.db` SQLite store
in the current folder for MLflow 3); the experiment MLFLOW_EXPERIMENT_NAME, else "toolkit".
Logged: every parameter (`model.hidden_size`...) with the names, seed and data source; per
epoch `train_loss`, `train_accuracy`, `val_loss`, `val_accuracy` and `lr`; the test metrics
(`test_accuracy`, `test_macro_f1`...); and the run folder as the run's artifacts.

MLflow is imported only when a run starts, so loading this plugin costs nothing.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import toolkit

EXPERIMENT = "toolkit"
#: History columns logged per epoch, under MLflow's names.
EPOCH_METRICS = {"train_loss": "train_loss", "train_acc": "train_accuracy", "val_loss": "val_loss",
                 "val_acc": "val_accuracy", "lr": "lr"}
#: MLflow's limit of parameters in one log_batch call.
_BATCH = 100
_RUNS: dict[int, tuple[Any, str]] = {}  # id(plan) -> (client, MLflow run id)


@toolkit.hookimpl
def run_started(plan: Any) -> None:
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    # MLflow's own INFO lines (creating and upgrading its database) are not the run's output
    quiet = logging.getLogger("mlflow")
    quiet.setLevel(max(quiet.getEffectiveLevel(), logging.WARNING))
    client = MlflowClient()  # MLFLOW_TRACKING_URI, or MLflow's default
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    tags = {"toolkit.dataset": plan.dataset.name, "toolkit.model": plan.model.name,
            "toolkit.encoder": plan.encoder.name}
    run = client.create_run(experiment_id, run_name=plan.output.name if plan.output else None, tags=tags)
    values = {"dataset": plan.dataset.name, "model": plan.model.name, "encoder": plan.encoder.name,
              "seed": plan.seed, "init": str(plan.init) if plan.init else None}
    values |= {f"{group}.{key}": value for group, params in plan.params.items()
               for key, value in params.items()}
    params = [Param(key, str(value)[:6000]) for key, value in values.items() if value is not None]
    for start in range(0, len(params), _BATCH):
        client.log_batch(run.info.run_id, params=params[start:start + _BATCH])
    _RUNS[id(plan)] = (client, run.info.run_id)


@toolkit.hookimpl
def epoch_ended(plan: Any, epoch: Mapping[str, Any]) -> None:
    from mlflow.entities import Metric

    if id(plan) not in _RUNS:
        return
    client, run_id = _RUNS[id(plan)]
    now, step = int(time.time() * 1000), int(epoch["epoch"])
    metrics = [Metric(name, float(epoch[column]), now, step) for column, name in EPOCH_METRICS.items()
               if _finite(epoch.get(column))]
    client.log_batch(run_id, metrics=metrics)


@toolkit.hookimpl
def run_ended(plan: Any, run_dir: Path, result: Any) -> None:
    from mlflow.entities import Metric

    if id(plan) not in _RUNS:
        return
    client, run_id = _RUNS.pop(id(plan))
    now = int(time.time() * 1000)
    summary = result.report.summary["value"] if result.report is not None else {}
    metrics = [Metric(f"test_{name}", float(value), now, 0)
               for name, value in summary.items() if _finite(value)]
    client.log_batch(run_id, metrics=metrics)
    client.set_tag(run_id, "toolkit.stop_reason", result.stop_reason)
    client.set_tag(run_id, "toolkit.interrupted", str(result.interrupted).lower())
    client.log_artifacts(run_id, str(run_dir))
    client.set_terminated(run_id, "KILLED" if result.interrupted else "FINISHED")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@toolkit.hookimpl
def run_failed(plan: Any, error: BaseException) -> None:
    if id(plan) not in _RUNS:
        return
    client, run_id = _RUNS.pop(id(plan))
    client.set_tag(run_id, "toolkit.error", f"{type(error).__name__}: {error}"[:5000])
    client.set_terminated(run_id, "FAILED")
