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


# ---------------------------------------------------------------- wheels

# The one compiled module the core needs, present once per Python; every other dependency
# is taken pure-Python (charset-normalizer is compiled only for speed), so one copy serves
# every Python a host may embed.
PER_PYTHON = "pydantic_core"


def dependency_wheels(cache_name: str, tags: tuple[str, ...], pythons: list[str]) -> list[Path]:
    """The core's dependencies for one platform and these Pythons, downloaded once into
    build/wheels/<cache_name>."""
    cache = BUILD / "wheels" / cache_name
    requirements = project_meta()["dependencies"]
    stamp = cache / "requirements.txt"
    wanted = "\n".join([*requirements, *tags, *pythons])
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(cache, ignore_errors=True)
        download_wheels(requirements, tags, pythons, cache)
        stamp.write_text(wanted)
    return sorted(cache.glob("*.whl"))


def download_wheels(
    requirements: list[str], tags: tuple[str, ...], pythons: list[str], cache: Path
) -> None:
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    first, *others = pythons
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


# ---------------------------------------------------------------- Blender


BLENDER_SOURCE = ROOT / "blender_addon"
# The Python each Blender release embeds (its release notes; README § Versions). The
# manifest's range, blender_version_min to blender_version_max, must be exactly these keys.
BLENDER_PYTHONS: dict[str, str] = {
    "4.2": "3.11", "4.3": "3.11", "4.4": "3.11", "4.5": "3.11", "5.0": "3.11",
    "5.1": "3.13", "5.2": "3.13", "5.3": "3.13",
}
# Blender platform -> pip platform tags. pydantic-core is compiled, so each gets its own zip.
BLENDER_TARGETS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    "linux-arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64"),
    "macos-x64": ("macosx_10_12_x86_64",),
    "macos-arm64": ("macosx_11_0_arm64",),
    "windows-x64": ("win_amd64",),
}


def blender_pythons() -> list[str]:
    """Every Python of the Blender releases in BLENDER_PYTHONS, oldest first (that these are
    the releases the manifest admits is checked by tests/blender/test_wheels.py)."""
    return sorted(set(BLENDER_PYTHONS.values()), key=lambda v: tuple(map(int, v.split("."))))


def build_blender(dist: Path, targets: list[str] | None = None) -> list[Path]:
    """One extension zip per platform for Preferences › Get Extensions › Install from Disk.
    Each carries pydantic-core for every Python in BLENDER_PYTHONS; Blender (4.2 and later)
    installs only the wheels whose tags match its own Python and platform."""
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
        tags = BLENDER_TARGETS[target]
        for wheel in dependency_wheels(f"blender-{target}", tags, blender_pythons()):
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


# ---------------------------------------------------------------- Krita

KRITA_SOURCE = ROOT / "krita_plugin"
KRITA_PACKAGE = "comfyrelay_krita"
# The Pythons each zip serves (README § Versions has the sources): Krita's official builds
# embed 3.10 (5.2) and 3.13 (5.3, 6.0) on every OS; on Linux, distributions' own Krita
# packages use the system Python (3.11 on Debian 12, 3.12 on Ubuntu 24.04).
KRITA_PYTHONS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("3.10", "3.11", "3.12", "3.13"),
    "windows-x64": ("3.10", "3.13"),
    "macos-arm64": ("3.10", "3.13"),
    "macos-x64": ("3.10", "3.13"),
}
# pip platform tags per zip; pip also accepts older manylinux/macOS tags than these.
KRITA_TARGETS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_11_0_arm64",),
    # macOS extension names carry no architecture, so each architecture needs its own zip.
    "macos-x64": ("macosx_10_12_x86_64",),
}


def build_krita(dist: Path, targets: list[str] | None = None) -> list[Path]:
    """One zip per operating system for Tools › Scripts › Import Python Plugin from File.
    The wheels are unpacked into the plugin's vendor/ folder: one pydantic_core module per
    Python, told apart by their file names (`*.cpython-313-*.so`, `*.cp313-win_amd64.pyd`)."""
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
        pythons = list(KRITA_PYTHONS[target])
        for wheel in dependency_wheels(f"krita-{target}", KRITA_TARGETS[target], pythons):
            unpack_wheel(wheel, package / "vendor")
        zips.append(zip_tree(stage, dist / f"comfyrelay-krita-{version}-{target}.zip"))
    return zips


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
