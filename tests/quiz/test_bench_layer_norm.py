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
    assert [row["scope"] for row in report.rows] == ["layer", "position"]
    layer, position = report.rows
    assert layer["F.layer_norm ms"] is None
    assert position["F.layer_norm ms"] > 0
    for row in report.rows:
        assert row["ours ms"] > 0
        assert row["ours/composite"] == pytest.approx(row["ours ms"] / row["composite ms"])
    assert steps[-1][1] == steps[-1][2] == 2
    assert any("targets" in note for note in report.notes)


def test_ours_saves_about_x_and_the_composite_several_times_more(tiny):
    for row in bench.run("cpu", quick=True).rows:
        assert row["saved/x ours"] <= bench.TARGET_SAVED_RATIO
        assert row["saved/x composite"] >= 3


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
    partial = []
    final = bench.run("cpu", quick=True, checkpoint=partial.append)
    # after each case but the last, whose report is the return value
    assert [len(report.rows) for report in partial] == [1, 2, 3]
    assert partial[-1].rows == final.rows[:3]
    assert len(final.rows) == 4
