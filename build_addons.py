"""Build the installable add-ons into dist/: the Blender extension and the Krita plugin zips.

Usage: python build_addons.py [blender|krita ...]   (default: both)
Both hosts get the core copied in as a subpackage, because neither can pip-install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent
CORE = ROOT / "core"
BUILD = ROOT / "build"


def project_meta() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


VENDORED = "comfyrelay"  # both hosts import the core as `.comfyrelay` (their core.py)


def vendor_core(host_pkg_dir: Path) -> None:
    """Copy the core's package tree into the host package as `comfyrelay`, which the host
    imports relatively."""
    dest = host_pkg_dir / VENDORED
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(CORE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


# ---------------------------------------------------------------- Blender


BLENDER_SOURCE = ROOT / "blender_addon"
BLENDER_PYTHON = "3.11"  # Blender 4.2 LTS to 5.0 all embed Python 3.11
# Blender platform -> pip platform tags. pydantic-core is compiled, so each gets its own zip.
BLENDER_TARGETS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    "linux-arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64"),
    "macos-x64": ("macosx_10_12_x86_64",),
    "macos-arm64": ("macosx_11_0_arm64",),
    "windows-x64": ("win_amd64",),
}


def build_blender(dist: Path, targets: list[str] | None = None) -> list[Path]:
    """One extension zip per platform for Preferences › Get Extensions › Install from Disk."""
    version = project_meta()["version"]
    zips = []
    for target in targets or list(BLENDER_TARGETS):
        stage = BUILD / "blender" / target
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(
            BLENDER_SOURCE, stage, ignore=shutil.ignore_patterns("__pycache__", "wheels")
        )
        vendor_core(stage)
        wheels = []
        for wheel in blender_wheels(target):
            (stage / "wheels").mkdir(exist_ok=True)
            shutil.copy2(wheel, stage / "wheels" / wheel.name)
            wheels.append(f"./wheels/{wheel.name}")
        manifest = stage / "blender_manifest.toml"
        manifest.write_text(blender_manifest(manifest.read_text(), version, target, wheels))
        zips.append(zip_tree(stage, dist / f"comfyrelay-blender-{version}-{target}.zip"))
    return zips


def blender_manifest(template: str, version: str, target: str, wheels: list[str]) -> str:
    """The source manifest with the project's version, this zip's platform and its wheels."""
    text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', template, count=1)
    listed = "".join(f'  "{wheel}",\n' for wheel in wheels)
    added = f'platforms = ["{target}"]\nwheels = [\n{listed}]\n\n'
    # Top-level keys must come before the first [table] such as [permissions].
    table = re.search(r"(?m)^\[", text)
    at = table.start() if table else len(text)
    return text[:at] + added + text[at:]


def blender_wheels(target: str) -> list[Path]:
    """The core's dependencies for one Blender platform, downloaded once."""
    cache = BUILD / "wheels" / f"blender-{target}"
    requirements = project_meta()["dependencies"]
    stamp = cache / "requirements.txt"
    wanted = "\n".join([*requirements, BLENDER_PYTHON])
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(cache, ignore_errors=True)
        platforms = [arg for tag in BLENDER_TARGETS[target] for arg in ("--platform", tag)]
        pip_download(requirements, cache, [*platforms, "--python-version", BLENDER_PYTHON])
        stamp.write_text(wanted)
    return sorted(cache.glob("*.whl"))


# ---------------------------------------------------------------- Krita

KRITA_SOURCE = ROOT / "krita_plugin"
KRITA_PACKAGE = "comfyrelay_krita"
# Python versions Krita embeds: 3.10 in the official 5.2 builds, the system Python on Linux
# distributions (3.11 on Debian 12, 3.12/3.13 on newer ones), newer again for Krita 6.
KRITA_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# pip platform tags per zip; pip also accepts older manylinux/macOS tags than these.
KRITA_TARGETS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_11_0_arm64",),
    # macOS extension names carry no architecture, so each architecture needs its own zip.
    "macos-x64": ("macosx_10_12_x86_64",),
}
# The one compiled module the core needs, present once per Python version; every other
# dependency is taken pure-Python so one copy serves all versions.
PER_PYTHON = "pydantic_core"


def build_krita(dist: Path, targets: list[str] | None = None) -> list[Path]:
    """One zip per operating system for Tools › Scripts › Import Python Plugin from File."""
    version = project_meta()["version"]
    zips = []
    for target in targets or list(KRITA_TARGETS):
        stage = BUILD / "krita" / target
        shutil.rmtree(stage, ignore_errors=True)
        package = stage / KRITA_PACKAGE
        shutil.copytree(
            KRITA_SOURCE / KRITA_PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__")
        )
        shutil.copy2(KRITA_SOURCE / f"{KRITA_PACKAGE}.desktop", stage)
        vendor_core(package)
        for wheel in krita_wheels(target):
            unpack_wheel(wheel, package / "vendor")
        zips.append(zip_tree(stage, dist / f"comfyrelay-krita-{version}-{target}.zip"))
    return zips


def krita_wheels(target: str) -> list[Path]:
    """The core's dependencies for one OS, downloaded once into build/wheels/<target>."""
    cache = BUILD / "wheels" / target
    requirements = project_meta()["dependencies"]
    stamp = cache / "requirements.txt"
    wanted = "\n".join([*requirements, *KRITA_PYTHONS])
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(cache, ignore_errors=True)
        download_krita_wheels(target, requirements, cache)
        stamp.write_text(wanted)
    return sorted(cache.glob("*.whl"))


def download_krita_wheels(target: str, requirements: list[str], cache: Path) -> None:
    platforms = [arg for tag in KRITA_TARGETS[target] for arg in ("--platform", tag)]
    first, *others = KRITA_PYTHONS
    resolved = cache / "resolve"
    pip_download(requirements, resolved, [*platforms, "--python-version", first])
    for wheel in resolved.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        if wheel.name.endswith("-none-any.whl") or name == PER_PYTHON:
            shutil.move(str(wheel), cache / wheel.name)
        else:  # compiled only for speed (charset-normalizer): take its pure-Python wheel
            pip_download([f"{name}=={version}"], cache, ["--platform", "any", "--no-deps"])
    core = next(cache.glob(f"{PER_PYTHON}-*.whl")).name.split("-")[1]
    for python in others:  # the exact pydantic-core version the one pydantic requires
        pip_download(
            [f"{PER_PYTHON}=={core}"], cache, [*platforms, "--python-version", python, "--no-deps"]
        )
    shutil.rmtree(resolved)


def pip_download(requirements: list[str], dest: Path, options: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    command += ["--only-binary=:all:", "--implementation", "cp", "-d", str(dest)]
    subprocess.run([*command, *options, *requirements], check=True)


def unpack_wheel(wheel: Path, dest: Path) -> None:
    """A wheel is a zip of importable files; .dist-info (licenses) comes along."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)


def zip_tree(stage: Path, out: Path) -> Path:
    """Zip `stage`'s contents at the archive root, in a stable order."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(stage.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(stage).as_posix())
    return out


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    hosts = (argv if argv is not None else sys.argv[1:]) or ["blender", "krita"]
    dist = ROOT / "dist"
    built: list[Path] = []
    if "blender" in hosts:
        built += build_blender(dist)
    if "krita" in hosts:
        built += build_krita(dist)
    for path in built:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
