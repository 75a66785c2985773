"""`toolkit rerun RUN`: train a run again from its folder's record and compare the results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import cli_plugins


def rerun(
    ctx: typer.Context,
    run: Annotated[Path, typer.Argument(help="A run folder made by `toolkit run`.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The new run folder (default runs/<time>-<dataset>-<model>)."),
    ] = None,
    allow_data_change: Annotated[
        bool,
        typer.Option(
            "--allow-data-change", help="Train even when the data's files differ from the recorded ones."
        ),
    ] = False,
    track: Annotated[
        list[str] | None,
        typer.Option("--track", metavar="TRACKER", help="Log the run to a tracker, as for `toolkit run`."),
    ] = None,
) -> None:
    """Train a run again from its recorded parameters, plugins and data, and say whether the
    test metrics equal the original's.

    A file plugin must have the SHA-256 the run recorded, and the data files the recorded
    checksums (--allow-data-change goes on with changed data).
    """
    from toolkit.rerunning import rerun as rerun_run

    done = rerun_run(run, output, allow_data_change, cli_plugins(ctx), track=track or ())
    result = done.result
    typer.echo(
        f"Trained {result.plan.model.name} on {result.plan.dataset.name} again in "
        f"{result.train_seconds:.1f} s on {result.device}: {result.stop_reason}."
    )
    if done.changed_data:
        typer.echo(f"The data changed since the original run: {', '.join(done.changed_data)}.")
    if done.equal:
        weights = "and the same weights" if done.same_weights else "but different weights"
        typer.echo(f"Test metrics equal the original's exactly ({weights}).")
    else:
        typer.echo("Test metrics differ from the original's:")
        for name, (before, after) in done.metric_differences.items():
            change = f"{after - before:+.6g}" if before is not None else "new"
            typer.echo(f"  {name}: {_number(before)} -> {_number(after)} ({change})")
    for name, (then, now) in done.version_differences.items():
        typer.echo(f"Note: the original ran with {name} {then}, this with {now}; results may differ.")
    typer.echo(f"Run saved to {result.run_dir}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def add_to(app: typer.Typer) -> None:
    app.command("rerun")(rerun)
