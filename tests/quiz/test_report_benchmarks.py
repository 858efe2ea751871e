import json

from infonorm.quiz.report import benchmarks
from infonorm.quiz.report.benchmarks import appendix
from infonorm.quiz.report.figures import Figures

CUDA_ROWS = [
    {"scope": "position", "shape": "8×16", "dtype": "bfloat16", "peer": peer,
     "fwd ms": fwd, "fwd+bwd ms": train, "fwd TB/s": 2.0 / fwd, "fwd+bwd TB/s": 5.0 / train}
    for peer, fwd, train in (("ours", 0.1, 0.2), ("torch eager", 0.2, 0.5))
]  # fmt: skip
CPU_ROWS = [{"scope": "layer", "shape": "2×3×4", "ours ms": 1.5, "composite ms": 3.0}]


def _write(folder, op, device, columns, rows, environment):
    record = {
        "command": f"infonorm bench --op {op} --device {device} --out /root/out/{op}.json",
        "environment": environment,
        "columns": columns,
        "rows": rows,
        "notes": [f"a note about {device}", "target: ours/composite <= 0.7 (met)"],
    }
    (folder / f"{op}-{device}.json").write_text(json.dumps(record), encoding="utf-8")


def test_every_recorded_result_gets_its_machine_date_command_figure_and_table(
    tmp_path, monkeypatch
):
    charts = []
    for kind in ("_bandwidth_chart", "_time_chart"):
        original = getattr(benchmarks, kind)

        def spy(name, *args, kind=kind, original=original):
            charts.append((name, kind))
            return original(name, *args)

        monkeypatch.setattr(benchmarks, kind, spy)
    results = tmp_path / "results"
    results.mkdir()
    gpu = {"date": "2026-11-26", "gpu": "a GPU", "cuda": "13.0", "copy TB/s": 4.0}
    cpu = {"date": "2026-11-25", "processor": "a CPU", "threads": 2}
    _write(results, "layer_norm", "cuda", list(CUDA_ROWS[0]), CUDA_ROWS, gpu)
    _write(results, "layer_norm", "cpu", list(CPU_ROWS[0]), CPU_ROWS, cpu)
    fig = Figures(tmp_path / "page")
    html = appendix(str(results), fig)
    figures = sorted(p.name for p in (tmp_path / "page" / "figures").iterdir())
    assert figures == [
        "bench_layer_norm_cpu.svg",
        "bench_layer_norm_cuda-forward.svg",
        "bench_layer_norm_cuda-training.svg",
    ]
    assert "Figure 1." in html
    assert "Figure 2." in html
    for device, machine, date in (("cpu", "a CPU", "2026-11-25"), ("cuda", "a GPU", "2026-11-26")):
        assert f"a note about {device}" in html
        assert f"<code>infonorm bench --op layer_norm --device {device}</code>" in html
        assert machine in html
        assert date in html
    # a recording's own goals and where it wrote its file are not the reader's business
    assert "target" not in html
    assert "/root/out" not in html
    assert html.count("<div class='scroll'><table>") == 2
    # results with effective bandwidth per peer are drawn as TB/s against the copy rate;
    # times as dots on a log axis
    assert sorted(charts) == [
        ("bench_layer_norm_cpu", "_time_chart"),
        ("bench_layer_norm_cuda", "_bandwidth_chart"),
    ]


def test_a_file_that_is_not_a_result_is_left_out(tmp_path):
    (tmp_path / "layer_norm-cpu.json").write_text('{"variants": []}', encoding="utf-8")
    (tmp_path / "layer_norm-cuda.json").write_text("not json", encoding="utf-8")
    html = appendix(str(tmp_path), Figures(tmp_path / "page"))
    assert "No benchmark results were recorded" in html
    assert not list((tmp_path / "page" / "figures").iterdir())
