#!/usr/bin/env bash
# tests/gpu/build_puzzlelib_cuda.sh SDIST DEST: builds PuzzleLib 1.0.3's CUDA driver extension (Cuda/Source, its own
# build script: gcc, linking cuda, cudart, nvrtc, curand, cublas, cudnn) from its sdist into DEST/PuzzleLib, for the
# parity tests against PuzzleLib's own RMSProp on a GPU (PUZZLELIB_ORACLE_SITE=DEST PUZZLELIB_ORACLE_BACKEND=cuda).
# The device image has cuBLAS, cuDNN, curand and NVRTC as pip packages (nvidia-*): their include and lib folders
# go on the compiler's paths. Prints why, and fails, if it cannot be built.
set -euo pipefail
SDIST=$1 DEST=$2
PY=$(realpath -s "$(command -v "${PYTHON:-python3}")")  # absolute: the build runs in another folder
mkdir -p "$DEST"
tar xzf "$SDIST" -C "$DEST"
rm -rf "$DEST/PuzzleLib" && mv "$DEST/PuzzleLib-1.0.3" "$DEST/PuzzleLib"

CPATH=${CPATH:-} LIBRARY_PATH=${LIBRARY_PATH:-} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
NVIDIA=$("$PY" -c "import nvidia, os; print(os.pathsep.join(nvidia.__path__))" 2>/dev/null || true)
for root in ${NVIDIA//:/ }; do
	for dir in "$root"/*/include; do [ -d "$dir" ] && CPATH=${CPATH:+$CPATH:}$dir; done
	for dir in "$root"/*/lib; do
		[ -d "$dir" ] && LIBRARY_PATH=${LIBRARY_PATH:+$LIBRARY_PATH:}$dir && LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$dir
	done
done
export CPATH LIBRARY_PATH LD_LIBRARY_PATH
VERSION_H=$(for dir in ${CPATH//:/ }; do ls "$dir"/cudnn_version.h 2>/dev/null || true; done | head -1)
echo "cuDNN: ${VERSION_H:-no cudnn_version.h}$([ -n "$VERSION_H" ] && grep -m1 'define CUDNN_MAJOR' "$VERSION_H")"

# its compiler links -lpython3.Xm, which Python no longer ships: an empty archive stands in (as in the CPU tests)
STUB=$DEST/libstub && mkdir -p "$STUB" && ar rcs "$STUB/libpython$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')m.a"
export LIBRARY_PATH=$STUB:$LIBRARY_PATH

cd "$DEST/PuzzleLib/Cuda/Source"
PYTHONPATH=$DEST "$PY" -c "from PuzzleLib.Cuda.Source.Build import buildDriver; print('built', buildDriver(0, 1))"
