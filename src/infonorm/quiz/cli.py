"""The `infonorm` command: reproduce the quiz, fit Q_λ to counts, benchmark the ops.

Bad usage exits 2 and bad data exits 1, each with one line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infonorm.quiz import check_backprop

_DIGITS = re.compile(r"[+-]?[0-9]+")
EXIT_DATA = 1
EXIT_USAGE = 2
VERDICT_STYLE = {"confirmed": "green", "refuted": "yellow", "error": "bold red"}


class UsageError(Exception):
    """A command-line argument that cannot be used (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="infonorm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"infonorm {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    reproduce = commands.add_parser("reproduce", help="check every claim of Quiz 1, write a report")
    reproduce.add_argument(
        "--only",
        type=_problems,
        default=None,
        metavar="P1,P2,P3",
        help="the problems to check (default: all)",
    )
    reproduce.add_argument(
        "--out",
        type=Path,
        default=Path("infonorm-report"),
        metavar="DIR",
        help="report folder (default: infonorm-report)",
    )
    reproduce.add_argument("--seed", type=_seed, default=0, metavar="N", help="random seed (0)")
    reproduce.add_argument("--quick", action="store_true", help="smaller grids and training runs")
    reproduce.add_argument(
        "--results",
        type=_folder,
        default=None,
        metavar="DIR",
        help="a folder of recorded benchmark results to show in the report's appendix "
        "(in a source checkout: docs/results)",
    )

    fit = commands.add_parser("fit", help="fit Q_λ(k) = (1−λ)λ^k to counts in a file")
    fit.add_argument(
        "file", type=Path, metavar="FILE", help="one count per line, or a CSV file (with --column)"
    )
    fit.add_argument("--column", default=None, metavar="NAME", help="the CSV column of counts")
    fit.add_argument("--method", choices=("closed-form", "gradient"), default="closed-form")
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")

    bench = commands.add_parser("bench", help="time an op against its peers in one run")
    bench.add_argument("--op", required=True, choices=("layer_norm", "mutual_information"))
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    bench.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    bench.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE.json",
        help="also write every figure as JSON",
    )
    check_backprop.add_parser(commands)
    return parser


def _problems(text: str) -> list[str]:
    from infonorm.quiz.claims import PROBLEMS

    chosen = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = [p for p in chosen if p not in PROBLEMS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(PROBLEMS)}, got {text!r}"
        )
    return list(dict.fromkeys(chosen))


def _folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return path


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected a seed >= 0, got {seed}")
    return seed


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        command = {
            "reproduce": _reproduce,
            "fit": _fit,
            "bench": _bench,
            "check-backprop": check_backprop.run,
        }[args.command]
        return command(args, argv)
    except UsageError as error:
        return _fail(error, EXIT_USAGE)
    except (ValueError, TypeError, OSError) as error:
        return _fail(error, EXIT_DATA)
    except MemoryError:
        return _fail("out of memory", EXIT_DATA)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(error: object, code: int) -> int:
    """One line on stderr, whatever the message holds."""
    message = " ".join(str(error).split())
    print(f"infonorm: error: {message}", file=sys.stderr)
    return code


def _reproduce(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm.quiz.claims import Context, run, select
    from infonorm.quiz.report import check_destination, write_report

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    # before any claim runs: a folder that is not a report, or one that cannot be written
    try:
        check_destination(args.out)
    except ValueError as error:
        raise UsageError(f"--{error}") from None
    except OSError as error:
        raise OSError(f"--{error}") from None
    claims = select(args.only)
    context = Context(seed=args.seed, quick=args.quick)
    console = Console(highlight=False)
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        overall = progress.add_task("claims", total=len(claims))
        step = progress.add_task("", total=None, visible=False)

        def on_step(description: str, done: int, total: int) -> None:
            progress.update(
                step, description=f"  {description}", completed=done, total=total, visible=True
            )

        def on_start(claim) -> None:
            progress.update(overall, description=f"{claim.id}: {claim.title}")

        def on_result(result) -> None:
            progress.update(step, visible=False)
            progress.advance(overall)
            style = VERDICT_STYLE[result.verdict]
            console.print(
                f"[{style}]{result.verdict:>9}[/] {result.claim.id}  [dim]{result.seconds:.1f} s[/]"
            )

        context.progress = on_step
        results = run(claims, context, on_start=on_start, on_result=on_result)
    meta = _meta(args, argv, time.perf_counter() - started)
    out = write_report(results, args.out, meta)
    console.print(_results_table(results))
    console.print(f"Report: {out / 'index.html'}   Data: {out / 'claims.json'}")
    errors = [r.claim.id for r in results if r.verdict == "error"]
    if errors:
        return _fail(f"checks failed to run: {', '.join(errors)}", EXIT_DATA)
    return 0


def _results_table(results) -> Table:
    from infonorm.quiz.report.markup import evidence_summary

    table = Table(title="Quiz 1: claims checked against independent references")
    table.add_column("claim", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    table.add_column("independent reference", overflow="fold")
    for result in results:
        entry = result.to_dict()
        style = VERDICT_STYLE[result.verdict]
        table.add_row(
            entry["id"],
            f"[{style}]{entry['verdict']}[/]",
            evidence_summary(entry),
            entry["reference"],
        )
    return table


def _meta(args: argparse.Namespace, argv: list[str], seconds: float) -> dict:
    packages = ("infonorm", "torch", "numpy", "scipy", "scikit-learn", "matplotlib", "rich")
    return {
        "command": " ".join(["infonorm", *argv]),
        "seed": args.seed,
        "quick": args.quick,
        "results": str(args.results) if args.results else None,
        "problems": args.only or ["P1", "P2", "P3"],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": seconds,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in packages},
    }


def _version(package: str = "infonorm") -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def read_counts(path: Path, column: str | None = None) -> list[int]:
    """Counts from a text file (one per line) or from a CSV column; ValueError if malformed."""
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    if b"\0" in raw:
        raise ValueError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if column is None and path.suffix.lower() == ".csv":
        raise ValueError(f"{path}: a CSV file needs --column NAME to name the column of counts")
    if column is None:
        cells = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        cells = _csv_column(text, column, path)
    if not cells:
        raise ValueError(f"{path}: holds no counts")
    from infonorm._validation import MAX_COUNT

    return [_count(cell, f"{path}:{line}", MAX_COUNT) for line, cell in cells]


def _csv_column(text: str, column: str, path: Path) -> list[tuple[int, str]]:
    try:
        # strict: an unclosed quote or text after a closing quote is an error, not data
        reader = csv.DictReader(io.StringIO(text), strict=True)
        names = reader.fieldnames or []
        if column not in names:
            shown = ", ".join(repr(n) for n in names) or "none"
            raise ValueError(f"{path}: no column {column!r} (columns: {shown})")
        if names.count(column) > 1:
            raise ValueError(f"{path}: column {column!r} appears {names.count(column)} times")
        return [
            (reader.line_num, (row[column] or "").strip())
            for row in reader
            if (row[column] or "").strip()
        ]
    except csv.Error as error:
        raise ValueError(f"{path}: malformed CSV ({error})") from None


def _count(cell: str, where: str, limit: int) -> int:
    """The whole number in [0, limit] that `cell` spells, or ValueError naming the line."""
    shown = cell[:40] + ("…" if len(cell) > 40 else "")
    try:
        value = int(cell)
    except ValueError:
        # digits alone that int() refuses: beyond its limit of 4300 digits
        if _DIGITS.fullmatch(cell):
            value = -1 if cell.startswith("-") else limit + 1
        else:
            value = _float_count(cell, shown, where, limit)
    if value < 0:
        raise ValueError(f"{where}: {shown!r} is negative: counts must be >= 0")
    if value > limit:
        largest = f"{limit:.0e}".replace("e+", "e")
        raise ValueError(f"{where}: {shown!r} is above {largest}, too large for a count")
    return value


def _float_count(cell: str, shown: str, where: str, limit: int) -> int:
    """A count written as a float (5.0, 1e3), whole; −1 or limit + 1 for ±1e400 and such."""
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{where}: {shown!r} is not a whole number") from None
    if math.isinf(value) and "inf" not in cell.lower():  # 1e400: a number, too large
        return -1 if value < 0 else limit + 1
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{where}: {shown!r} is not a whole number")
    return int(value)


def _fit(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm import geometric

    counts = read_counts(args.file, args.column)
    fit = geometric.fit(counts, method=args.method)
    tv = geometric.total_variation(counts, fit.lam)
    summary = {
        "file": str(args.file),
        "column": args.column,
        "n": fit.n,
        "mu": fit.mu,
        "lambda": fit.lam,
        "cross_entropy_nats": fit.cross_entropy + 0.0,
        "total_variation": tv,
        "method": fit.method,
    }
    console = Console(highlight=False)
    if args.json:
        console.print_json(json.dumps(summary))
        return 0
    table = Table(title=f"Q_λ fitted to {args.file}" + (f" [{args.column}]" if args.column else ""))
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("counts n", f"{fit.n}")
    table.add_row("mean μ", f"{fit.mu:.6g}")
    table.add_row("λ* = μ/(μ+1)", f"{fit.lam:.9g}")
    table.add_row("H(Pop, Q_λ*) [nats]", f"{fit.cross_entropy + 0.0:.6g}")
    table.add_row("total variation to the data", f"{tv:.4g}")
    console.print(table)
    return 0


def _bench(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm.quiz import bench

    if args.out is not None:
        _check_output_file(args.out)
    console = Console(highlight=False)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{args.op} on {args.device}", total=None)

        def on_step(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        def save(report: bench.BenchReport) -> None:
            record = {"command": " ".join(["infonorm", *argv]), **report.to_dict()}
            _write_atomically(args.out, json.dumps(record, indent=1) + "\n")

        report = bench.run(
            args.op,
            args.device,
            quick=args.quick,
            progress=on_step,
            checkpoint=save if args.out is not None else None,
        )
    table = Table(title=f"infonorm bench --op {args.op} --device {args.device}")
    for column in report.columns:
        table.add_column(column, justify="left" if column in report.columns[:2] else "right")
    for row in report.rows:
        table.add_row(*(_cell(row.get(column)) for column in report.columns))
    console.print(table)
    for note in report.notes:
        console.print(note, markup=False)
    env = report.environment
    console.print(
        f"[dim]{env.get('date')} · {env.get('gpu') or env.get('processor')} · "
        f"torch {env.get('torch')} · {env.get('threads')} threads[/]"
    )
    if args.out is not None:
        save(report)
        console.print(f"Figures: {args.out}")
    return 0


def _check_output_file(path: Path) -> None:
    """Before any work: `path` must be a file (or nothing yet) in a folder we can write."""
    from infonorm._validation import check_creatable

    if path.is_dir():
        raise UsageError(f"--out {path} is a folder, not a file")
    check_creatable(path, "--out")


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a file beside it: never a half-written `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
