import sys
import types

import pytest

from infonorm.quiz.bench import BenchReport
from infonorm.quiz.bench import layer_norm as bench


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(bench, "QUICK_SHAPES", ((2, 16, 32),))


def test_cpu_run_times_every_peer_in_one_report(tiny):
    steps = []
    report = bench.run("cpu", quick=True, progress=lambda *step: steps.append(step))
    assert report.op == "layer_norm"
    assert report.device == "cpu"
    assert report.columns == bench.COLUMNS
    assert [(row["scope"], row["activation"]) for row in report.rows] == list(bench.CASES)
    for row in report.rows:
        assert set(row) == set(bench.COLUMNS)
        assert row["ours ms"] > 0
        assert row["ours / composite"] == pytest.approx(row["ours ms"] / row["composite ms"])
        per_position = row["scope"] == "position"
        for peer in ("hand backward", "nn.LayerNorm + activation"):
            assert (row[f"{peer} ms"] is not None) == per_position
        if per_position:
            assert row["ours / nn.LayerNorm + activation"] == pytest.approx(
                row["ours ms"] / row["nn.LayerNorm + activation ms"]
            )
    assert steps[-1][1] == steps[-1][2] == len(bench.CASES)
    # targets and verdicts live in docs/benchmarks.md, not in the package
    assert not any("target" in note or "met" in note.split() for note in report.notes)


def test_what_each_peer_keeps_for_backward(tiny):
    for row in bench.run("cpu", quick=True).rows:
        # the hand backward keeps x, A, B and two numbers per layer (1/16 of x each here)
        hand = row["saved/x hand backward"] if row["scope"] == "position" else row["saved/x ours"]
        assert hand <= 1.125
        assert row["saved/x composite"] >= 3
        if row["scope"] == "position":
            # ATen's path keeps what nn.LayerNorm + the activation module keep
            assert row["saved/x ours"] <= row["saved/x nn.LayerNorm + activation"] + 0.01


def test_cuda_runs_the_cuda_module(monkeypatch):
    sentinel = BenchReport("layer_norm", "cuda", [], [])
    calls = []

    def run_cuda(quick, progress, checkpoint):
        calls.append((quick, progress, checkpoint))
        return sentinel

    fake = types.ModuleType("infonorm.quiz.bench.layer_norm_cuda")
    fake.run_cuda = run_cuda
    monkeypatch.setitem(sys.modules, "infonorm.quiz.bench.layer_norm_cuda", fake)
    assert bench.run("cuda", quick=True) is sentinel
    assert calls == [(True, None, None)]


def test_checkpoint_receives_the_report_so_far_after_each_case(monkeypatch):
    monkeypatch.setattr(bench, "QUICK_SHAPES", ((2, 16, 32), (3, 5, 7)))
    monkeypatch.setattr(bench, "CASES", (("layer", "relu"), ("position", "gelu")))
    partial = []
    final = bench.run("cpu", quick=True, checkpoint=partial.append)
    # after each case but the last, whose report is the return value
    assert [len(report.rows) for report in partial] == [1, 2, 3]
    assert partial[-1].rows == final.rows[:3]
    assert len(final.rows) == 4
