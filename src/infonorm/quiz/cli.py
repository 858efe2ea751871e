"""The `infonorm` command: reproduce the quiz, fit Q_λ to counts, benchmark the ops.

Bad usage exits 2 and bad data exits 1, each with one line on stderr and no traceback; Ctrl-C
exits 130, SIGTERM 143 and SIGHUP 129, each after removing what the run had half-written.
What is printed on stdout is best-effort (see `terminal`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import NoReturn

from rich.table import Table
from rich.text import Text

from infonorm.quiz import check_backprop
from infonorm.quiz.terminal import (
    ClaimProgress,
    Output,
    StepProgress,
    error_line,
    note_line,
    results_table,
    tally,
    width_of,
)

EXIT_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# the seeds that give distinct runs: the claims' generators are seeded modulo 2^63
MAX_SEED = 2**63 - 1
# signals that stop a run the way Ctrl-C does: what was half-written is removed first
STOPPING = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class UsageError(Exception):
    """A command-line argument that cannot be used (exit 2)."""


class Stopped(BaseException):
    """A signal asked the run to stop (exit 128 + its number), raised wherever the run was,
    so that the cleanups on the way out run as they do for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# ------------------------------------------------------------------------------ arguments


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="infonorm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"infonorm {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_reproduce(commands)
    _add_fit(commands)
    _add_bench(commands)
    check_backprop.add_parser(commands)
    return parser


def _add_reproduce(commands) -> None:
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
        help="report folder (default: infonorm-report); only the report's own files in it "
        "are written or replaced",
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


def _add_fit(commands) -> None:
    fit = commands.add_parser("fit", help="fit Q_λ(k) = (1−λ)λ^k to counts in a file")
    fit.add_argument(
        "file",
        metavar="FILE",
        help="one count per line, or a CSV file (with --column); - reads standard input",
    )
    fit.add_argument("--column", default=None, metavar="NAME", help="the CSV column of counts")
    fit.add_argument("--method", choices=("closed-form", "gradient"), default="closed-form")
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")


def _add_bench(commands) -> None:
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
    # ASCII digits only: int() would also take "1_000", " 7 " and digits of other scripts
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    digits = text.lstrip("+-").lstrip("0")
    # beyond 19 digits, int() is not worth asking (it refuses 4300 and more)
    seed = int(text) if len(digits) <= 19 else MAX_SEED + 1
    if not 0 <= seed <= MAX_SEED:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2^63 − 1, got {shown}")
    return seed


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with _stopping_signals_raise() as interrupted:
        try:
            args = build_parser().parse_args(argv)
            return COMMANDS[args.command](args, argv)
        except UsageError as error:
            return _fail(error, EXIT_USAGE)
        except KeyboardInterrupt:
            return _fail("interrupted", EXIT_INTERRUPTED)
        except Stopped as stop:
            return _fail(f"stopped by {stop}", 128 + stop.signum)
        except Exception as error:
            # Ctrl-C inside an extension module (a lazy import, a C callback) can come out
            # as any exception: after one, that is what it is
            if interrupted:
                return _fail("interrupted", EXIT_INTERRUPTED)
            if isinstance(error, MemoryError):
                return _fail("out of memory", EXIT_DATA)
            if isinstance(error, (ValueError, TypeError, OSError)):
                return _fail(error, EXIT_DATA)
            raise


def _fail(error: object, code: int) -> int:
    """One line on stderr, whatever the message holds."""
    error_line(str(error))
    return code


@contextlib.contextmanager
def _stopping_signals_raise() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP raise `Stopped` while the command runs (by default they end the
    process on the spot, leaving behind whatever was half-written), and SIGINT raises
    KeyboardInterrupt, as Python's own handler does (the entry point ends the process
    outright during start-up). Yields the list of the SIGINTs received so far."""
    interrupted: list[int] = []

    def stop(signum: int, frame: object) -> NoReturn:
        raise Stopped(signum)

    def interrupt(signum: int, frame: object) -> NoReturn:
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = {}
    for signum, handler in ((signal.SIGINT, interrupt), *((s, stop) for s in STOPPING)):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[signum] = signal.signal(signum, handler)
    try:
        yield interrupted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------------------------ reproduce


def _reproduce(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm.quiz.claims import Context, run, select
    from infonorm.quiz.report import check_destination, write_report

    # before any claim runs: a destination that would overwrite someone's files, or that
    # cannot be written
    try:
        check_destination(args.out)
    except ValueError as error:
        raise UsageError(f"--{error}") from None
    except OSError as error:
        raise OSError(f"--{error}") from None
    claims = select(args.only)
    context = Context(seed=args.seed, quick=args.quick)
    out = Output()
    progress = ClaimProgress(out, len(claims))
    context.progress = progress.on_step
    started = time.perf_counter()
    with progress.shown():
        results = run(claims, context, on_start=progress.on_start, on_result=progress.on_result)
    meta = _meta(args, argv, time.perf_counter() - started)
    folder = write_report(results, args.out, meta)
    _print_results(out, results, folder)
    if out.lost:
        note_line(
            f"warning: standard output failed ({out.failure.strerror or out.failure}); "
            f"the report was written: {folder / 'index.html'}"
        )
    errors = [r.claim.id for r in results if r.verdict == "error"]
    if errors:
        return _fail(f"checks failed to run: {', '.join(errors)}", EXIT_DATA)
    return 0


def _print_results(out: Output, results, folder: Path) -> None:
    from infonorm.quiz.report.latex import plain
    from infonorm.quiz.report.layer_norm import chain_is_consequence
    from infonorm.quiz.report.markup import evidence_summary

    entries = {result.claim.id: result.to_dict() for result in results}
    rows = [
        (entry["id"], entry["verdict"], plain(evidence_summary(entry)), plain(entry["reference"]))
        for entry in entries.values()
    ]
    console = out.console()
    for line in results_table(rows, width_of(out)):
        console.print(line, soft_wrap=True)
    derived = {"P3.chain"} if chain_is_consequence(entries) else set()
    report, data = str(folder / "index.html"), str(folder / "claims.json")
    for line in tally(results, report, data, derived=derived):
        console.print(line, soft_wrap=True)


def _meta(args: argparse.Namespace, argv: list[str], seconds: float) -> dict:
    packages = ("infonorm", "torch", "numpy", "scipy", "scikit-learn", "matplotlib", "rich")
    return {
        "command": shlex.join(["infonorm", *argv]),
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


# ------------------------------------------------------------------------------ fit


def _fit(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm import geometric
    from infonorm.quiz.counts import STDIN, read_counts

    counts = read_counts(args.file, args.column)
    fit = geometric.fit(counts.values, method=args.method, weights=counts.frequencies)
    tv = geometric.total_variation(counts.values, fit.lam, weights=counts.frequencies)
    out = Output()
    if args.json:
        summary = {
            "file": args.file,
            "column": args.column,
            "n": fit.n,
            "mu": fit.mu,
            "lambda": fit.lam,
            "cross_entropy_nats": fit.cross_entropy + 0.0,
            "total_variation": tv,
            "method": fit.method,
        }
        out.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    else:
        source = "standard input" if args.file == STDIN else args.file
        title = f"Q_λ fitted to {source}" + (f" [{args.column}]" if args.column else "")
        table = Table(title=title)
        table.add_column("quantity")
        table.add_column("value", justify="right")
        table.add_row("counts n", f"{fit.n}")
        table.add_row("mean μ", f"{fit.mu:.6g}")
        table.add_row("λ* = μ/(μ+1)", f"{fit.lam:.9g}")
        table.add_row("H(Pop, Q_λ*) [nats]", f"{fit.cross_entropy + 0.0:.6g}")
        table.add_row("total variation to the data", f"{tv:.4g}")
        out.console_for(table).print(table)
    _check_written(out)
    return 0


def _check_written(out: Output) -> None:
    """OSError when what was printed is lost for a reason other than a reader that stopped
    reading (`| head`): for `fit` and `bench`, the output is the result."""
    if out.lost:
        raise OSError(f"standard output: {out.failure.strerror or out.failure}")


# ------------------------------------------------------------------------------ bench


def _bench(args: argparse.Namespace, argv: list[str]) -> int:
    from infonorm.quiz import bench
    from infonorm.quiz.files import write_text_atomically
    from infonorm.quiz.report.markup import cell

    if args.out is not None:
        _check_output_file(args.out)
    out = Output()
    progress = StepProgress(out, f"{args.op} on {args.device}")

    def save(report: bench.BenchReport) -> None:
        record = {"command": shlex.join(["infonorm", *argv]), **report.to_dict()}
        write_text_atomically(args.out, json.dumps(record, indent=1) + "\n")

    with progress.shown():
        report = bench.run(
            args.op,
            args.device,
            quick=args.quick,
            progress=progress.update,
            checkpoint=save if args.out is not None else None,
        )
    table = Table(title=f"infonorm bench --op {args.op} --device {args.device}")
    for column in report.columns:
        table.add_column(column, justify="left" if column in report.columns[:2] else "right")
    for row in report.rows:
        table.add_row(*(cell(row.get(column)) for column in report.columns))
    console = out.console_for(table)
    console.print(table)
    for note in report.notes:
        console.print(note)
    env = report.environment
    console.print(
        Text(
            f"{env.get('date')} · {env.get('gpu') or env.get('processor')} · "
            f"torch {env.get('torch')} · {env.get('threads')} threads",
            style="dim",
        )
    )
    if args.out is not None:
        save(report)
        console.print(f"Figures: {args.out}")
    _check_written(out)
    return 0


def _check_output_file(path: Path) -> None:
    """Before any work: `path` must be a file (or nothing yet) in a folder we can write."""
    from infonorm._validation import check_creatable

    if path.is_dir():
        raise UsageError(f"--out {path} is a folder, not a file")
    check_creatable(path, "--out")


COMMANDS: dict[str, Callable[[argparse.Namespace, list[str]], int]] = {
    "reproduce": _reproduce,
    "fit": _fit,
    "bench": _bench,
    "check-backprop": check_backprop.run,
}


if __name__ == "__main__":
    sys.exit(main())
