"""`toolkit run`: train a model on a dataset and evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit import api
from toolkit.cli.common import INTERRUPTED_EXIT, cli_plugins, print_report, sigterm_unwinds
from toolkit.params import parse_assignments


def run(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name (toolkit datasets).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (toolkit models).")] = (
        "scratch-rnn"
    ),
    encoder: Annotated[
        str, typer.Option("--encoder", "-e", help="Encoder name (toolkit encoders).")
    ] = api.DEFAULT_ENCODER,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", metavar="KEY=VALUE",
            help="Set a parameter, e.g. model.hidden_size=256 or train.epochs=5 (repeatable). "
            "Groups: dataset, encoder, model, split, train; a bare name works when unambiguous.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed, 0 to 2**32 - 1: same seed, same run.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run folder (default runs/<time>-<dataset>-<model>)."),
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
    if nproc != 1:
        _launch(ctx, nproc, dataset, model, encoder, param or [], params, seed, device, output)
        return  # rank 0 printed the results
    from toolkit import distributed

    try:
        with sigterm_unwinds(), distributed.recording_failure():
            result = api.run(
                dataset=dataset, model=model, encoder=encoder, params=params, seed=seed,
                device=device, output=output, plugins=cli_plugins(ctx),
            )
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
    if result.truncated_texts:
        max_length = result.plan.params["train"]["max_length"]
        typer.echo(
            f"{result.truncated_texts:,} texts were longer than {max_length:,} characters and were "
            "cut to that length (train.max_length)."
        )
    print_report(result.report)
    overall = result.report.summary["value"]
    typer.echo(
        f"Test ({len(result.test_targets):,} texts): accuracy {overall['accuracy']:.1%}, "
        f"macro-F1 {overall['macro_f1']:.3f}"
    )
    typer.echo(f"Run saved to {result.run_dir}")
    if result.interrupted:
        typer.echo(f"Run interrupted: {result.stop_reason}.", err=True)
        raise typer.Exit(INTERRUPTED_EXIT)


def _launch(
    ctx: typer.Context, nproc: int, dataset: str, model: str, encoder: str, pairs: list[str],
    params: dict[str, str], seed: int, device: str, output: Path | None,
) -> None:
    """Run this command as `nproc` ranks (torchrun's launcher), after checking it here."""
    from toolkit.distributed import launch
    from toolkit.rundir import CONFIG, claim_default_run_dir, claim_run_dir

    api.plan_run(dataset, model, encoder, params, seed, device, output, cli_plugins(ctx))  # fail early
    # The run folder, claimed here so a taken one is refused before any rank starts, then left
    # empty and unlocked for rank 0 to claim and fill.
    claim = claim_run_dir(output) if output is not None else claim_default_run_dir(dataset, model)
    claim.finish()
    args = [item for plugin in cli_plugins(ctx) for item in ("--plugin", plugin)]
    args += ["run", "--dataset", dataset, "--model", model, "--encoder", encoder,
             "--seed", str(seed), "--device", device, "--output", str(claim.path)]
    args += [item for pair in pairs for item in ("--param", pair)]
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


def add_to(app: typer.Typer) -> None:
    app.command("run")(run)
