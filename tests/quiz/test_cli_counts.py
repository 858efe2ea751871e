"""`infonorm fit` reading counts: standard input, block by block in bounded memory, with the
same counts and the same line numbers wherever the blocks happen to be cut."""

import json
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from infonorm import geometric
from infonorm.quiz import cli, counts
from infonorm.quiz.counts import read_counts

# files whose reading crosses every kind of line end, blank, sign and decimal, and the
# value range of both tallies (below and above the dense table)
CONTENTS = [
    b"1\r\n22\r\n\r\n333\r4444\n\n55555\n6",
    b"\n\n \f\n7\r\r\r8\n+9\n-0\n5.0\n1e3\n0000012\n70000\n1000000000000\r",
    b"3\n" * 50 + b"65535\n65536\n65537\n",
    b"1\n2\n3\n\n  x\n4\n",
    b"1\r\r\r\r2 3\n",
    b"1\n2\n" + b"9" * 40 + b"\n",
    b"1\n\n\n1.5\r\n",
    b"1\r\n2\r\n\xc3\xa9\r\n",
    b"1\n2\n3\n\xff\n",
]


def _read(path: Path, column: str | None = None) -> dict | str:
    try:
        histogram = read_counts(path, column)
    except ValueError as error:
        return str(error)
    return dict(zip(histogram.values.tolist(), histogram.frequencies.tolist(), strict=True))


@pytest.mark.parametrize("content", CONTENTS)
def test_blocks_cut_anywhere_read_the_same(content, tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    whole = _read(path)
    for size in (1, 2, 3, 5, 8):
        monkeypatch.setattr(counts, "BLOCK", size)
        assert _read(path) == whole, size


def test_csv_blocks_cut_anywhere_read_the_same(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_bytes(b'\n\nsite,visits\r\nA,"1"\r\n\r\nB, 2 \rC,"3\n"\nD,x\n')
    whole = _read(path, "visits")
    assert whole == f"{path}:9: 'x' is not a whole number"  # the quoted cell spans 7 and 8
    for size in (1, 2, 3, 5, 8):
        monkeypatch.setattr(counts, "BLOCK", size)
        assert _read(path, "visits") == whole


def test_counts_are_the_file_s_however_many_and_large(tmp_path):
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [rng.geometric(0.3, 200_000) - 1, rng.integers(0, 10**12, 3000, endpoint=True)]
    )
    rng.shuffle(values)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(map(str, values.tolist())) + "\n")
    assert _read(path) == dict(Counter(values.tolist()))
    histogram = read_counts(path)
    fit = geometric.fit(histogram.values, weights=histogram.frequencies)
    assert fit.n == values.size
    assert fit.mu == int(values.sum()) / values.size  # exact, rounded once


def test_many_distinct_large_counts_are_tallied_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(counts, "BLOCK", 256)
    monkeypatch.setattr(counts, "MERGE", 16)  # merge the tally's parts often
    values = np.random.default_rng(3).integers(65536, 10**6, 20_000)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(map(str, values.tolist())))
    assert _read(path) == dict(Counter(values.tolist()))


def _peak_memory_of_fit(path: Path, capsys) -> int:
    """The most memory Python and NumPy held at once while `infonorm fit path` ran."""
    tracemalloc.start()
    try:
        assert cli.main(["fit", str(path), "--json"]) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    capsys.readouterr()
    return peak


def test_memory_does_not_grow_with_the_file(tmp_path, capsys):
    # read whole (its text, its lines, a list of ints), 2 M lines took 200 MB, 8 M lines 800 MB
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_bytes(b"3\n1\n4\n1\n5\n9\n2\n6\n" * 250_000)
    large.write_bytes(b"3\n1\n4\n1\n5\n9\n2\n6\n" * 1_000_000)
    peak_small = _peak_memory_of_fit(small, capsys)
    peak_large = _peak_memory_of_fit(large, capsys)
    assert peak_large < peak_small + 2**20, (peak_small, peak_large)


def test_a_line_too_long_to_be_a_count_is_refused_without_buffering_it(tmp_path, monkeypatch):
    monkeypatch.setattr(counts, "LONGEST_LINE", 100)
    monkeypatch.setattr(counts, "BLOCK", 16)
    path = tmp_path / "c.txt"
    path.write_bytes(b"1\n" + b"7" * 1000)
    assert _read(path) == f"{path}: holds a line longer than 16 MiB: not counts"


def _fit_stdin(content: bytes, tmp_path, monkeypatch, capsys, *args) -> tuple[int, str, str]:
    path = tmp_path / "stdin"
    path.write_bytes(content)
    with path.open("rb") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        code = cli.main(["fit", "-", *args])
    return code, *capsys.readouterr()


def test_fit_dash_reads_standard_input(tmp_path, monkeypatch, capsys):
    code, out, _ = _fit_stdin(b"1\n2\n\n6\n", tmp_path, monkeypatch, capsys, "--json")
    assert code == 0
    fit = json.loads(out)
    assert (fit["file"], fit["n"], fit["mu"]) == ("-", 3, 3.0)


def test_standard_input_is_named_in_messages(tmp_path, monkeypatch, capsys):
    code, _, err = _fit_stdin(b"1\nx\n", tmp_path, monkeypatch, capsys)
    assert (code, err) == (1, "infonorm: error: <stdin>:2: 'x' is not a whole number\n")
    code, _, err = _fit_stdin(b"", tmp_path, monkeypatch, capsys)
    assert (code, err) == (1, "infonorm: error: <stdin>: holds no counts\n")


def test_a_csv_read_from_standard_input(tmp_path, monkeypatch, capsys):
    code, out, _ = _fit_stdin(
        b"site,visits\nA,4\nB,6\n", tmp_path, monkeypatch, capsys, "--column", "visits", "--json"
    )
    assert code == 0
    assert json.loads(out)["mu"] == 5.0


def _random_csv(rng: np.random.Generator, rows: int, bad: bool) -> bytes:
    """A CSV of three columns without quotes: counts, blanks, decimals, blank lines, every
    kind of line end; if `bad`, words and rows of the wrong length now and then."""
    cells = ["0", "7", " 12 ", "", "5.0", "+3", "1e3", "65536", "\t9"]
    cells += ["x", "1 2", "2.5"] if bad else []
    lines = []
    for _ in range(rows):
        kind = rng.random()
        if kind < 0.05:
            line = ""
        elif kind < 0.07 and bad:
            line = "1,2"
        else:
            line = ",".join(["a", str(rng.choice(cells)), "b"])
        lines.append(line + str(rng.choice(["\n", "\r\n", "\r"])))
    return ("site,visits,note\n" + "".join(lines)).encode()


@pytest.mark.parametrize("seed", range(12))
def test_csv_cells_split_by_numpy_read_as_the_csv_module_reads_them(seed, tmp_path, monkeypatch):
    content = _random_csv(np.random.default_rng(seed), 40 + 5 * seed, bad=seed % 2 == 1)
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_bytes(b"site,visits,note\nq,0,q\n" + content[len(b"site,visits,note\n") :])
    # one quoted cell at the top sends the whole file through the csv module
    quoted.write_bytes(b'site,visits,note\nq,"0",q\n' + content[len(b"site,visits,note\n") :])
    for size in (3, 64, counts.BLOCK):
        monkeypatch.setattr(counts, "BLOCK", size)
        by_numpy = _read(plain, "visits")
        by_csv = _read(quoted, "visits")
        if isinstance(by_numpy, str):
            by_numpy = by_numpy.replace(str(plain), "d.csv")
            by_csv = by_csv.replace(str(quoted), "d.csv")
        assert by_numpy == by_csv, size
    assert isinstance(by_numpy, str) == (seed % 2 == 1)
