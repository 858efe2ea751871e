"""The counts of `infonorm fit`, read from a file (or standard input) as a histogram.

A count is a whole number from 0 to 1e12, one per line, or one per row in a column of a CSV
file. What is accepted, exactly:

- ASCII digits, with an optional sign: `42`, `+42`, `-0`; leading zeros are fine;
- the same number written as a decimal whose value is exactly whole: `42.0`, `42.`, `4.2e1`,
  `1e+05` (as spreadsheets and R write numbers); the check is exact, so `0.99999999999999999`
  and `1e-400` are refused, as they would be rounded to 1 and 0;
- white space around it (spaces, tabs, form feeds, vertical tabs); lines that are blank are
  skipped.

Everything else is refused, naming the line: fractions, `nan`, `inf`, `0x10`, `1_000`,
`1,000`, digits of other scripts (`٣`), two numbers on a line. Lines end at LF, CR LF or a
lone CR, and are numbered as an editor numbers them (a form feed does not end a line).
A CSV row must have as many fields as its header, the first line that is not blank.

The file is read in blocks and only its histogram (each distinct count and how many lines
hold it) is kept: memory grows with the number of distinct counts, not with the file. Each
block is parsed with NumPy, a CSV file's too (split into cells at its commas) up to its
first quote, from which on the csv module reads it (a quoted cell may hold commas and line
ends). A line NumPy cannot settle (a sign, an exponent, a stray character) goes through the
exact rules above one by one.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from infonorm._validation import MAX_COUNT

__all__ = ["Histogram", "read_counts"]

STDIN = "-"
# blocks read at a time: large enough for NumPy to pay, small enough to stay out of sight
BLOCK = 1 << 20
# no count, nor any sane CSV row, is this long: a longer line is refused, not buffered
LONGEST_LINE = 1 << 24
# counts below this are tallied in a dense table, the rest by value, in sorted parts merged
# once they hold MERGE distinct values more than twice the merged part's
DENSE = 1 << 16
MERGE = 1 << 20
# white space around a count; CR and LF end lines
_BLANK = b" \t\f\v"
_CELL_BLANK = " \t\f\v\r\n"
# an ASCII decimal: sign, digits, optional fraction, optional exponent
_DECIMAL = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_DIGITS_OF_MAX = len(str(MAX_COUNT))
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Histogram:
    """Each distinct count (ascending) and the number of lines that hold it."""

    values: np.ndarray
    frequencies: np.ndarray

    @property
    def n(self) -> int:
        return int(self.frequencies.sum())


def read_counts(file: str | Path, column: str | None = None) -> Histogram:
    """The histogram of the counts in `file` ("-": standard input), one per line or, with
    `column`, in that column of a CSV file. ValueError naming the file and line otherwise."""
    name = "<stdin>" if str(file) == STDIN else str(file)
    if column is None and name.lower().endswith(".csv"):
        raise ValueError(f"{name}: a CSV file needs --column NAME to name the column of counts")
    with _open(file, name) as stream:
        blocks = _checked(_blocks(stream, name), name)
        tally = _Tally()
        if column is None:
            for block, first_line in blocks:
                tally.add_array(_parse_lines(block, first_line, name))
        else:
            for values in _csv_counts(blocks, column, name):
                tally.add_array(values)
    histogram = tally.histogram()
    if histogram.n == 0:
        raise ValueError(f"{name}: holds no counts")
    return histogram


def _open(file: str | Path, name: str) -> BinaryIO:
    if str(file) == STDIN:
        return open(sys.stdin.fileno(), "rb", closefd=False)
    path = Path(file)
    if not path.exists():
        raise ValueError(f"{name}: no such file")
    if path.is_dir():
        raise ValueError(f"{name}: is a folder, not a file")
    try:
        return path.open("rb")
    except OSError as error:
        raise ValueError(f"{name}: cannot be read ({error.strerror or error})") from None


# ------------------------------------------------------------------------------ blocks


def _blocks(stream: BinaryIO, name: str) -> Iterator[bytes]:
    """The bytes of `stream` in blocks of whole lines (the last may lack its line end).

    A block is cut after its last line end; a CR at the very end of what was read waits for
    the next read, which may hold the LF that makes CR LF one line end."""
    pending = b""
    while True:
        try:
            data = stream.read(BLOCK)
        except OSError as error:
            raise ValueError(f"{name}: cannot be read ({error.strerror or error})") from None
        if not data:
            break
        data = pending + data
        cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
        if cut == 0:
            if len(data) > LONGEST_LINE:
                raise ValueError(f"{name}: holds a line longer than 16 MiB: not counts")
            pending = data
            continue
        yield data[:cut]
        pending = data[cut:]
    if pending:
        yield pending


def _checked(blocks: Iterator[bytes], name: str) -> Iterator[tuple[bytes, int]]:
    """Each block with the number of its first line, once it is known to be text: UTF-8,
    no NUL bytes; a UTF-8 byte-order mark at the start is dropped."""
    line = 1
    for index, block in enumerate(blocks):
        if index == 0:
            block = _without_bom(block, name)
        if b"\0" in block:
            raise ValueError(f"{name}: not a text file (it holds NUL bytes)")
        try:
            if not block.isascii():
                block.decode("utf-8")
        except UnicodeDecodeError as error:
            where = line + _count_line_ends(block[: error.start])
            raise ValueError(f"{name}:{where}: not UTF-8 text: save the file as UTF-8") from None
        yield block, line
        line += _count_line_ends(block)


def _without_bom(block: bytes, name: str) -> bytes:
    if block.startswith(_UTF32_BOMS):
        raise ValueError(f"{name}: UTF-32 is not supported: save as UTF-8")
    if block.startswith(_UTF16_BOMS) or _looks_like_utf16(block):
        raise ValueError(f"{name}: UTF-16 is not supported: save as UTF-8")
    return block.removeprefix(_UTF8_BOM)


def _looks_like_utf16(block: bytes) -> bool:
    """UTF-16 without a byte-order mark: ASCII text with a NUL beside every character."""
    head = block[:64]
    if len(head) < 4:
        return False
    even, odd = head[0::2], head[1::2]
    little, big = odd.count(0) == len(odd), even.count(0) == len(even)
    return (little and 0 not in even) or (big and 0 not in odd)


def _count_line_ends(block: bytes) -> int:
    """How many lines end in `block`: at each LF and at each CR not followed by LF."""
    return block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")


# ------------------------------------------------------------------------------ plain files


def _line_ends(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where each line ends, which bytes end lines): a line ends at each LF and at each CR
    not followed by an LF; the CR of a CR LF is part of the line end too."""
    lf = a == ord("\n")
    cr = a == ord("\r")
    ends = lf.copy()
    ends[:-1] |= cr[:-1] & ~lf[1:]
    ends[-1] |= cr[-1]
    return ends, lf | cr


def _parse_lines(block: bytes, numbers: int | np.ndarray, name: str) -> np.ndarray:
    """The counts on the lines of `block`, in order; ValueError at the first bad line.
    `numbers`: the file's number of each line of the block, or of the first (the others
    follow it).

    NumPy settles the lines that hold ASCII digits alone (up to 13 of them), or those digits
    and a point followed by zeros (5.0, 12.000); the others go through `_count` one by one."""
    a = np.frombuffer(block, dtype=np.uint8)
    if a.size == 0:
        return np.empty(0, dtype=np.int64)
    ends, blank = _line_ends(a)
    for byte in _BLANK:
        blank |= a == byte
    # a token: a run of bytes that are neither blank nor line ends
    edges = np.diff(blank.view(np.int8), prepend=1, append=1)
    starts = np.flatnonzero(edges == -1)
    stops = np.flatnonzero(edges == 1)
    if starts.size == 0:
        return np.empty(0, dtype=np.int64)
    line_of = np.cumsum(ends, dtype=np.int32)[starts]  # 0-based line within the block
    # the digits NumPy reads: all of a token, or those before a point followed by zeros
    digits = stops - starts
    odd = np.flatnonzero(~blank & ((a < ord("0")) | (a > ord("9"))))
    settled = np.ones(starts.size, dtype=bool)
    if odd.size:
        token_of_odd = np.searchsorted(starts, odd, side="right") - 1
        settled[token_of_odd] = False
        point, token = _whole_decimals(a, starts, stops, odd, token_of_odd)
        settled[token] = True
        digits[token] = point - starts[token]
    plain = settled & (digits <= _DIGITS_OF_MAX)
    values = np.zeros(starts.size, dtype=np.int64)
    values[plain] = _digits_value(a, starts[plain], digits[plain])
    # the first line in the block with something wrong: two tokens, or a value out of range
    bad = np.zeros(starts.size, dtype=bool)
    bad[1:] = line_of[1:] == line_of[:-1]
    bad |= plain & (values > MAX_COUNT)
    first_bad = np.flatnonzero(bad)
    limit = int(line_of[first_bad[0]]) if first_bad.size else None
    slow = np.flatnonzero(~plain)
    if limit is not None:
        slow = slow[line_of[slow] < limit]  # the lines before the first bad one
    lines = _numbered(numbers, line_of[slow])
    values[slow] = _slow_counts(block, starts[slow], stops[slow], lines, name)
    if limit is not None:
        _refuse_line(block, limit, ends, f"{name}:{_numbered(numbers, limit)}")
    return values


def _numbered(numbers: int | np.ndarray, index: np.ndarray | int) -> np.ndarray | int:
    """The file's line numbers of the lines `index` of a block numbered by `numbers`."""
    return numbers + index if isinstance(numbers, int) else numbers[index]


def _whole_decimals(
    a: np.ndarray, starts: np.ndarray, stops: np.ndarray, odd: np.ndarray, token_of_odd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(position of the point, token) for each token of digits, one point and zeros after it
    (as spreadsheets write whole numbers): the positions `odd` of non-digits in the tokens
    `token_of_odd` show which tokens hold one point and nothing else."""
    alone = np.bincount(token_of_odd, minlength=starts.size)[token_of_odd] == 1
    one_point = alone & (a[odd] == ord("."))
    point, token = odd[one_point], token_of_odd[one_point]
    # no digit 1-9 between the point and the end of the token, and a digit before it
    nonzero = np.cumsum((a > ord("0")) & (a <= ord("9")), dtype=np.int32)
    zeros_after = nonzero[stops[token] - 1] == nonzero[point]
    keep = zeros_after & (point > starts[token])
    return point[keep], token[keep]


def _slow_counts(
    block: bytes, starts: np.ndarray, stops: np.ndarray, lines: np.ndarray, name: str
) -> np.ndarray:
    """The counts of the tokens block[start:stop] by the exact rules, one by one; a token
    seen before in the block is not read again (a file of "5.0" repeats a few)."""
    known: dict[bytes, int] = {}
    values = []
    for begin, end, line in zip(starts.tolist(), stops.tolist(), lines.tolist(), strict=True):
        token = block[begin:end]
        value = known.get(token)
        if value is None:
            value = known[token] = _count(token.decode("utf-8"), f"{name}:{line}")
        values.append(value)
    return np.array(values, dtype=np.int64)


def _digits_value(a: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The numbers spelled by the digits a[start : start + length], all at once."""
    value = a[starts].astype(np.int64) - ord("0")
    for j in range(1, int(lengths.max(initial=0))):
        longer = np.flatnonzero(lengths > j)
        value[longer] = value[longer] * 10 + (a[starts[longer] + j].astype(np.int64) - ord("0"))
    return value


def _refuse_line(block: bytes, index: int, ends: np.ndarray, where: str) -> NoReturn:
    """Raise the error of line `index` of `block`, shown whole."""
    end_positions = np.flatnonzero(ends)
    begin = int(end_positions[index - 1]) + 1 if index > 0 else 0
    end = int(end_positions[index]) if index < end_positions.size else len(block)
    _count(block[begin:end].decode("utf-8").strip(_CELL_BLANK), where)
    raise AssertionError(f"{where} was taken as bad, yet reads as a count")


# ------------------------------------------------------------------------------ CSV files


def _csv_counts(
    blocks: Iterator[tuple[bytes, int]], column: str, name: str
) -> Iterator[np.ndarray]:
    """The counts in `column` of a CSV file, some rows at a time; blank cells and lines are
    skipped. Blocks without quotes are split into cells by NumPy; from the first quote on
    (a quoted cell may hold commas and line ends), the csv module reads the rest."""
    blocks = iter(blocks)
    header: list[str] | None = None
    for block, first_line in blocks:
        if header is None:
            header, block, first_line = _split_header(block, first_line, name)
            if header is None:
                continue
            index, fields = _column(header, column, name)
        if b'"' in block:
            yield from _csv_records(
                itertools.chain([(block, first_line)], blocks), index, fields, name
            )
            return
        yield _csv_block(block, first_line, index, fields, name)
    if header is None:
        raise ValueError(f"{name}: no column {column!r} (columns: none)")


def _split_header(block: bytes, first_line: int, name: str) -> tuple[list[str] | None, bytes, int]:
    """(the header, the block after it, the number of its first line): the header is the
    first line that is not blank; None (and the block spent) if the block has none."""
    lines = io.StringIO(block.decode("utf-8"), newline="")
    consumed = 0
    for number, line in enumerate(lines, first_line):
        consumed += len(line.encode("utf-8"))
        if line.strip(_CELL_BLANK):
            try:
                header = next(csv.reader([line], strict=True))
            except csv.Error as error:
                raise ValueError(f"{name}:{number}: malformed CSV header ({error})") from None
            return header, block[consumed:], number + 1
    return None, b"", first_line + _count_line_ends(block)


def _column(header: list[str], column: str, name: str) -> tuple[int, int]:
    """(index of `column`, number of fields) in `header`."""
    if column not in header:
        shown = ", ".join(repr(n) for n in header) or "none"
        raise ValueError(f"{name}: no column {column!r} (columns: {shown})")
    if header.count(column) > 1:
        raise ValueError(f"{name}: column {column!r} appears {header.count(column)} times")
    return header.index(column), len(header)


def _wrong_fields(name: str, line: int, found: int, fields: int) -> ValueError:
    return ValueError(
        f"{name}:{line}: {found} field{'s' * (found != 1)} where the header has {fields}"
    )


def _csv_block(block: bytes, first_line: int, index: int, fields: int, name: str) -> np.ndarray:
    """The counts in field `index` of the rows of `block`, which holds no quote: fields are
    what lies between commas."""
    a = np.frombuffer(block, dtype=np.uint8)
    if a.size == 0:
        return np.empty(0, dtype=np.int64)
    ends, terminator = _line_ends(a)
    end_positions = np.flatnonzero(ends)
    count = end_positions.size + (not ends[-1])  # the last line may lack its end
    starts = np.concatenate([[0], end_positions + 1])[:count]
    # a line's text stops at its line end, at the CR of a CR LF
    stops = np.append(end_positions, a.size)[:count]
    ended = end_positions[:count]
    stops[: ended.size] -= (a[ended] == ord("\n")) & (ended > 0) & (a[ended - 1] == ord("\r"))
    blank = terminator.copy()
    for byte in _BLANK:
        blank |= a == byte
    rows = np.flatnonzero(np.add.reduceat(~blank, starts, dtype=np.int64) > 0)
    commas = np.flatnonzero(a == ord(","))
    per_line = np.bincount(np.searchsorted(end_positions, commas), minlength=count)
    wrong = rows[per_line[rows] != fields - 1]
    if wrong.size:
        rows = rows[rows < wrong[0]]  # a bad cell before it is reported first
    first_comma = np.cumsum(per_line) - per_line
    begin = starts[rows] if index == 0 else commas[first_comma[rows] + index - 1] + 1
    end = stops[rows] if index == fields - 1 else commas[first_comma[rows] + index]
    values = _parse_lines(_cells(a, begin, end), first_line + rows, name)
    if wrong.size:
        line = int(wrong[0])
        raise _wrong_fields(name, first_line + line, int(per_line[line]) + 1, fields)
    return values


def _cells(a: np.ndarray, begin: np.ndarray, end: np.ndarray) -> bytes:
    """The bytes a[begin:end] of each cell, one cell a line."""
    lengths = end - begin
    spans = lengths + 1
    out_starts = np.cumsum(spans) - spans
    take = np.arange(spans.sum()) + np.repeat(begin - out_starts, spans)
    take[out_starts + lengths] = a.size  # the line end after each cell
    return np.append(a, np.uint8(ord("\n")))[take].tobytes()


def _csv_records(
    blocks: Iterator[tuple[bytes, int]], index: int, fields: int, name: str
) -> Iterator[np.ndarray]:
    """The counts in field `index`, row by row through the csv module (quotes and all)."""
    blocks = iter(blocks)
    first = next(blocks)
    offset = first[1] - 1  # lines before the first block
    reader = csv.reader(_text_lines(itertools.chain([first], blocks)), strict=True)
    line = 0  # lines read so far: the next record starts on line + 1
    values: list[int] = []
    try:
        for record in reader:
            start, line = offset + line + 1, reader.line_num
            if len(record) != fields:
                if not any(cell.strip(_CELL_BLANK) for cell in record):
                    continue  # a blank line
                raise _wrong_fields(name, start, len(record), fields)
            cell = record[index].strip(_CELL_BLANK)
            if cell:
                values.append(_count(cell, f"{name}:{start}"))
            if len(values) >= 1 << 16:
                yield np.array(values, dtype=np.int64)
                values.clear()
    except csv.Error as error:
        raise ValueError(f"{name}:{offset + line + 1}: malformed CSV ({error})") from None
    yield np.array(values, dtype=np.int64)


def _text_lines(blocks: Iterator[tuple[bytes, int]]) -> Iterator[str]:
    """The lines of the blocks as text, ends kept; only LF, CR LF and CR end a line."""
    for block, _ in blocks:
        yield from io.StringIO(block.decode("utf-8"), newline="")


# ------------------------------------------------------------------------------ one count


def _count(cell: str, where: str) -> int:
    """The whole number in [0, MAX_COUNT] that `cell` spells exactly, or ValueError."""
    shown = cell[:40] + ("…" if len(cell) > 40 else "")
    match = _DECIMAL.fullmatch(cell)
    if match is None:
        raise ValueError(f"{where}: {shown!r} is not a whole number")
    sign, whole, fraction, exponent = match.groups()
    value = _exact_whole(whole, fraction or "", _exponent(exponent or "0"))
    if value is None:
        raise ValueError(f"{where}: {shown!r} is not a whole number")
    if sign == "-" and value != 0:
        raise ValueError(f"{where}: {shown!r} is negative: counts must be >= 0")
    if value > MAX_COUNT:
        largest = f"{MAX_COUNT:.0e}".replace("e+", "e")
        raise ValueError(f"{where}: {shown!r} is above {largest}, too large for a count")
    return value


def _exponent(text: str) -> int:
    """The exponent of a decimal; one of a thousand digits or more stands for its sign's
    extreme (int() refuses such strings, and no count needs them)."""
    if len(text.lstrip("+-")) < 1000:
        return int(text)
    return -(10**1000) if text.startswith("-") else 10**1000


def _exact_whole(whole: str, fraction: str, exponent: int) -> int | None:
    """whole.fraction × 10^exponent if it is a whole number, else None; MAX_COUNT + 1 for
    any whole number above MAX_COUNT (the digits may be far too many to convert)."""
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0
    # the value is m × 10^shift with m = int(digits) and no leading zeros in m
    shift = exponent - len(fraction)
    trailing = len(digits) - len(digits.rstrip("0"))
    if shift + trailing < 0:
        return None  # nonzero digits after the decimal point
    if len(digits) + shift > _DIGITS_OF_MAX:
        return MAX_COUNT + 1
    if shift >= 0:
        return int(digits) * 10**shift
    return int(digits[:shift])


# ------------------------------------------------------------------------------ the tally


class _Tally:
    """How many times each count was read: a dense table for small counts; larger ones as
    sorted arrays of distinct values and their times, merged as they pile up."""

    def __init__(self) -> None:
        self.dense = np.zeros(DENSE, dtype=np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.merged = 0  # distinct values in the first part, once merged

    def add_array(self, values: np.ndarray) -> None:
        small = values < DENSE
        self.dense += np.bincount(values[small], minlength=DENSE)
        large = values[~small]
        if large.size:
            self.parts.append(np.unique(large, return_counts=True))
            # merging when the parts outgrow the merged one keeps the work O(n log n)
            if sum(v.size for v, _ in self.parts) > 2 * self.merged + MERGE:
                self._merge()

    def _merge(self) -> None:
        values = np.concatenate([v for v, _ in self.parts])
        times = np.concatenate([t for _, t in self.parts])
        order = np.argsort(values, kind="stable")
        values, times = values[order], times[order]
        first = np.flatnonzero(np.diff(values, prepend=-1))
        self.parts = [(values[first], np.add.reduceat(times, first))]
        self.merged = first.size

    def histogram(self) -> Histogram:
        if self.parts:
            self._merge()
        small = np.flatnonzero(self.dense)
        large, times = self.parts[0] if self.parts else (np.empty(0, np.int64),) * 2
        return Histogram(
            np.concatenate([small, large]).astype(np.int64),
            np.concatenate([self.dense[small], times]).astype(np.int64),
        )
