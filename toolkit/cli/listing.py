"""`toolkit models`, `toolkit encoders` and `toolkit params`: what can be run, and how."""

from __future__ import annotations

from typing import Annotated

import typer

from toolkit.cli.common import param_line, print_specs, registry_from


def models(ctx: typer.Context) -> None:
    """List the models, with their parameters and what they consume."""
    print_specs("model", ctx)


def encoders(ctx: typer.Context) -> None:
    """List the encoders, with their parameters and what they produce."""
    print_specs("encoder", ctx)


def params(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Also list this dataset's.")] = None,
    encoder: Annotated[str | None, typer.Option("--encoder", "-e", help="Also list this encoder's.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Also list this model's.")] = None,
) -> None:
    """List what `--param GROUP.NAME=VALUE` sets: split.* and train.*, and with --dataset,
    --encoder or --model, that part's parameters."""
    from toolkit.splits import SPLIT_PARAMS
    from toolkit.train_config import TRAIN_PARAMS

    registry = registry_from(ctx)
    trainer = TRAIN_PARAMS
    if model is not None:
        from toolkit.api import train_params

        trainer = train_params(registry.model(model))  # with the model's own trainer defaults
    groups = [("split", "how the data is split", SPLIT_PARAMS), ("train", "the trainer", trainer)]
    for kind, name in (("dataset", dataset), ("encoder", encoder), ("model", model)):
        if name is not None:
            groups.insert(len(groups) - 2, (kind, f"{kind} '{name}'", registry.get(kind, name).params))
    for group, owner, declared in groups:
        typer.echo(f"{group}.* ({owner}):")
        for param in declared:
            typer.echo(param_line(param))
        if not declared:
            typer.echo("    (no parameters)")


def add_to(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("encoders")(encoders)
    app.command("params")(params)
