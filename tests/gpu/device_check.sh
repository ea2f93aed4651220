#!/usr/bin/env bash
# The prepared device check: one call on a GPU machine with no network (the device tool's H100/H200).
#
#   here:  tests/gpu/prepare.sh                 # fills .cache/device/ (pycuda's and PuzzleLib's sdists, a few wheels)
#   there: tests/gpu/device_check.sh "$OUT"     # with .cache/device carried; about 5 minutes
#
# Builds pycuda from its sdist against the machine's CUDA, runs the CUDA backend's tests and the reference suites
# with PUZZLELIB_RMSPROP_BACKEND=cuda, then the benchmark in GPU mode (float32 and float16, N = 1e6, 1e7, 1e8, the
# ResNet-50 list, host overhead for 1, 161 and 1,000 tensors; peers: the same-traffic limit kernel, torch's
# RMSprop and PuzzleLib's own CUDA rmspropKer), then tries to build PuzzleLib's own CUDA backend from its sdist and
# to run the PuzzleLib parity tests on it. Writes device.txt, pytest.log, selection.log, bench.txt, results.json,
# bandwidth.png and puzzlelib-cuda.txt to OUT, and puzzlelib-arithmetic.txt (arithmetic="puzzlelib" against PuzzleLib's own kernels).
#
# CUDA_EMU=1 rehearses all of it on a machine without a GPU: pycuda is built the same way against the stub
# libcuda, everything runs on the emulated driver (tests/cuda_emu/run), the benchmark in its quick mode, and every
# figure is the emulator's (results.json says "emulated": true), never a GPU's.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mkdir -p "${1:-$ROOT/device-out}" && cd "${1:-$ROOT/device-out}" && pwd)
CARRY=${DEVICE_CARRY:-$ROOT/.cache/device}
PY=$(realpath -s "$(command -v "${PYTHON:-python3}")")
WORK=$(mktemp -d)
SITE=$WORK/site
export PYTHONUNBUFFERED=1 PYCUDA_CACHE_DIR=$WORK/pycuda-cache
cd "$ROOT"

say() { echo "[device_check $(date +%T)] $*" | tee -a "$OUT/device.txt"; }
fail() { say "FAILED: $*"; exit 1; }

say "machine: $(uname -srm), $("$PY" --version 2>&1), $(nproc) cores; emulated: ${CUDA_EMU:-0}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
	--format=csv,noheader | tee -a "$OUT/device.txt"
NVCC=${CUDA_EMU_REAL_NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
"$NVCC" --version | tail -1 | tee -a "$OUT/device.txt"
[ -f "$CARRY/pycuda-2026.1.tar.gz" ] || fail "no $CARRY/pycuda-2026.1.tar.gz: run tests/gpu/prepare.sh and carry .cache/device"

# 1. pycuda from its sdist, against this CUDA (no curand needed), and the wheels the image lacks
CUDA_ROOT=${CUDA_ROOT:-/usr/local/cuda}  # nvcc may be a wrapper outside the toolkit (/usr/local/bin/nvcc here)
[ -f "$CUDA_ROOT/include/cuda.h" ] || CUDA_ROOT=$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd)
if [ "${CUDA_EMU:-0}" = 1 ]; then
	LIBDIR=$("$PY" -c "import sys; sys.path.insert(0, 'tests/cuda_stub'); import stub_pycuda; print(stub_pycuda.build()[1])")
else
	LIBDIR=$(dirname "$(ldconfig -p | grep -m1 'libcuda.so ' | awk '{print $NF}')" 2>/dev/null)
	[ -d "$LIBDIR" ] || LIBDIR=$CUDA_ROOT/lib64/stubs
fi
mkdir -p "$WORK/home"  # pycuda's build reads its configuration from $HOME/.aksetup-defaults.py
"$PY" - "$WORK/home/.aksetup-defaults.py" "$CUDA_ROOT" "$LIBDIR" <<'PYEOF'
import sys
open(sys.argv[1], "w").write("CUDA_ROOT = %r\nCUDA_ENABLE_CURAND = False\nCUDADRV_LIB_DIR = [%r]\n" % (sys.argv[2], sys.argv[3]))
PYEOF

say "installing the carried wheels and building pycuda (CUDA_ROOT=$CUDA_ROOT, driver library in $LIBDIR)"
"$PY" -m pip install -q --no-index --no-deps --target "$SITE" --find-links "$CARRY" \
	pytools platformdirs mako siphash24 setuptools >>"$OUT/device.txt" 2>&1 || fail "carried wheels"
export PYTHONPATH=$SITE:$ROOT
START=$SECONDS
HOME=$WORK/home PATH=$(dirname "$NVCC"):$PATH "$PY" -m pip install -q --no-index --no-deps --no-build-isolation \
	--target "$SITE" "$CARRY/pycuda-2026.1.tar.gz" >"$WORK/pycuda-build.log" 2>&1 \
	|| { tail -40 "$WORK/pycuda-build.log" >>"$OUT/device.txt"; fail "pycuda build"; }
say "pycuda built in $((SECONDS - START)) s"
"$PY" setup.py -q build_ext --inplace >"$WORK/ext.log" 2>&1 || { tail -20 "$WORK/ext.log" >>"$OUT/device.txt"; fail "C extension"; }

run() { if [ "${CUDA_EMU:-0}" = 1 ]; then CUDA_EMU_NO_PYCUDA=1 tests/cuda_emu/run "$@"; else "$@"; fi; }

# PuzzleLib 1.0.3 for its CPU backend, where tests/puzzlelib_oracle.py looks for it (it cannot pip-install here)
if [ -d "$CARRY/puzzlelib-site" ] && [ ! -d .cache/puzzlelib-1.0.3/site ]; then
	mkdir -p .cache/puzzlelib-1.0.3 && cp -r "$CARRY/puzzlelib-site" .cache/puzzlelib-1.0.3/site
fi

# 2. the CUDA backend's tests and the reference suites, on the GPU
say "pytest with PUZZLELIB_RMSPROP_BACKEND=cuda"
run env PUZZLELIB_RMSPROP_BACKEND=cuda "$PY" -m pytest -p no:cacheprovider -rs -q tests/Backend tests/test_RMSProp.py \
	tests/test_Optimizer.py tests/test_flavours.py tests/test_Checkpoint.py tests/test_Guarantees.py tests/test_demo.py \
	tests/test_puzzlelib_parity.py tests/test_puzzlelib_cuda_arrays.py tests/test_Quantized8.py tests/test_Quantized8_training.py \
	>"$OUT/pytest.log" 2>&1
PYTEST=$?
say "pytest: $(tail -1 "$OUT/pytest.log") (exit $PYTEST)"

# 2b. arithmetic="puzzlelib": on CUDA against PuzzleLib's own generated kernels, and on this machine's CPU against
#     PuzzleLib's CPU kernels (built here with its gcc flags), bit for bit
say "arithmetic=puzzlelib against PuzzleLib's own kernels"
run env PUZZLELIB_RMSPROP_BACKEND=cuda "$PY" tests/gpu/puzzlelib_arithmetic_check.py "$CARRY/PuzzleLib-1.0.3.tar.gz" \
	>"$OUT/puzzlelib-arithmetic.txt" 2>&1
ARITH=$?
"$PY" -m pytest -p no:cacheprovider -rs -q tests/test_arithmetic_puzzlelib.py >>"$OUT/puzzlelib-arithmetic.txt" 2>&1
ARITH=$((ARITH || $?))
say "arithmetic=puzzlelib: $(grep -c 'bit-identical' "$OUT/puzzlelib-arithmetic.txt") of 4 CUDA runs bit-identical; CPU: $(tail -1 "$OUT/puzzlelib-arithmetic.txt") (exit $ARITH)"

# 2c. compiling at selection for this GPU (the other compute capabilities are the emulator's and skip here), and
#     two MPI ranks sharing the device (local rank modulo the visible devices)
say "pytest: device selection and one device per rank"
run env PUZZLELIB_RMSPROP_BACKEND=cuda "$PY" -m pytest -p no:cacheprovider -rs -q tests/Backend/test_CudaSelection.py \
	tests/test_Grid_devices.py >"$OUT/selection.log" 2>&1
SELECTION=$?
say "device selection: $(tail -1 "$OUT/selection.log") (exit $SELECTION)"
[ $SELECTION = 0 ] || PYTEST=1

# 3. the benchmark in GPU mode
BENCH=()
[ "${CUDA_EMU:-0}" = 1 ] && BENCH=(--quick --repeats 1 --max-elements 1e6)
say "benchmark ${BENCH[*]}"
run env PUZZLELIB_RMSPROP_BACKEND=cuda "$PY" -m puzzlelib_rmsprop.bench --out "$OUT" \
	--puzzlelib-source "$CARRY/PuzzleLib-1.0.3.tar.gz" "${BENCH[@]}" >"$OUT/bench.txt" 2>&1
BENCHED=$?
say "benchmark exit $BENCHED; $(grep -c '^met' "$OUT/bench.txt") targets met, $(grep -c '^MISS' "$OUT/bench.txt") missed"
# 4. PuzzleLib's own CUDA backend, built from its sdist if this image allows it, then the parity tests against
#    PuzzleLib's RMSProp on the GPU (its arrays on our CUDA backend, both nets, both state modes)
if [ "${CUDA_EMU:-0}" != 1 ]; then
	say "building PuzzleLib 1.0.3's CUDA driver from its sdist"
	if tests/gpu/build_puzzlelib_cuda.sh "$CARRY/PuzzleLib-1.0.3.tar.gz" "$WORK/puzzlelib" >"$OUT/puzzlelib-cuda.txt" 2>&1; then
		PUZZLELIB_ORACLE_SITE=$WORK/puzzlelib PUZZLELIB_ORACLE_BACKEND=cuda PUZZLELIB_RMSPROP_BACKEND=cuda \
			"$PY" -m pytest -p no:cacheprovider -rs -q tests/test_puzzlelib_parity.py >>"$OUT/puzzlelib-cuda.txt" 2>&1
		say "PuzzleLib on its CUDA backend: $(tail -1 "$OUT/puzzlelib-cuda.txt")"
	else
		say "PuzzleLib's CUDA driver did not build; the first errors:"
		grep -m8 -E "error|Error" "$OUT/puzzlelib-cuda.txt" | tee -a "$OUT/device.txt"
	fi
fi
rm -rf "$WORK"
exit $((PYTEST || BENCHED || ARITH))
