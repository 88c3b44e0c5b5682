#!/usr/bin/env bash
# The GPU check, in one script: the CUDA correctness tests, then the training-throughput benchmark on CUDA at the
# recipes' full sizes, the figures written to the folder given (about 8 minutes on one H200 with 16 cores).
#
#   benchmarks/gpu_check.sh OUT_DIR            # on a machine with a GPU
#   benchmarks/gpu_check.sh OUT_DIR --cpu-trial  # the same steps on a CPU, tiny and short: a trial of the script
#
# Python: $PYTHON when set (an interpreter that already holds glioscope's dependencies; src/ is put on its path),
# else `make venv` and .venv/bin/python. Nothing else is installed. What it writes in OUT_DIR (8 files at most):
#   environment.txt           the GPU, the driver, the cores, Python, torch and the dependencies found
#   cuda_tests.txt            pytest of tests/test_cuda.py and tests/test_pipeline_speed.py (skips with reasons)
#   benchmark.txt             the benchmark's table: pipeline and model-only samples/s, their ratio, bf16, layouts
#   throughput.csv, .json     the same table as files (written row by row: a run cut short keeps its rows)
#   compile.txt, compile/     the benchmark with torch.compile, ResNet18 in bf16 and channels_last
# Each stage has its own time limit, so that a slow one cannot take the others' time.
set -u
OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR [--cpu-trial]}
MODE=${2:-}
cd "$(dirname "$0")/.."
mkdir -p "$OUT/compile"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 GLIOSCOPE_PROGRESS=lines

if [ -n "${PYTHON:-}" ]; then
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    make venv >/dev/null || { echo "make venv failed" >&2; exit 2; }
    PYTHON=.venv/bin/python
fi

if [ "$MODE" = "--cpu-trial" ]; then
    DEVICE=cpu; TESTS_LIMIT=300; BENCH_LIMIT=600; COMPILE_LIMIT=0
    BENCH=(--small --preset tiny --models alexnet sdl r3d_18 --steps 2 --rounds 1)
else
    DEVICE=cuda; TESTS_LIMIT=150; BENCH_LIMIT=270; COMPILE_LIMIT=90
    BENCH=(--steps 20 --rounds 3)
fi

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "nvidia-smi: not found"
    echo "cores: $(nproc)"
    "$PYTHON" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
missing = []
for name in ("torchvision", "torchio", "pydicom", "nibabel", "nilearn", "SimpleITK", "sklearn", "pandas", "yaml",
             "matplotlib", "glioscope"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", ""))
    except Exception as exc:  # what a GPU session must bring as wheels
        missing.append(name)
        print(name, "MISSING:", exc)
if missing:
    sys.exit(f"missing: {' '.join(missing)}")
EOF
} >"$OUT/environment.txt" 2>&1
status=$?
cat "$OUT/environment.txt"
if [ $status -ne 0 ]; then
    echo "gpu_check: the environment lacks packages (environment.txt); nothing measured" >&2
    exit 2
fi
if [ "$DEVICE" = cuda ] && ! grep -q "available True" "$OUT/environment.txt"; then
    echo "gpu_check: torch sees no CUDA device; nothing measured" >&2
    exit 2
fi

echo "== CUDA correctness tests (limit ${TESTS_LIMIT}s)"
timeout "$TESTS_LIMIT" "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_pipeline_speed.py \
    >"$OUT/cuda_tests.txt" 2>&1
tests=$?
tail -n 25 "$OUT/cuda_tests.txt"

echo "== benchmark on $DEVICE (limit ${BENCH_LIMIT}s)"
timeout "$BENCH_LIMIT" "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" "${BENCH[@]}" --out "$OUT" \
    >"$OUT/benchmark.txt" 2>&1
bench=$?
tail -n 30 "$OUT/benchmark.txt"

compiled=0
if [ "$COMPILE_LIMIT" -gt 0 ]; then
    echo "== benchmark with torch.compile (limit ${COMPILE_LIMIT}s)"
    timeout "$COMPILE_LIMIT" "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" --models r18 --compile \
        --precision bf16 --channels-last on --steps 20 --rounds 2 --out "$OUT/compile" >"$OUT/compile.txt" 2>&1
    compiled=$?
    tail -n 8 "$OUT/compile.txt"
fi
rmdir "$OUT/compile" 2>/dev/null

echo "== gpu_check: tests exit $tests, benchmark exit $bench, compile exit $compiled (124: its time limit)"
[ $tests -eq 0 ] && [ $bench -eq 0 ]
