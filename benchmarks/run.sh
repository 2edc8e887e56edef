#!/usr/bin/env bash
# The benchmarks, on a machine set up as the README says (.venv, bpy, Krita): adds what only
# they need (curl, comfy-api-simplified), then prints the table and writes
# bench-results/benchmarks.json. Usage: bash benchmarks/run.sh [--repeats N] [--only ...]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v curl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
exec .venv/bin/python -m benchmarks "$@"
