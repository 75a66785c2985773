"""`toolkit explain`: which characters made the answer, and the smallest edit that changes it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from toolkit.cli.common import RunOption, StdoutConsole, load_predictor, refuse_unreadable, say_cut
from toolkit.safe_files import shown

if TYPE_CHECKING:  # torch loads only when the command runs
    from toolkit.explain import Explanation

#: Characters named in the "most" line of the terminal output.
STRONGEST = 3


def explain(
    ctx: typer.Context,
    run: RunOption,
    texts: Annotated[list[str], typer.Argument(help="Texts to explain.", metavar="TEXT")],
    label: Annotated[
        str | None,
        typer.Option("--class", "-c", help="Explain this class, not the top one (the flip makes it the top).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of coloured text.")] = False,
) -> None:
    """Why the model says what it says: each character's share (occlusion: the class's
    log-probability lost when it is removed or replaced; 0 for characters the normalisation
    drops), and the smallest one- or two-character edit that changes the answer, re-predicted."""
    predictor = load_predictor(ctx, run)
    explanations = predictor.explain(texts, label)
    unreadable = [e.text for e in explanations if not e.label]
    refuse_unreadable(unreadable, (predictor.config.get("provenance") or {}).get("normalization"))
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in explanations], indent=2, ensure_ascii=False))
    else:
        console = StdoutConsole(highlight=False)
        for explanation in explanations:
            _print(console, explanation)
    # what lies past train.max_length has no share: the model never reads it
    cut_before = predictor.truncated
    predictor.prepare(texts)
    say_cut(predictor.truncated - cut_before, predictor.max_length)


def _print(console: StdoutConsole, explanation: Explanation) -> None:
    """The text with each character on a background as strong as its score (green raises the
    class, red lowers it), the strongest characters, the flip and any n-grams."""
    assert explanation.probability is not None
    scores = [score for _, score in explanation.attributions]
    scale = max((abs(s) for s in scores), default=0.0) or 1.0
    line = Text("> ")
    for char, score in explanation.attributions:
        line.append(shown(char) if char.isprintable() else "�", style=_style(score / scale))
    line.append(f"  {shown(explanation.label)} ({explanation.probability:.1%})", style="bold")
    console.print(line)
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:STRONGEST]
    strongest = ", ".join(f"{shown(explanation.attributions[i][0])!r} {scores[i]:+.2f}"
                          for i in ranked if scores[i] >= 0.005)
    console.print(Text(f"  most for {shown(explanation.label)}: {strongest or 'no character'}"))
    flip = explanation.flip
    if flip is None:
        console.print(Text("  flip: no edit of one or two characters changes the answer"))
    else:
        how = "; then ".join(edit.describe() for edit in flip.edits)
        console.print(Text(f"  flip: {shown(how)} -> '{shown(flip.text)}' is {shown(flip.label)} "
                           f"({flip.probability:.1%})"))
    if explanation.ngrams:
        shares = ", ".join(f"{'word ' if n.kind == 'word' else ''}{shown(n.ngram)!r} {n.score:+.2f}"
                           for n in explanation.ngrams)
        console.print(Text(f"  n-grams (exact shares of the logit; word: a word n-gram, else characters): "
                           f"{shares}"))


def _style(weight: float) -> str:
    """A background from white (0) to green (1) or red (-1), black text on it."""
    level = min(abs(weight), 1.0)
    far = round(255 - 155 * level)
    color = f"rgb({far},255,{far})" if weight >= 0 else f"rgb(255,{far},{far})"
    return f"black on {color}"


def add_to(app: typer.Typer) -> None:
    app.command("explain")(explain)
