"""The bpy releases the Blender tests run in, and their installation.

bpy on PyPI is Blender built as a Python module, one wheel per Blender release for the
Python that release embeds. The extension is tested in the newest bpy of every release line
it admits and in the oldest release it admits. Blender 4.2 to 5.0 embed Python 3.11 (the
venv's); 5.1 and later embed 3.13, run here with pyenv's Python 3.13 (tests/pythons.py).

The bpy of the venv is installed by tests/run.sh (the full Blender suite runs in it); the
others go to folders of their own under .venv/bpy/, with the modules bpy needs itself.

Usage: python -m tests.blender.bpy_versions   (installs what is missing; tests/run.sh runs it)
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.pythons import MISSING, find_python

ROOT = Path(__file__).resolve().parents[2]
VENV_BPY = "5.0.1"  # pinned in tests/run.sh; the full Blender suite runs in it
# bpy release -> the Python it needs: the oldest release the manifest admits
# (blender_version_min), then the newest of each release line on PyPI.
RELEASES: dict[str, str] = {
    "4.2.13": "3.11", "4.2.23": "3.11", "4.3.0": "3.11", "4.4.0": "3.11", "4.5.15": "3.11",
    VENV_BPY: "3.11", "5.1.2": "3.13", "5.2.3": "3.13", "5.3.0": "3.13",
}
ALL_BPY = tuple(RELEASES)


def python_for(version: str) -> str | None:
    """A Python that can run this bpy release, or None when the machine has none."""
    return find_python(RELEASES[version])


def site(version: str) -> Path:
    """The folder that holds this bpy and the modules it needs itself."""
    if version == VENV_BPY:
        return Path(sysconfig.get_paths()["purelib"])
    return ROOT / ".venv" / "bpy" / version


def install(version: str) -> None:
    """Install this bpy unless it is there, with the Python it needs."""
    folder, python = site(version), python_for(version)
    if python is None:
        raise SystemExit(MISSING.format(RELEASES[version]))
    if not (folder / "bpy").is_dir():
        command = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                   "--root-user-action=ignore"]
        subprocess.run([*command, "--target", str(folder), f"bpy=={version}"], check=True)


def main() -> int:
    for version in ALL_BPY:
        if version != VENV_BPY:
            install(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
