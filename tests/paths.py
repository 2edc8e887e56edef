"""Where the tests find the shared sample workflows."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT.parent / "shared" / "workflows"
