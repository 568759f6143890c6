#!/usr/bin/env bash
# The whole GPU measurement in one command (a few minutes on an H100/H200-class GPU):
#   400M and 1B shapes, Euler 10, 3 guidance rows, trigger to WAV bytes, eager and torch.compile
#   (CUDA graphs), 8 variations in one batch against 1, and the bf16 error against fp32.
# Prints the GPU's name first; every figure below is for that GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, or anywhere
#   DEVICE=cuda:1 bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DEVICE="${DEVICE:-cuda}"
PYTHON="${PYTHON:-python}"

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA GPU here; nothing to measure" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, \
torch.cuda.get_device_name('$DEVICE'))"

status=0
for shape in 400M 1B; do
    for mode in "" "--compile"; do
        echo "== $shape ${mode:-eager}"
        timeout 300 "$PYTHON" benchmarks/bench_engine.py --device "$DEVICE" --shape "$shape" \
            --steps 10 --renders 3 --variations 8 $mode || { echo "FAILED: $shape $mode"; status=1; }
    done
done
echo "== bf16 against fp32 on the GPU (400M shape)"
(cd benchmarks && timeout 120 "$PYTHON" precision_error.py --shape 400M --device "$DEVICE") \
    || { echo "FAILED: precision_error"; status=1; }
exit $status
