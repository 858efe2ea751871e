import json

from infonorm.quiz.report import benchmarks
from infonorm.quiz.report.benchmarks import benchmark_figures
from infonorm.quiz.report.figures import Figures

CUDA_ROWS = [
    {"scope": "position", "shape": "8×16", "dtype": "bfloat16", "peer": peer,
     "fwd ms": fwd, "fwd+bwd ms": train, "fwd TB/s": 2.0 / fwd, "fwd+bwd TB/s": 5.0 / train}
    for peer, fwd, train in (("ours", 0.1, 0.2), ("torch eager", 0.2, 0.5))
]  # fmt: skip
CPU_ROWS = [{"scope": "layer", "shape": "2×3×4", "ours ms": 1.5, "composite ms": 3.0}]


def _write(folder, op, device, columns, rows):
    record = {
        "command": f"infonorm bench --op {op} --device {device}",
        "environment": {"date": "2026-11-26", "gpu": "a GPU", "copy TB/s": 4.0},
        "columns": columns,
        "rows": rows,
        "notes": [f"a note about {device}"],
    }
    (folder / f"{op}-{device}.json").write_text(json.dumps(record), encoding="utf-8")


def test_every_committed_result_gets_a_figure_a_table_and_its_notes(tmp_path, monkeypatch):
    charts = []
    for kind in ("_bandwidth_chart", "_time_chart"):
        original = getattr(benchmarks, kind)

        def spy(name, *args, kind=kind, original=original):
            charts.append((name, kind))
            return original(name, *args)

        monkeypatch.setattr(benchmarks, kind, spy)
    results = tmp_path / "results"
    results.mkdir()
    _write(results, "layer_norm", "cuda", list(CUDA_ROWS[0]), CUDA_ROWS)
    _write(results, "layer_norm", "cpu", list(CPU_ROWS[0]), CPU_ROWS)
    html = benchmark_figures("layer_norm", Figures(tmp_path / "page"), results)
    for device in ("cpu", "cuda"):
        svg = tmp_path / "page" / "figures" / f"bench_layer_norm_{device}.svg"
        assert svg.stat().st_size > 1000
        assert f"a note about {device}" in html
        assert f"infonorm bench --op layer_norm --device {device}" in html
    # results with effective bandwidth per peer are drawn as TB/s against the copy rate
    assert sorted(charts) == [
        ("bench_layer_norm_cpu", "_time_chart"),
        ("bench_layer_norm_cuda", "_bandwidth_chart"),
    ]


def test_a_missing_result_says_how_to_record_it(tmp_path):
    html = benchmark_figures("mutual_information", Figures(tmp_path / "page"), tmp_path)
    for device in ("cpu", "cuda"):
        assert (
            f"infonorm bench --op mutual_information --device {device} "
            f"--out docs/results/mutual_information-{device}.json"
        ) in html
    assert not list((tmp_path / "page" / "figures").iterdir())
