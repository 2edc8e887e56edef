"""Tests mirror the code: a test of `core/X/Y.py` is `tests/X/test_Y.py` (of a top-level
`core/Y.py`, `tests/test_Y.py`), so a module's tests are found where the module is.

A file may add a topic after the module's name when one module has several test files
(`tests/comfyui/test_convert_golden.py` tests `core/comfyui/convert.py` against golden files).
The names are read from the file system when the test runs, so a renamed or removed module
shows here at once.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CORE = ROOT / "core"

# Folders of tests that are not of one core module, and why.
OWN_FOLDERS = {
    "blender": "the Blender add-on (blender_addon/), in real bpy",
    "krita": "the Krita plugin (krita_plugin/), in real Krita",
    "servers": "the test servers' own tests, named after the server they check",
    "system": "whole-system suites against real or test servers (tests/system/__init__.py)",
}
# Top-level test files about the core as a whole, and why.
WHOLE_CORE = {
    "test_layers.py": "the core's layering: which folder may import which",
    "test_layout.py": "where every test file lives (this file)",
}
def mirrored_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py")
                  if p.relative_to(TESTS).parts[0] not in OWN_FOLDERS)


def modules_in(folder: Path) -> list[str]:
    """The module names `core/<folder>` holds."""
    return sorted(p.stem for p in (CORE / folder).glob("*.py") if p.stem != "__init__")


def module_of(test: Path) -> Path | None:
    """The core module a test file is named after, or None."""
    relative = test.relative_to(TESTS)
    topic = relative.stem.removeprefix("test_")
    for name in sorted(modules_in(relative.parent), key=len, reverse=True):
        if topic == name or topic.startswith(name + "_"):
            return CORE / relative.parent / f"{name}.py"
    return None


def test_each_test_file_is_named_after_the_core_module_it_tests() -> None:
    lost = [
        f"tests/{test.relative_to(TESTS)} (core/{test.relative_to(TESTS).parent}/ has: "
        f"{', '.join(modules_in(test.relative_to(TESTS).parent)) or 'no modules'})"
        for test in mirrored_files()
        if test.relative_to(TESTS).as_posix() not in WHOLE_CORE and module_of(test) is None
    ]
    assert not lost, (
        "a test of core/X/Y.py belongs in tests/X/test_Y.py (or tests/X/test_Y_<topic>.py); "
        "these name no core module:\n" + "\n".join(lost)
    )


def test_test_folders_are_packages() -> None:
    """Test files of the same name in two folders (tests/jobs/test_workflow.py and
    tests/krita/test_workflow.py) import as different modules only from packages."""
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert not missing, f"no __init__.py in: {missing}"


def test_the_exceptions_name_what_exists() -> None:
    assert all((TESTS / name).is_file() for name in WHOLE_CORE)
    assert all((TESTS / folder).is_dir() for folder in OWN_FOLDERS)


def test_the_mirror_rule_itself() -> None:
    assert module_of(TESTS / "comfyui" / "test_convert.py") == CORE / "comfyui" / "convert.py"
    assert module_of(TESTS / "comfyui" / "test_convert_golden.py") == (
        CORE / "comfyui" / "convert.py")
    assert module_of(TESTS / "test_config.py") == CORE / "config.py"
    assert module_of(TESTS / "comfyui" / "test_nowhere.py") is None
    assert module_of(TESTS / "nowhere" / "test_config.py") is None
