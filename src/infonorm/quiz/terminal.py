"""What the command line prints, best-effort: a closed pipe (`| head -1`), a full disk
(`> /dev/full`) or a terminal that went away silences the output and stops nothing else.

Nothing the user typed is ever read as markup: rich prints every string as it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import textwrap
from collections.abc import Collection, Iterator, Sequence
from typing import TextIO

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

VERDICT_STYLE = {"confirmed": "green", "refuted": "yellow", "error": "bold red"}
# width of the results when the output is not a terminal, which has no width of its own
PIPE_WIDTH = 80


class Output:
    """A text stream (standard output by default) whose write errors are kept, not raised:
    after the first one it writes nothing more. File-like, for rich to write through."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                self.stream.write(text)
                self.stream.flush()  # piped output is block-buffered: show each line now
            except OSError as error:
                self._silence(error)
            except ValueError:  # the stream was closed
                self._silence(OSError(errno.EBADF, "closed"))
        return len(text)

    def flush(self) -> None:
        self.write("")

    def isatty(self) -> bool:
        try:
            return self.failure is None and self.stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def broken_pipe(self) -> bool:
        return isinstance(self.failure, BrokenPipeError)

    @property
    def lost(self) -> bool:
        """Output failed for a reason other than a reader that stopped reading (`| head`)."""
        return self.failure is not None and not self.broken_pipe

    def _silence(self, error: OSError) -> None:
        """Keep `error`; point the stream's descriptor at /dev/null, so that the data still
        in its buffer cannot fail again when Python flushes it on the way out."""
        self.failure = error
        with contextlib.suppress(OSError, ValueError, AttributeError):
            descriptor = self.stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, descriptor)
            finally:
                os.close(devnull)

    def console(self) -> Console:
        """A rich console on this stream that reads no markup, emoji or highlights."""
        return Console(file=self, markup=False, emoji=False, highlight=False)

    def console_for(self, renderable: RenderableType) -> Console:
        """`console()`, as wide as `renderable` needs when the output is not a terminal: a
        file or a pipe has no width of its own, and a table cut to PIPE_WIDTH columns would
        lose its figures to ellipses."""
        console = self.console()
        if not self.isatty():
            options = console.options.update_width(10_000)  # measured unconstrained
            natural = Measurement.get(console, options, renderable).maximum
            console.width = max(PIPE_WIDTH, natural)
        return console


def error_line(message: str) -> None:
    """`infonorm: error: message` on stderr as one line, if stderr can take it."""
    text = " ".join(str(message).split())
    with contextlib.suppress(OSError, ValueError):
        print(f"infonorm: error: {text}", file=sys.stderr, flush=True)


def note_line(message: str) -> None:
    """`infonorm: message` on stderr as one line, if stderr can take it."""
    with contextlib.suppress(OSError, ValueError):
        print(f"infonorm: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ reproduce


class _Bar:
    """A rich progress bar on a terminal, none otherwise (piped, redirected)."""

    def __init__(self, out: Output, *, elapsed: bool):
        self.console = out.console()
        self.bar: Progress | None = None
        if out.isatty():
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
            columns += [TimeElapsedColumn()] if elapsed else []
            self.bar = Progress(*columns, console=self.console, transient=True)

    @contextlib.contextmanager
    def shown(self) -> Iterator[_Bar]:
        with self.bar or contextlib.nullcontext():
            yield self


class ClaimProgress(_Bar):
    """The progress of `infonorm reproduce`. On a terminal: a progress bar and one line per
    result. Otherwise (piped, redirected): a line when each claim starts, for claims can run
    for minutes, and one when it ends."""

    def __init__(self, out: Output, total: int):
        super().__init__(out, elapsed=True)
        self.out, self.total, self.started = out, total, 0
        if self.bar is not None:
            self.overall = self.bar.add_task("claims", total=total)
            self.step = self.bar.add_task("", total=None, visible=False)

    def on_start(self, claim) -> None:
        self.started += 1
        if self.bar is not None:
            self.bar.update(self.overall, description=f"{claim.id}: {claim.title}")
        else:
            title = f": {claim.title}" if claim.title else ""
            self.out.write(f"[{self.started}/{self.total}] {claim.id}{title}\n")

    def on_step(self, description: str, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(
                self.step, description=f"  {description}", completed=done, total=total, visible=True
            )

    def on_result(self, result) -> None:
        line = Text(f"{result.verdict:>9}", style=VERDICT_STYLE[result.verdict])
        line.append(f" {result.claim.id}  ")
        line.append(f"{result.seconds:.1f} s", style="dim")
        if self.bar is not None:
            self.bar.update(self.step, visible=False)
            self.bar.advance(self.overall)
        self.console.print(line, soft_wrap=True)


class StepProgress(_Bar):
    """The progress of a long command (`bench`): a bar on a terminal, nothing otherwise."""

    def __init__(self, out: Output, description: str):
        super().__init__(out, elapsed=False)
        if self.bar is not None:
            self.task = self.bar.add_task(description, total=None)

    def update(self, description: str, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=description, completed=done, total=total)


def results_table(rows: Sequence[tuple[str, str, str, str]], width: int) -> list[Text]:
    """The results as lines of at most `width` columns where words allow: (claim, verdict,
    evidence, reference) per row, the last two wrapped at spaces, never inside a word."""
    id_width = max((len(r[0]) for r in rows), default=5)
    indent = id_width + 2 + 9 + 2
    text_width = max(width - indent, 30)

    def wrap(text: str) -> list[str]:
        lines = textwrap.wrap(text, text_width, break_long_words=False, break_on_hyphens=False)
        return lines or [""]

    lines = [Text("Quiz 1: claims checked against independent references", style="bold")]
    for claim, verdict, evidence, reference in rows:
        body = wrap(evidence) + wrap(f"reference: {reference}")
        first = Text(f"{claim:<{id_width}}  ")
        first.append(f"{verdict:<9}", style=VERDICT_STYLE.get(verdict, ""))
        first.append(f"  {body[0]}")
        lines.append(first)
        lines += [Text(" " * indent + rest) for rest in body[1:]]
    return lines


def tally(results, report: str, data: str, *, derived: Collection[str] = ()) -> list[str]:
    """The closing lines: how many claims held, each refuted or failed one by name, where the
    report is. `derived`: refuted claims that fail only because the others do (P3.chain,
    when the corrected lines give the combined equations), named as such."""
    ids: dict[str, list[str]] = {"confirmed": [], "refuted": [], "error": []}
    for result in results:
        name = result.claim.id
        ids[result.verdict].append(f"{name}, which follows from them" if name in derived else name)
    parts = [f"{len(ids['confirmed'])} confirmed"]
    for verdict, label in (("refuted", "refuted"), ("error", "could not be checked")):
        named = f" ({', '.join(ids[verdict])})" if ids[verdict] else ""
        parts.append(f"{len(ids[verdict])} {label}{named}")
    claims = "claim" if len(results) == 1 else "claims"
    return [
        f"{len(results)} {claims} checked: {', '.join(parts)}.",
        f"Report: {report}   Data: {data}",
    ]


def width_of(out: Output) -> int:
    """The terminal's width (COLUMNS if set), or PIPE_WIDTH when the output is not a
    terminal or the terminal does not say."""
    if not out.isatty():
        return PIPE_WIDTH
    return shutil.get_terminal_size((PIPE_WIDTH, 24)).columns
