#!/usr/bin/env bash
# Everything infonorm checks on a CUDA machine, in one go: the GPU tests, the CUDA
# benchmarks (JSON rewritten after each shape), the kernels' knob sweep and host overhead,
# and a profile of mutual_information. Logs and JSON go to $OUT (default gpu-out/); the
# last lines printed summarize.
#
#   OUT=gpu-out scripts/gpu-session.sh            # uses python3 and PYTHONPATH=src
#
# Time limits per step (seconds) can be set with TEST_S, BENCH_S, MI_S, KNOBS_S.
set -u
OUT=${OUT:-gpu-out}
PY=${GPU_PYTHON:-python3}
SRC=${SRC:-src}
TESTS=${TESTS:-tests}
mkdir -p "$OUT"
export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=220

{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem \
    --format=csv
  $PY -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__,
    torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0))'
  $PY -c 'import liger_kernel; print("liger-kernel", liger_kernel.__file__)' 2>&1 | tail -1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# test names as they finish (-v), so that a run cut short still says what failed
workers=()
$PY -c 'import xdist' 2>/dev/null && workers=(-n "$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))")
timeout "${TEST_S:-200}" $PY -m pytest -v -p no:cacheprovider -p no:benchmark --tb=short \
  "${workers[@]}" "$TESTS/test_kernels_layer_norm.py" "$TESTS/test_layer_norm.py" \
  "$TESTS/test_mutual_information.py" > "$OUT/tests.log" 2>&1
echo "tests exit $?"

timeout "${BENCH_S:-300}" $PY -m infonorm bench --op layer_norm --device cuda \
  --out "$OUT/layer_norm-cuda.json" > "$OUT/bench.log" 2>&1
echo "layer_norm bench exit $?"
timeout "${MI_S:-60}" $PY -m infonorm bench --op mutual_information --device cuda \
  --out "$OUT/mutual_information-cuda.json" >> "$OUT/bench.log" 2>&1
echo "mutual_information bench exit $?"
timeout "${KNOBS_S:-150}" $PY -m infonorm.quiz.bench.layer_norm_knobs --out "$OUT/knobs.json" \
  > "$OUT/knobs.log" 2>&1
echo "knobs exit $?"
timeout "${MI_S:-60}" $PY - > "$OUT/profile.log" 2>&1 <<'PY'
# where forward + backward of mutual_information spends its time on the GPU
import torch
from torch.profiler import ProfilerActivity, profile

from infonorm import mutual_information

z = torch.randn(1024, 32768, device="cuda", requires_grad=True)
y = torch.randint(0, 32768, (1024,), device="cuda")
for _ in range(3):
    torch.autograd.grad(mutual_information(z, y), z)
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        torch.autograd.grad(mutual_information(z, y), z)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=15))
PY
echo "profile exit $?"

grep -E "FAILED|ERROR|passed|failed" "$OUT/tests.log" | tail -n 20
cat "$OUT/bench.log"
grep -v "^{" "$OUT/knobs.log" | grep -E "^host|µs" | tail -n 100
