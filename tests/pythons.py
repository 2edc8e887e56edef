"""Other Pythons on the test machine, for what runs on a Python other than the venv's
(bpy 5.1 and later on 3.13; the Krita plugin's vendored core on 3.10 to 3.13).

Usage: python -m tests.pythons 3.10 3.13 ...   (tests/run.sh: installs with pyenv, which the
test machines have, any of them the machine lacks; fails if it cannot)"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

MISSING = "no Python {} on this machine: `bash tests/run.sh` installs it with pyenv"


@cache
def find_python(wanted: str) -> str | None:
    """An interpreter of Python `wanted` ("3.13"), or None when the machine has none. The
    test machines have pyenv's; a pyenv shim that is not the active version fails when run,
    so each candidate is tried."""
    if sys.version_info[:2] == tuple(map(int, wanted.split("."))):
        return sys.executable
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found = [shutil.which(f"python{wanted}"),
             *sorted(glob.glob(f"{pyenv}/versions/{wanted}*/bin/python{wanted}"))]
    for python in filter(None, found):
        check = [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
        ran = subprocess.run(check, capture_output=True, text=True)
        if ran.returncode == 0 and ran.stdout.strip() == wanted:
            return python
    return None


def main(wanted: list[str]) -> int:
    for version in wanted:
        if find_python(version) is None:
            subprocess.run(["pyenv", "install", "--skip-existing", version], check=True)
            find_python.cache_clear()
            if find_python(version) is None:
                print(MISSING.format(version), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
