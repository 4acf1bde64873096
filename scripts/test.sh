#!/usr/bin/env bash
# Runs the test suite on a fresh clone: installs Debian's chromium (for the browser tests) and the Python packages
# of requirements-dev.txt, then `python -m pytest` with any arguments given, e.g.
#     bash scripts/test.sh                      # everything
#     bash scripts/test.sh tests/test_train.py  # one file
# CI (.ci/run) calls this script, and the README names it, so the three cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False  # tests never phone home
python=${PYTHON:-python}

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ] && [ -z "${SEQDEMO_CHROMIUM:-}" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
    else
        echo "scripts/test.sh: no chromium and no apt-get; set SEQDEMO_CHROMIUM to a chromium binary" >&2
    fi
fi

"$python" -m pip install --quiet -r requirements-dev.txt
exec "$python" -m pytest "$@"
