#!/usr/bin/env bash
# Builds the py-naming policy into a component with componentize-py, pinned, in a local venv.
#
#   examples/python-naming/build.sh [OUTPUT.wasm]     (default: plugins/target/python-naming/py_naming.wasm)
#
# Needs python3 (3.10+) and, the first time, PyPI to install componentize-py; the build itself
# is offline. `--stub-wasi` replaces every WASI import with a trapping stub, so the component
# imports nothing but the contract: the policy must not print, read files or the clock (it would
# trap, and the host would deny the step); Python's `random` is seeded at build time.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "$0")" && pwd)"
plugins="$(cd "$here/../.." && pwd)"
out="${1:-$plugins/target/python-naming/py_naming.wasm}"
venv="$here/.venv"

if [ ! -x "$venv/bin/componentize-py" ] \
    || [ "$("$venv/bin/componentize-py" --version)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

mkdir -p "$(dirname "$out")"
cd "$here"
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/componentize-py" \
    --wit-path "$plugins/wit" --world policy \
    componentize --stub-wasi --python-path "$here" app --output "$out"
rm -rf "$here/__pycache__"
echo "built $out ($(wc -c < "$out") bytes)"
