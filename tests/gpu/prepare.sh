#!/usr/bin/env bash
# Fills .cache/device/ (or $1) with what tests/gpu/device_check.sh needs on a GPU machine that has no network:
# pycuda's and PuzzleLib's sdists and the pure-Python or prebuilt wheels the device image lacks (for Python 3.12
# there, and for this machine's Python, for the rehearsal on the emulated driver). Pass that folder in `carry`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-$ROOT/.cache/device}
PY=${PYTHON:-python3}
mkdir -p "$DIR"

"$PY" -m pip download -q --no-deps --no-binary pycuda -d "$DIR" pycuda==2026.1
# PuzzleLib's sdist has a flat layout that setuptools >= 61 refuses even for its metadata
echo "setuptools<61" > "$DIR/setuptools-constraint.txt"
PIP_CONSTRAINT="$DIR/setuptools-constraint.txt" "$PY" -m pip download -q --no-deps --no-binary puzzlelib -d "$DIR" puzzlelib==1.0.3

PURE="pytools==2026.1.1 platformdirs==4.14.8 mako==1.4.3 setuptools==80.9.0"
for version in 3.12 "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"; do
	"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d "$DIR" $PURE siphash24==1.9
done
# PuzzleLib 1.0.3 installed for its CPU backend (pure Python), for the parity tests there: the device has no network
"$PY" -c "import sys; sys.path.insert(0, '$ROOT/tests'); import puzzlelib_oracle; puzzlelib_oracle.install()"
rm -rf "$DIR/puzzlelib-site" && cp -r "$ROOT/.cache/puzzlelib-1.0.3/site" "$DIR/puzzlelib-site"
ls -l "$DIR"
