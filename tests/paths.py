"""Where the tests find the sample workflows (a copy of ../shared/workflows kept in the repo, so
a fresh clone tests on its own)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "tests" / "data" / "workflows"
