"""Everything infonorm checks about its layer-norm kernels on a CUDA machine, in one call
with a time budget per phase.

    python3 scripts/gpu_session.py --out DIR [--budget SECONDS] [--phases env,tests,...]

Phases, in order (each stops starting new work when its share of the budget is spent, and
the JSON it writes says what it skipped):

  env      the device, driver, clocks, library versions, which peers import
  tests    the GPU tests: tests/layer_norm/test_kernels.py and
           tests/mutual_information/test_kernels.py (their interpreter tests run on the GPU
           there) and every `gpu` test of tests/layer_norm and tests/mutual_information
           (CUDA graphs, no host synchronization), names logged as they finish
  bench    ours against torch eager, torch.compile, Liger-Kernel, Apex, QuACK at every case
           of `infonorm.quiz.bench.layer_norm_cuda`, with the copy rate of the same run
  tunings  each lever (and the default, first and last) at every case: error against
           float64, forward and forward+backward times; per-kernel device times
  host     wall time per call on tiny inputs, ours (Triton's launch path and the direct one)
           against the peers, with a cProfile of ours
  block    a pre-norm MLP block under torch.compile ("default", "reduce-overhead") with
           torch.nn.LayerNorm and with infonorm.LayerNorm
  mi       (not by default) the mutual-information benchmark

Files in DIR: session.json (environment, each phase's status and seconds, a summary),
tests.log, layer_norm-cuda.json (the benchmark, the format of docs/results/),
layer_norm-knobs-cuda.json (tunings, kernel times, host, block, registers). The last lines
printed summarize. Runs with the python3 that has torch and triton; `src/` is put on the
path by this script. Peers that are not installed are carried as wheels (see
docs/kernels-layer-norm.md, "How to rerun").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# seconds per phase, for the default budget of 450 s; scaled to --budget
SHARES = {"env": 5, "tests": 100, "bench": 165, "tunings": 105, "host": 15, "block": 60, "mi": 40}
DEFAULT_PHASES = ("env", "tests", "bench", "tunings", "host", "block")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for logs and JSON")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all phases")
    parser.add_argument("--phases", default=",".join(DEFAULT_PHASES))
    parser.add_argument("--cases", default="", help="narrow bench and tunings to these cases")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(SHARES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    os.environ["PYTHONUNBUFFERED"] = "1"
    if args.cases:
        os.environ["INFONORM_BENCH_CASES"] = args.cases
    scale = args.budget / sum(SHARES[p] for p in DEFAULT_PHASES)
    session = {"command": " ".join(sys.argv), "phases": {}, "summary": []}
    started = time.monotonic()
    for phase in phases:
        budget = SHARES[phase] * scale
        print(f"\n=== {phase} (budget {budget:.0f} s)", flush=True)
        begun = time.monotonic()
        status: dict = {"budget s": round(budget)}
        try:
            status |= PHASES[phase](out, begun + budget, session) or {}
            status.setdefault("status", "done")
        except Exception as exc:  # a phase that breaks is recorded; the next one runs
            status |= {"status": "failed", "error": repr(exc)[:500]}
            traceback.print_exc()
        status["seconds"] = round(time.monotonic() - begun, 1)
        session["phases"][phase] = status
        _write(out / "session.json", session)
    session["total seconds"] = round(time.monotonic() - started, 1)
    _write(out / "session.json", session)
    print("\n=== summary", flush=True)
    for phase, status in session["phases"].items():
        print(f"{phase:<8} {status['status']:<7} {status['seconds']:6.1f} s", flush=True)
    for line in session["summary"]:
        print(line, flush=True)
    return 0


# ---------------------------------------------------------------------------- phases


def env_phase(out: Path, deadline: float, session: dict) -> dict:
    import torch
    import triton

    from infonorm.quiz.bench import environment
    from infonorm.quiz.bench.layer_norm_cuda import fused_peers

    env = environment("cuda")
    properties = torch.cuda.get_device_properties(0)
    query = "name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw"
    env |= {
        "multiprocessors": properties.multi_processor_count,
        "L2 bytes": getattr(properties, "L2_cache_size", None),
        "triton": triton.__version__,
        "nvidia-smi": _run_text(["nvidia-smi", f"--query-gpu={query}", "--format=csv"]),
    }
    peers, notes = fused_peers()
    env["peers"] = sorted(peers)
    env["peer notes"] = notes
    session["environment"] = env
    session["summary"].append(
        f"{env.get('gpu')}, torch {env['torch']}, triton {env['triton']}; "
        f"peers importing: {', '.join(sorted(peers)) or 'none'}"
    )
    print(json.dumps(env, indent=1, default=str), flush=True)
    return {}


def tests_phase(out: Path, deadline: float, session: dict) -> dict:
    log = out / "tests.log"
    workers = max(1, min(8, (os.cpu_count() or 2) - 2))
    runs = [
        ["tests/layer_norm/test_kernels.py"],
        ["tests/layer_norm", "-m", "gpu", "--ignore=tests/layer_norm/test_kernels.py"],
        ["tests/mutual_information/test_kernels.py"],
        [
            "tests/mutual_information",
            "-m",
            "gpu",
            "--ignore=tests/mutual_information/test_kernels.py",
        ],
    ]
    results = []
    with log.open("w", encoding="utf-8") as file:
        for number, selection in enumerate(runs):
            left = deadline - time.monotonic()
            if number + 1 < len(runs):
                left *= 0.8  # leave the later selections their turn
            if left < 10:
                results.append(f"{' '.join(selection)}: not run (time budget spent)")
                continue
            command = [
                sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--tb=short",
                "-n", str(workers), *selection,
            ]  # fmt: skip
            if not _imports("xdist"):
                command.remove("-n")
                command.remove(str(workers))
            file.write(f"$ {' '.join(command)}\n")
            file.flush()
            try:
                done = subprocess.run(
                    command, cwd=ROOT, stdout=file, stderr=subprocess.STDOUT, timeout=left,
                    env={**os.environ, "PYTHONPATH": _pythonpath()},
                )  # fmt: skip
                results.append(f"{' '.join(selection)}: exit {done.returncode}")
            except subprocess.TimeoutExpired:
                results.append(f"{' '.join(selection)}: stopped at the time budget")
    text = log.read_text(encoding="utf-8")
    outcome = [line for line in text.splitlines() if line.startswith("=") and " in " in line]
    failed = [line for line in text.splitlines() if line.startswith("FAILED")]
    session["summary"].append("tests: " + "; ".join(outcome or results))
    session["summary"] += failed[:20]
    return {"runs": results, "outcome": outcome, "failed": failed}


def bench_phase(out: Path, deadline: float, session: dict) -> dict:
    from infonorm.quiz.bench import environment
    from infonorm.quiz.bench.layer_norm_cuda import run_cuda

    path = out / "layer_norm-cuda.json"

    def save(report) -> None:
        report.environment = {**environment("cuda"), **report.environment}
        report.environment["command"] = session["command"]
        _write(path, report.to_dict())

    def progress(label: str, done: int, total: int) -> None:
        print(f"[{done}/{total}] {label}", flush=True)

    report = run_cuda(progress=progress, checkpoint=save, deadline=deadline)
    save(report)
    copy = report.environment.get("copy TB/s")
    session["summary"].append(f"copy {copy:.2f} TB/s")
    for row in report.rows:
        if row["peer"] == "ours":
            session["summary"].append(_bench_line(row, report.rows, copy))
    skipped = [note for note in report.notes if "budget" in note or "partial" in note]
    return {"rows": len(report.rows), "notes": report.notes, "skipped": skipped}


def tunings_phase(out: Path, deadline: float, session: dict) -> dict:
    from infonorm.quiz.bench import layer_norm_cuda as bench
    from infonorm.quiz.bench import layer_norm_knobs as knobs

    path = out / "layer_norm-knobs-cuda.json"
    record = _read(path)
    cases = bench.selected_cases(False, os.environ.get("INFONORM_BENCH_CASES"))
    result = knobs.run(
        cases, rep=40, deadline=deadline, checkpoint=lambda r: _write(path, {**record, **r})
    )
    record |= result
    _write(path, record)
    defaults = {row["case"]: row for row in result["tunings"] if row["tuning"] == "default"}
    for row in result["tunings"]:
        base = defaults.get(row["case"])
        if row["tuning"] == "default" or "fwd ms" not in row or not base or "fwd ms" not in base:
            continue
        session["summary"].append(
            f"{row['case']:<30} {row['tuning']:<40} fwd {row['fwd ms'] / base['fwd ms']:5.2f}× "
            f"fwd+bwd {row['fwd+bwd ms'] / base['fwd+bwd ms']:5.2f}× the default's time, "
            f"err {row['max rel err']:.1e}"
        )
    skipped = sum("skipped" in row for row in result["tunings"])
    return {"rows": len(result["tunings"]), "skipped": skipped}


def host_phase(out: Path, deadline: float, session: dict) -> dict:
    from infonorm.quiz.bench import layer_norm_knobs as knobs

    path = out / "layer_norm-knobs-cuda.json"
    rows = knobs.host_overhead(calls=200)
    _write(path, {**_read(path), "host": rows})
    for row in rows:
        if "host µs per call" in row:
            session["summary"].append(
                f"host {row['scope']:<9} {row['step']:<26} {row['host µs per call']:7.1f} µs/call"
            )
    return {}


def block_phase(out: Path, deadline: float, session: dict) -> dict:
    from infonorm.quiz.bench import layer_norm_knobs as knobs
    from infonorm.quiz.bench.layer_norm_cuda import run_block

    path = out / "layer_norm-knobs-cuda.json"
    rows, notes = run_block()
    _write(path, {**_read(path), "block": rows, "block notes": notes,
                  "resources": knobs.compiled_resources()})  # fmt: skip
    session["summary"] += notes
    for row in rows:
        times = (
            f"fwd {row['fwd ms']:.3f} ms, fwd+bwd {row['fwd+bwd ms']:.3f} ms"
            if "fwd ms" in row
            else row.get("error", "")
        )
        session["summary"].append(f"block {row['block']:<20} {row['mode']:<16} {times}")
    return {}


def mi_phase(out: Path, deadline: float, session: dict) -> dict:
    command = [
        sys.executable, "-m", "infonorm", "bench", "--op", "mutual_information",
        "--device", "cuda", "--out", str(out / "mutual_information-cuda.json"),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, timeout=max(10, deadline - time.monotonic()),
        env={**os.environ, "PYTHONPATH": _pythonpath()},
    )  # fmt: skip
    return {"exit": done.returncode}


PHASES = {
    "env": env_phase,
    "tests": tests_phase,
    "bench": bench_phase,
    "tunings": tunings_phase,
    "host": host_phase,
    "block": block_phase,
    "mi": mi_phase,
}


# ---------------------------------------------------------------------------- helpers


def _bench_line(ours: dict, rows: list[dict], copy: float | None) -> str:
    peers = [
        r for r in rows
        if (r["scope"], r["shape"], r["dtype"]) == (ours["scope"], ours["shape"], ours["dtype"])
        and r["peer"] != "ours"
    ]  # fmt: skip
    fastest = {}
    for column in ("fwd ms", "fwd+bwd ms"):
        timed = [r for r in peers if r[column] is not None]
        if timed:
            best = min(timed, key=lambda r: r[column])
            fastest[column] = f"{best['peer']} {best[column]:.3f}"
    share = f", {ours['fwd+bwd TB/s'] / copy:.0%} of copy" if copy and ours["fwd+bwd TB/s"] else ""
    return (
        f"{ours['scope']:<9} {ours['shape']:<12} {ours['dtype']:<9} ours fwd {ours['fwd ms']:.3f} "
        f"fwd+bwd {ours['fwd+bwd ms']:.3f} ms{share}; fastest peer fwd "
        f"{fastest.get('fwd ms', '—')}, fwd+bwd {fastest.get('fwd+bwd ms', '—')}; "
        f"err {ours['max rel err']:.1e}"
    )


def _run_text(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return repr(exc)


def _imports(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _pythonpath() -> str:
    parts = [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write(path: Path, record: dict) -> None:
    path.write_text(json.dumps(record, indent=1, default=str, ensure_ascii=False), "utf-8")


if __name__ == "__main__":
    sys.exit(main())
