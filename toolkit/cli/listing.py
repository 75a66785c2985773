"""`toolkit plugins`, `toolkit datasets`, `toolkit models`, `toolkit encoders`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli import new_typer, registry_from
from toolkit.params import Param
from toolkit.types import ModelSpec


def _param_line(param: Param) -> str:
    facts = [f"{param.type.__name__}, default {param.default!r}"]
    if param.choices:
        facts.append(f"one of {', '.join(map(str, param.choices))}")
    if param.range_text():
        facts.append(str(param.range_text()))
    if param.search is not None:
        values = param.search.values
        every = values is not None and set(values) == set(param.choices or (False, True))
        facts.append("tune tries each" if every else f"tune searches {param.search}")
    return f"    {param.name} ({'; '.join(facts)}): {param.help}"


def _print_specs(kind: str, ctx: typer.Context) -> None:
    registry = registry_from(ctx)
    specs = registry.specs[kind]
    if not specs:
        typer.echo(f"No {kind}s are registered.")
        return
    for name in sorted(specs):
        spec = specs[name]
        owner = registry.owner(kind, name)
        typer.echo(f"{name}: {spec.help}")
        typer.echo(f"  plugin: {owner.name}")
        if kind == "model":
            assert isinstance(spec, ModelSpec)
            typer.echo(f"  consumes: {', '.join(spec.consumes)}")
            if spec.train_defaults:
                defaults = ", ".join(f"{k}={v!r}" for k, v in spec.train_defaults.items())
                typer.echo(f"  trainer defaults: {defaults}")
        if kind == "encoder":
            typer.echo(f"  produces: {spec.produces}")
        if spec.params:
            typer.echo("  parameters:")
            for param in spec.params:
                typer.echo(_param_line(param))
        else:
            typer.echo("  parameters: none")


plugins_app = new_typer(help="Loaded plugins, and tools for writing them.")
datasets_app = new_typer(help="List, inspect and download datasets.")


@plugins_app.callback(invoke_without_command=True)
def plugins(ctx: typer.Context) -> None:
    """List every loaded plugin, where it came from, and what it registers."""
    if ctx.invoked_subcommand is not None:
        return
    for info in registry_from(ctx).plugins:
        origin = info.source
        if info.distribution:
            origin += f", {info.distribution} {info.version or ''}".rstrip()
        typer.echo(f"{info.name} ({origin})")
        if info.path:
            typer.echo(f"  file: {info.path}" + (f" (sha256 {info.sha256})" if info.sha256 else ""))
        if info.disabled:
            typer.echo("  disabled")
        elif info.error:
            typer.echo(f"  FAILED: {info.error}")
        elif info.provides:
            typer.echo(f"  provides: {', '.join(info.provides)}")
        else:
            typer.echo("  provides: only commands or nothing")


@plugins_app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The plugin's name, also its model's (e.g. charcnn).")
    ],
    directory: Annotated[
        Path, typer.Option("--directory", "-d", help="Where to create toolkit-NAME/.")
    ] = Path("."),
) -> None:
    """Write a plugin skeleton (a model and a demo dataset) to install and run at once."""
    from toolkit.scaffold import new_plugin

    target = new_plugin(name, directory, registry_from(ctx))
    typer.echo(f"Created {target}. Next:")
    typer.echo(f"  pip install -e {target}")
    typer.echo(f"  toolkit run --dataset {name}-demo --model {name}")
    typer.echo("Then edit its model.py and data.py; docs/writing-plugins.md explains each part.")


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context) -> None:
    """List the datasets, with their parameters."""
    if ctx.invoked_subcommand is None:
        _print_specs("dataset", ctx)


def models(ctx: typer.Context) -> None:
    """List the models, with their parameters and what they consume."""
    _print_specs("model", ctx)


def encoders(ctx: typer.Context) -> None:
    """List the encoders, with their parameters and what they produce."""
    _print_specs("encoder", ctx)


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
            typer.echo(_param_line(param))
        if not declared:
            typer.echo("    (no parameters)")


def add_to(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
    app.add_typer(datasets_app, name="datasets")
    app.command("models")(models)
    app.command("encoders")(encoders)
    app.command("params")(params)
