"""`toolkit tune`: search parameters with Optuna; `--show` prints a study's trials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import INTERRUPTED_EXIT, cli_plugins, sigterm_unwinds
from toolkit.params import parse_assignments


def tune(
    ctx: typer.Context,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset name (a resumed --study knows it).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name (a resumed --study knows it).")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option("--encoder", "-e", help="Encoder name (default onehot).")
    ] = None,
    trials: Annotated[
        int,
        typer.Option("--trials", "-n", help="Trials in the study (at most 10,000); resuming runs the rest."),
    ] = 20,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after this many seconds.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="KEY=VALUE", help="Fix a parameter (repeatable), as for run."),
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option(
            "--space", "-s", metavar="KEY=SPACE",
            help="Search a parameter over low:high, low:high:log, a,b,c or a|b|c (repeatable); replaces "
            "its declared space. `toolkit params --model M` lists each declared space.",
        ),
    ] = None,
    study: Annotated[
        Path | None,
        typer.Option(help="The study's SQLite file: resumed when it exists (default OUTPUT/study.db)."),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="val_accuracy (default), val_macro_f1, val_micro_f1 (multi-label runs) or "
                     "val_loss; validation only."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the split and of every trial (default 0).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder of the study and final run (default tunes/<time>-...)."),
    ] = None,
    final: Annotated[
        bool, typer.Option("--final/--no-final", help="Train the best parameters as a run at the end.")
    ] = True,
    show: Annotated[bool, typer.Option("--show", help="Print the --study file's trials and stop.")] = False,
) -> None:
    r"""Search model and trainer parameters with Optuna, scoring on the validation split.

    Prints one line per trial, then the best parameters as a ready `toolkit run` command,
    and (unless --no-final) trains that run. Ctrl-C ends the study keeping the finished
    trials (exit 130), and in the final run keeps a partly trained run, said so (exit 130).
    SIGTERM stops at once (exit 143), leaving no lock or unfinished run behind; the same
    command resumes the study. Only one `toolkit tune` works on a study at a time. Needs
    Optuna: `pip install -e '.\[tune]'` in toolkit's folder.
    """
    from toolkit import tuning

    if show:
        if study is None:
            raise typer.BadParameter("--show needs --study FILE.", param_hint="--show")
        _print_study(*tuning.show_study(study))
        return
    with sigterm_unwinds():  # the final run's unfinished folder and the study's lock are removed
        result = tuning.tune(
            dataset=dataset, model=model, encoder=encoder, trials=trials, timeout=timeout,
            params=parse_assignments(param or []), space=parse_assignments(space or []), study=study,
            metric=metric, seed=seed, device=device, output=output, plugins=cli_plugins(ctx),
            final=final, echo=lambda line: typer.echo(line, err=True),
        )
    if result.best_value is None:
        typer.echo(f"No trial finished; the study is in {result.study_path}.")
    else:
        metric_name = result.study.user_attrs.get("metric")
        typer.echo(f"Best {metric_name}: {result.best_value:.4f}. Train it with:")
        typer.echo(f"  {result.command}")
    if result.best_run is not None:
        run = result.best_run
        if run.interrupted:
            typer.echo(
                f"INTERRUPTED: the final run completed {run.epochs_completed} of {run.epochs_planned} "
                "epochs; its results are of a partly trained model.", err=True,
            )
        overall = run.report.summary["value"]
        state = " (interrupted)" if run.interrupted else ""
        typer.echo(
            f"Final run{state}: test accuracy {overall['accuracy']:.1%}, "
            f"macro-F1 {overall['macro_f1']:.3f}; saved to {run.run_dir}"
        )
    elif result.final_run_dir is not None:
        typer.echo(f"Final run: kept from before in {result.final_run_dir}")
    typer.echo(f"Study: {result.study_path} (toolkit tune --study {result.study_path} --show)")
    if result.interrupted:
        raise typer.Exit(INTERRUPTED_EXIT)


def _print_study(table: object, importances: dict[str, float]) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_rows", 500):
        typer.echo(table.to_string(index=False) if len(table) else "The study has no trials yet.")
    if importances:
        typer.echo("Parameter importances (Optuna, fANOVA):")
        for name, value in importances.items():
            typer.echo(f"  {name}: {value:.3f}")


def add_to(app: typer.Typer) -> None:
    app.command("tune")(tune)
