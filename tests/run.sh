#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what the tests need, then runs
# ruff, mypy and pytest. Usage: bash tests/run.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# --- Debian packages: Krita for the plugin tests (kritarunner headless, full Krita on Xvfb),
# PyQt5 for the docker under Qt 5, FFmpeg for video results in Krita ---
APT_PACKAGES="krita python3-pyqt5 xauth xvfb ffmpeg"
if ! dpkg -s $APT_PACKAGES >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $APT_PACKAGES >/dev/null
fi

# --- Python packages: the core, its test tools, real bpy and the bpy stubs; then the older
# bpy releases the extension is also tested in, each in a folder of its own ---
"$VPY" -m pip install -q --disable-pip-version-check -e '.[test]' \
    'bpy==5.0.1' 'fake-bpy-module-latest'
# Pythons other than the venv's: 3.13 runs bpy 5.1 and later; the Krita zip's core is run
# under each Python Krita builds embed (3.10, 3.13) and Linux distributions' (3.12).
"$VPY" -m tests.pythons 3.10 3.12 3.13
"$VPY" -m tests.blender.bpy_versions

"$VPY" -m ruff check .
"$VPY" -m mypy core tests blender_addon krita_plugin benchmarks build_addons.py
"$VPY" -m pytest "$@"
