"""The bpy releases the Blender tests run in, and their installation.

bpy on PyPI is Blender built as a Python module, one wheel per Blender release and Python.
Every Blender release line that runs on the test machine's Python (3.11: Blender 4.2 LTS to
5.0) is tested; 5.1 and later need Python 3.13 and are checked through their wheels only
(tests/blender/test_wheels.py). The newest one is installed into the venv itself (the full
Blender suite runs there); the others go to folders of their own under .venv/bpy/.

Usage: python -m tests.blender.bpy_versions   (installs what is missing; tests/run.sh runs it)
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BPY = "5.0.1"  # pinned in tests/run.sh; the full Blender suite runs in it
# The newest release of each other line on PyPI for Python 3.11, and the oldest release the
# manifest admits (blender_version_min).
OTHER_BPY = ("4.2.13", "4.2.23", "4.3.0", "4.4.0", "4.5.15")
ALL_BPY = (*OTHER_BPY, VENV_BPY)


def site(version: str) -> Path:
    """The folder that holds this bpy and the modules it needs itself."""
    if version == VENV_BPY:
        return Path(sysconfig.get_paths()["purelib"])
    return ROOT / ".venv" / "bpy" / version


def install(version: str) -> None:
    folder = site(version)
    if (folder / "bpy").is_dir():
        return
    command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*command, "--target", str(folder), f"bpy=={version}"], check=True)


def main() -> int:
    for version in OTHER_BPY:
        install(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
