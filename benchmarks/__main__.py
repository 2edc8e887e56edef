"""Run the benchmarks, print one table, write it as JSON.

    .venv/bin/python -m benchmarks [--repeats N] [--only NAME ...] [--json PATH]

Each module in SUITES has run(repeats, workdir) -> list[Row]. A suite that fails is reported
as such and the others still run, so one broken host does not hide the rest of the table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .table import Row, render

SUITES = ("overhead", "overhead_steps", "batch", "pool", "transfer", "blender",
          "blender_texturing", "krita",
          "krita_animation", "texturing_engine")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--only", nargs="*", choices=SUITES, default=list(SUITES))
    parser.add_argument("--json", type=Path, default=Path("bench-results/benchmarks.json"))
    args = parser.parse_args(argv)

    rows: list[Row] = []
    failed: dict[str, str] = {}
    for name in args.only:
        print(f"… {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        module = importlib.import_module(f".{name}", __package__)
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as work:
            try:
                rows += module.run(args.repeats, Path(work))
            except Exception:
                failed[name] = traceback.format_exc(limit=3)
                print(failed[name], file=sys.stderr)
        print(f"  {name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    print(render(rows))
    for name, why in failed.items():
        print(f"\n{name} FAILED:\n{why}")
    report = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "repeats": args.repeats,
        "rows": [r.model_dump() for r in rows],
        "failed": failed,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"\nwritten to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
