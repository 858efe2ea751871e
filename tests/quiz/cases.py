"""The bad command lines and files tried on `infonorm`, and what each gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CliCase:
    """`infonorm *argv`, run in a folder prepared by `files`: one line on stderr starting
    with `line`, exit status `code`. `files` maps names to bytes (None: a folder)."""

    command: str
    bad_input: str
    argv: tuple[str, ...]
    code: int
    line: str
    files: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.command}: {self.bad_input}"


E = "infonorm: error: "
CLI_CASES: list[CliCase] = [
    CliCase("fit", "no FILE", ("fit",), 2, E + "the following arguments are required: FILE"),
    CliCase(
        "fit",
        "--method newton",
        ("fit", "c.txt", "--method", "newton"),
        2,
        E + "argument --method: invalid choice: 'newton'",
        {"c.txt": b"1\n"},
    ),
    CliCase(
        "fit",
        "--column without a name",
        ("fit", "c.txt", "--column"),
        2,
        E + "argument --column: expected one argument",
        {"c.txt": b"1\n"},
    ),
    CliCase("fit", "a missing file", ("fit", "missing.txt"), 1, E + "missing.txt: no such file"),
    CliCase(
        "fit",
        "a folder",
        ("fit", "folder"),
        1,
        E + "folder: is a folder, not a file",
        {"folder": None},
    ),
    CliCase(
        "fit", "an empty file", ("fit", "c.txt"), 1, E + "c.txt: holds no counts", {"c.txt": b""}
    ),
    CliCase(
        "fit",
        "blank lines only",
        ("fit", "c.txt"),
        1,
        E + "c.txt: holds no counts",
        {"c.txt": b"\n  \r\n\t\n"},
    ),
    CliCase(
        "fit",
        "a binary file (NUL bytes)",
        ("fit", "c.txt"),
        1,
        E + "c.txt: not a text file (it holds NUL bytes)",
        {"c.txt": b"\x00\x01\x02binary"},
    ),
    CliCase(
        "fit",
        "not UTF-8",
        ("fit", "c.txt"),
        1,
        E + "c.txt: not a UTF-8 text file",
        {"c.txt": b"1\n\xff\xfe\xfa\n"},
    ),
    CliCase(
        "fit",
        "a word",
        ("fit", "c.txt"),
        1,
        E + "c.txt:3: 'three' is not a whole number",
        {"c.txt": b"1\n2\nthree\n"},
    ),
    CliCase(
        "fit",
        "a negative count",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '-2' is negative: counts must be >= 0",
        {"c.txt": b"1\n-2\n"},
    ),
    CliCase(
        "fit",
        "a fraction",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '2.5' is not a whole number",
        {"c.txt": b"1\n2.5\n"},
    ),
    CliCase(
        "fit",
        "nan",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: 'nan' is not a whole number",
        {"c.txt": b"1\nnan\n"},
    ),
    CliCase(
        "fit",
        "inf",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: 'inf' is not a whole number",
        {"c.txt": b"1\ninf\n"},
    ),
    CliCase(
        "fit",
        "hexadecimal 0x10",
        ("fit", "c.txt"),
        1,
        E + "c.txt:1: '0x10' is not a whole number",
        {"c.txt": b"0x10\n"},
    ),
    CliCase(
        "fit",
        "a count above 1e12",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '1000000000001' is above 1e12, too large for a count",
        {"c.txt": b"1\n1000000000001\n"},
    ),
    CliCase(
        "fit",
        "30 nines",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '" + "9" * 30 + "' is above 1e12, too large for a count",
        {"c.txt": b"1\n" + b"9" * 30 + b"\n"},
    ),
    CliCase(
        "fit",
        "1e400 (overflows a float)",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '1e400' is above 1e12, too large for a count",
        {"c.txt": b"1\n1e400\n"},
    ),
    CliCase(
        "fit",
        "-1e400",
        ("fit", "c.txt"),
        1,
        E + "c.txt:1: '-1e400' is negative: counts must be >= 0",
        {"c.txt": b"-1e400\n"},
    ),
    CliCase(
        "fit",
        "a line of 100 000 digits (beyond int()'s 4300)",
        ("fit", "c.txt"),
        1,
        E + "c.txt:2: '" + "9" * 40 + "…' is above 1e12, too large for a count",
        {"c.txt": b"1\n" + b"9" * 100_000 + b"\n"},
    ),
    CliCase(
        "fit",
        "a line of 100 000 letters",
        ("fit", "c.txt"),
        1,
        E + "c.txt:1: '" + "x" * 40 + "…' is not a whole number",
        {"c.txt": b"x" * 100_000 + b"\n"},
    ),
    CliCase(
        "fit",
        "a CSV file without --column",
        ("fit", "d.csv"),
        1,
        E + "d.csv: a CSV file needs --column NAME to name the column of counts",
        {"d.csv": b"a,b\n1,2\n"},
    ),
    CliCase(
        "fit",
        "a CSV without the named column",
        ("fit", "d.csv", "--column", "c"),
        1,
        E + "d.csv: no column 'c' (columns: 'a', 'b')",
        {"d.csv": b"a,b\n1,2\n"},
    ),
    CliCase(
        "fit",
        "a CSV with a header only",
        ("fit", "d.csv", "--column", "a"),
        1,
        E + "d.csv: holds no counts",
        {"d.csv": b"a,b\n"},
    ),
    CliCase(
        "fit",
        "a CSV whose column is all blank",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: holds no counts",
        {"d.csv": b"a,b\n1,\n2, \n"},
    ),
    CliCase(
        "fit",
        "an empty file with --column",
        ("fit", "d.csv", "--column", "a"),
        1,
        E + "d.csv: no column 'a' (columns: none)",
        {"d.csv": b""},
    ),
    CliCase(
        "fit",
        "a CSV naming the column twice",
        ("fit", "d.csv", "--column", "a"),
        1,
        E + "d.csv: column 'a' appears 2 times",
        {"d.csv": b"a,a\n1,2\n"},
    ),
    CliCase(
        "fit",
        "a CSV with an unclosed quote",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: malformed CSV (unexpected end of data)",
        {"d.csv": b'a,b\n1,"2\n'},
    ),
    CliCase(
        "fit",
        "a CSV with text after a closing quote",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: malformed CSV (',' expected after '\"')",
        {"d.csv": b'a,b\n1,"2"x\n'},
    ),
    CliCase(
        "fit",
        "a CSV field of 200 000 characters",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv: malformed CSV (field larger than field limit (131072))",
        {"d.csv": b"a,b\n1," + b"2" * 200_000 + b"\n"},
    ),
    CliCase(
        "fit",
        "a CSV with a bad cell",
        ("fit", "d.csv", "--column", "b"),
        1,
        E + "d.csv:3: 'x' is not a whole number",
        {"d.csv": b"a,b\n1,2\n3,x\n"},
    ),
    CliCase(
        "reproduce",
        "--only P9",
        ("reproduce", "--only", "P9"),
        2,
        E + "argument --only: expected a comma-separated list of P1, P2, P3, got 'P9'",
    ),
    CliCase(
        "reproduce",
        "--only ''",
        ("reproduce", "--only", ""),
        2,
        E + "argument --only: expected a comma-separated list of P1, P2, P3, got ''",
    ),
    CliCase(
        "reproduce",
        "--seed -1",
        ("reproduce", "--seed", "-1"),
        2,
        E + "argument --seed: expected a seed >= 0, got -1",
    ),
    CliCase(
        "reproduce",
        "--seed x",
        ("reproduce", "--seed", "x"),
        2,
        E + "argument --seed: expected a whole number, got 'x'",
    ),
    CliCase(
        "reproduce",
        "--bogus",
        ("reproduce", "--bogus"),
        2,
        E + "unrecognized arguments: --bogus",
    ),
    CliCase(
        "reproduce",
        "--out a file",
        ("reproduce", "--out", "r.txt"),
        2,
        E + "--out r.txt is a file, not a folder",
        {"r.txt": b"x"},
    ),
    CliCase(
        "reproduce",
        "--out a folder that holds other files, not a report",
        ("reproduce", "--out", "home"),
        2,
        E + "--out home is a folder that holds no report (no claims.json and meta.json): "
        "replacing it would delete its files; choose a new or empty folder",
        {"home": None, "home/notes.txt": b"mine"},
    ),
    CliCase(
        "reproduce",
        "--out below a file",
        ("reproduce", "--out", "r.txt/report"),
        1,
        E + "--out r.txt/report cannot be created: r.txt is a file, not a folder",
        {"r.txt": b"x"},
    ),
    CliCase("bench", "no --op", ("bench",), 2, E + "the following arguments are required: --op"),
    CliCase(
        "bench",
        "--op softmax",
        ("bench", "--op", "softmax"),
        2,
        E + "argument --op: invalid choice: 'softmax'",
    ),
    CliCase(
        "bench",
        "--device tpu",
        ("bench", "--op", "layer_norm", "--device", "tpu"),
        2,
        E + "argument --device: invalid choice: 'tpu'",
    ),
    CliCase(
        "bench",
        "--quick yes",
        ("bench", "--op", "layer_norm", "--quick", "yes"),
        2,
        E + "unrecognized arguments: yes",
    ),
    CliCase(
        "bench",
        "--out a folder",
        ("bench", "--op", "layer_norm", "--out", "folder"),
        2,
        E + "--out folder is a folder, not a file",
        {"folder": None},
    ),
    CliCase(
        "bench",
        "--out below a file",
        ("bench", "--op", "layer_norm", "--out", "r.txt/b.json"),
        1,
        E + "--out r.txt/b.json cannot be created: r.txt is a file, not a folder",
        {"r.txt": b"x"},
    ),
    CliCase("(none)", "no command", (), 2, E + "the following arguments are required: command"),
    CliCase("(none)", "an unknown command", ("train",), 2, E + "argument command: invalid choice"),
]

# Inputs that are awkward but valid: each is read as the counts shown.
CLI_ACCEPTED: list[tuple[str, tuple[str, ...], dict[str, bytes], list[int]]] = [
    ("Windows line endings", ("fit", "c.txt"), {"c.txt": b"1\r\n2\r\n3\r\n"}, [1, 2, 3]),
    ("old Mac line endings (CR)", ("fit", "c.txt"), {"c.txt": b"1\r2\r3\r"}, [1, 2, 3]),
    ("a UTF-8 byte-order mark", ("fit", "c.txt"), {"c.txt": b"\xef\xbb\xbf1\n2\n"}, [1, 2]),
    ("no final newline", ("fit", "c.txt"), {"c.txt": b"4\n5"}, [4, 5]),
    ("spaces, tabs, signs", ("fit", "c.txt"), {"c.txt": b" +5 \n\t0\t\n-0\n"}, [5, 0, 0]),
    ("whole floats", ("fit", "c.txt"), {"c.txt": b"5.0\n1e3\n"}, [5, 1000]),
    ("the largest count, 1e12", ("fit", "c.txt"), {"c.txt": b"1\n1000000000000\n"}, [1, 10**12]),
    (
        "a CSV with Windows line endings",
        ("fit", "d.csv", "--column", "b"),
        {"d.csv": b"a,b\r\n1,2\r\n3,4\r\n"},
        [2, 4],
    ),
    (
        "a CSV with a byte-order mark, first column",
        ("fit", "d.csv", "--column", "a"),
        {"d.csv": b"\xef\xbb\xbfa,b\n1,2\n"},
        [1],
    ),
    (
        "a CSV with quoted cells and blanks",
        ("fit", "d.csv", "--column", "b"),
        {"d.csv": b'a,b\n1,"7"\n2,\n3," 8 "\n'},
        [7, 8],
    ),
]


def make_files(folder: Path, files: dict[str, bytes | None]) -> None:
    for name, content in files.items():
        path = folder / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
