"""`toolkit run`: train a model on a dataset and evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit import api
from toolkit.cli.common import INTERRUPTED_EXIT, cli_plugins, print_report, sigterm_unwinds
from toolkit.params import parse_assignments


def run(
    ctx: typer.Context,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset name (toolkit datasets).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help=f"Model name (toolkit models); default {api.DEFAULT_MODEL}."),
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder", "-e", help=f"Encoder name (toolkit encoders); default {api.DEFAULT_ENCODER}."
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="KEY=VALUE",
            help="Set a parameter, e.g. model.hidden_size=256 or train.epochs=5 (repeatable). "
            "Groups: dataset, encoder, model, split, train; a bare name works when unambiguous.",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed, 0 to 2**32 - 1: same seed, same run (default 0).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto (the default), cpu, cuda or mps.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run folder (default runs/<time>-<dataset>-<model>)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", metavar="FILE",
            help="A run config file (TOML; every run folder holds one, config.toml). Flags given "
            "beside it win.",
        ),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init", metavar="RUN",
            help="Start from this run folder's model and encoder (a warm start) instead of from "
            "scratch; classes it was not trained on need --param train.new_classes=add.",
        ),
    ] = None,
    track: Annotated[
        list[str] | None,
        typer.Option(
            "--track", metavar="TRACKER",
            help="Log the run to a tracker: mlflow (pip install -e '.[mlflow]'; to "
            "MLFLOW_TRACKING_URI, default ./mlruns). Repeatable.",
        ),
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            help="Train data-parallel in this many processes on this machine (torchrun's launcher; "
            "gloo on the CPU, nccl on GPUs). For several machines use torchrun; see docs/scale.md.",
        ),
    ] = 1,
) -> None:
    """Train a model on a dataset, evaluate it on the held-out split, save the run.

    Ctrl-C stops training and saves what was learned, marked as interrupted; the command then
    exits with status 130. SIGTERM stops at once and removes the unfinished run folder (143).
    With --nproc N (or under torchrun), Ctrl-C stops every rank; rank 0 saves the interrupted
    run when it can, and the last line says whether it did. SIGTERM to the launcher stops every
    rank and leaves no run folder (143).
    """
    params = parse_assignments(param or [])
    names = {"dataset": dataset, "model": model, "encoder": encoder, "seed": seed, "device": device,
             "config": config, "init": init}
    tracking = {"track": track} if track else {}
    if nproc != 1:
        _launch(ctx, nproc, names, param or [], params, output, track or [])
        return  # rank 0 printed the results
    from toolkit import distributed

    try:
        with sigterm_unwinds(), distributed.recording_failure():
            result = api.run(**names, **tracking, params=params, output=output, plugins=cli_plugins(ctx))
    except Exception as exc:
        if distributed.under_torchrun() and distributed.launcher_reports():
            raise typer.Exit(distributed.child_exit_code(exc)) from None  # the launcher says why
        raise
    if result.world_size > 1 and result.run_dir is None:
        return  # a rank other than 0: rank 0 prints
    if result.interrupted:
        typer.echo(
            f"INTERRUPTED: {result.epochs_completed} of {result.epochs_planned} epochs completed; "
            "the results below are of a partly trained model."
        )
    typer.echo(
        f"Trained {result.plan.model.name} on {result.plan.dataset.name} "
        f"({result.split.sizes()['train']:,} training texts) in {result.train_seconds:.1f} s "
        f"on {result.device}: {result.stop_reason}."
    )
    print_warm_start(result)
    if result.truncated_texts:
        max_length = result.plan.params["train"]["max_length"]
        typer.echo(
            f"{result.truncated_texts:,} texts were longer than {max_length:,} characters and were "
            "cut to that length (train.max_length)."
        )
    print_report(result.report)
    overall = result.report.summary["value"]
    if result.multi_label is not None:
        typer.echo(
            f"Test ({len(result.test_targets):,} texts, multi-label): micro-F1 {overall['micro_f1']:.3f}, "
            f"macro-F1 {overall['macro_f1']:.3f}, subset accuracy {overall['subset_accuracy']:.1%}"
        )
    else:
        typer.echo(
            f"Test ({len(result.test_targets):,} texts): accuracy {overall['accuracy']:.1%}, "
            f"macro-F1 {overall['macro_f1']:.3f}"
        )
    typer.echo(f"Run saved to {result.run_dir}")
    if result.interrupted:
        typer.echo(f"Run interrupted: {result.stop_reason}.", err=True)
        raise typer.Exit(INTERRUPTED_EXIT)


def _launch(
    ctx: typer.Context, nproc: int, names: dict[str, Any], pairs: list[str], params: dict[str, str],
    output: Path | None, track: list[str],
) -> None:
    """Run this command as `nproc` ranks (torchrun's launcher), after checking it here."""
    from toolkit.distributed import check_launch, launch
    from toolkit.rundir import CONFIG, claim_default_run_dir, claim_run_dir

    # fail early, here, before a run folder (or the runs folder holding it) is made
    check_launch(nproc)
    plan = api.plan_run(**names, params=params, output=output, plugins=cli_plugins(ctx), track=track)
    # The run folder, claimed here so a taken one is refused before any rank starts, then left
    # empty and unlocked for rank 0 to claim and fill.
    claim = (
        claim_run_dir(output) if output is not None
        else claim_default_run_dir(plan.dataset.name, plan.model.name)
    )
    claim.finish()
    args = [item for plugin in cli_plugins(ctx) for item in ("--plugin", plugin)]
    args += ["run", "--output", str(claim.path)]
    args += [item for key, value in names.items() if value is not None for item in (f"--{key}", str(value))]
    args += [item for pair in pairs for item in ("--param", pair)]
    args += [item for tracker in track for item in ("--track", tracker)]
    try:
        launch(nproc, args)
    except KeyboardInterrupt:
        if (claim.path / CONFIG).is_file():  # rank 0 took the Ctrl-C too and saved what it learned
            typer.echo(f"Interrupted: every rank was stopped; rank 0 saved the interrupted run to "
                       f"{claim.path}.", err=True)
        else:
            typer.echo("Interrupted: every rank was stopped; no run folder was written.", err=True)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    finally:
        if claim.created and claim.path.is_dir() and not any(claim.path.iterdir()):
            claim.path.rmdir()  # a failed job leaves no empty folder behind


def print_warm_start(result: api.RunResult) -> None:
    """What a warm-started run began from, and characters its encoder could not read."""
    start = result.warm_start
    if start is None:
        return
    added = f"; classes added: {', '.join(start.added_classes)}" if start.added_classes else ""
    typer.echo(f"Started from run {start.run} ({len(start.classes)} classes{added}).")
    if start.texts_with_unknown_characters:
        count = start.texts_with_unknown_characters
        texts = f"{count:,} training text holds" if count == 1 else f"{count:,} training texts hold"
        typer.echo(
            f"Note: {texts} characters the --init run's encoder does not know "
            f"({start.unknown_characters!r}); it reads them as unknown."
        )


def add_to(app: typer.Typer) -> None:
    app.command("run")(run)
