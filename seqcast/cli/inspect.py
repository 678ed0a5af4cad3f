"""Commands that inspect: models and info. Each makes one library call and renders what it returns."""

import typer

from . import command, options, render
from .options import Json
from .output import Output, to_json


@command(name="models")
def models_command(ctx: typer.Context, json_out: Json = False) -> None:
    """List the registered models, one line each, with their hyperparameters."""
    out: Output = ctx.obj
    from ..build import catalogue

    entries = catalogue()
    if json_out:
        out.emit(to_json(entries), "-")
        return
    out.lines([line for entry in render.model_lines(entries) for line in entry.split("\n")])
    out.say("parameters counted at lookback 96, horizon 24, one channel")
    out.say(render.auto_line())


@command()
def info(ctx: typer.Context, checkpoint_path: options.CkptOrOnnx, json_out: Json = False) -> None:
    """Show what a checkpoint holds: model, hyperparameters, data schema, scaling, training, versions
    (and, for a .onnx model, how it was exported)."""
    out: Output = ctx.obj
    from .. import edge
    from ..checkpoint import FORMAT_VERSION, load, to_meta

    if edge.is_onnx(checkpoint_path):
        opened = edge.open_model(checkpoint_path)
        document, lines = render.onnx_info(opened, edge.forecaster(opened, str(checkpoint_path), record=True),
                                           FORMAT_VERSION)
    else:
        document, lines = render.checkpoint_info(load(checkpoint_path), FORMAT_VERSION, to_meta)
    if json_out:
        out.emit(to_json(document), "-")
    else:
        out.lines(lines)
