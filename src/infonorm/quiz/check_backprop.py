"""`infonorm check-backprop FILE.py`: a backward pass written by hand, checked line by line.

The file is a derivation (see `infonorm.backprop`): inputs with their axes, the forward as
named steps, the backward as adjoint updates in order, each under the text it was printed
as. Every line is checked alone against autograd's contribution of the edge it claims, then
the lines run in order; exit 0 when every line holds, 1 when one does not, 2 when the file
cannot be checked (one line on stderr naming the file's line). The file is run as Python.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

EXIT_HOLDS, EXIT_DOES_NOT_HOLD, EXIT_BAD_FILE = 0, 1, 2
HELP = "check a backward pass written by hand, line by line, against autograd"
DESCRIPTION = (
    "Check each adjoint update of a derivation file alone against autograd's contribution "
    "of the edge it claims (float64, several random draws, at the forward's values and off "
    "them), then the updates run in order, and finite differences of the whole. Exit 0 when "
    "every line holds, 1 when one does not, 2 when the file cannot be checked. FILE.py is "
    "user code, run as Python with your permissions: this is not a sandbox; check only files "
    "you would run. Format and examples: examples/backprop/ and `help(infonorm.backprop)`."
)


def add_parser(commands: Any) -> None:
    """The subcommand's arguments, on the `infonorm` parser's subcommands."""
    parser = commands.add_parser("check-backprop", help=HELP, description=DESCRIPTION)
    parser.add_argument("file", type=Path, metavar="FILE.py", help="the derivation file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--draws", type=_whole(1), default=3, metavar="N", help="random draws (default 3)"
    )
    parser.add_argument("--seed", type=_whole(0), default=0, metavar="N", help="random seed (0)")


def _whole(least: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected a number >= {least}, got {value}")
        return value

    return parse


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm import backprop

    try:
        report = backprop.check(args.file, draws=args.draws, seed=args.seed)
    except backprop.DerivationError as error:
        print(f"infonorm: error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_BAD_FILE
    if args.json:
        print(json.dumps(_json_safe(report.to_dict()), indent=1, ensure_ascii=False))
    else:
        _print(report, Console(highlight=False, soft_wrap=True))
    return EXIT_HOLDS if report.holds else EXIT_DOES_NOT_HOLD


def _json_safe(value: Any) -> Any:
    """JSON without NaN or infinity: a non-finite number (a shape that does not fit) is null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + (", …]" if len(value) > 3 else "]")
    return str(value)


def _print(report, console: Console) -> None:
    d = report.derivation
    name = Path(d.path).name
    console.print(
        f"[bold]{escape(d.path)}[/]: {len(report.lines)} lines, each checked alone on "
        f"{len(report.draws)} draws (float64), at the forward's values and off them"
    )
    for line in report.lines:
        _print_line(line, name, console)
    chain = report.chain
    if chain.holds:
        verdict = f"[green]give[/] autograd's adjoints (error {max(chain.errors.values()):.2g})"
    else:
        verdict = "[yellow]do not give[/] autograd's adjoints: " + ", ".join(
            f"{n}.grad off by {e:.3g}" for n, e in chain.errors.items() if e > chain.tolerances[n]
        )
    console.print(f"\n[bold]lines in order[/] (from {d.output}.grad): {verdict}")
    for read in chain.read_before_written:
        console.print(f"  line {read['line']} reads {read['reads']} before any line computes it")
    fd = report.finite_differences
    text = (
        f"[bold]finite differences[/] of the whole ({fd.directions} random directions a draw, "
        f"step {fd.step:g}): autograd {'agrees' if fd.holds else '[red]disagrees[/]'} "
        f"(relative error {fd.autograd_error:.2g})"
    )
    if fd.lines_error is not None:
        text += f"; the lines in order differ from them by {fd.lines_error:.2g} (relative)"
    console.print(text)
    style = "green" if report.holds else "yellow"
    console.print(f"\n[{style}]{escape(report.summary)}[/]")


def _print_line(line, name: str, console: Console) -> None:
    u = line.update
    verdict = "[green]holds[/]" if line.holds_with_assertions else "[yellow]does not hold[/]"
    console.print(
        f"\n[bold]line {u.number}[/] ({escape(name)}:{u.line}) {verdict}  error "
        f"{line.max_error:.2g} (tolerance {line.tolerance:.2g})"
    )
    if u.printed:
        console.print(f"  [dim]{escape(u.printed)}[/]")
    console.print(f"  {escape(u.source)}")
    if line.reason:
        console.print(f"  {escape(line.reason)}")
    failure = line.failure
    if failure is not None:
        console.print(
            f"  printed {_number(failure['value'])}, true {escape(line.claims)} "
            f"{_number(failure['true'])} (draw {failure['draw']}, {failure['where']})"
        )
    for a in line.assertions:
        mark = "holds" if a.holds else "[yellow]does not hold[/]"
        console.print(
            f"  {escape(a.assertion.source)}: {mark} at the forward's values (error "
            f"{a.max_error:.2g})"
        )
    if line.passes_error_to:
        console.print(f"  its error reaches line {', '.join(map(str, line.passes_error_to))}")
    if line.inherits_from:
        console.print(
            f"  holds alone, but run in order it inherits the error of line "
            f"{', '.join(map(str, line.inherits_from))} (off by {line.chained_max_error:.2g})"
        )
    for early in line.reads_early:
        console.print(f"  reads {early['reads']} before line {early['before_line']} adds to it")
