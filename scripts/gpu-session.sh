#!/usr/bin/env bash
# The layer-norm checks on a CUDA machine (`make gpu-check`): scripts/gpu_session.py, with
# its logs and JSON in $OUT (default gpu-out/), run by $GPU_PYTHON (default python3, the one
# that has torch and triton). Extra arguments go to the script (--budget, --phases, --cases).
exec "${GPU_PYTHON:-python3}" "$(dirname "$0")/gpu_session.py" --out "${OUT:-gpu-out}" "$@"
