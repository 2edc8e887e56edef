"""The Krita zip's layout: what Tools › Scripts › Import Python Plugin from File expects."""

from __future__ import annotations

import zipfile
from pathlib import Path

from build_addons import KRITA_PYTHONS


def test_zip_has_desktop_file_package_core_and_pydantic_core_per_python(
    krita_data: Path,
) -> None:
    pykrita = krita_data / "krita" / "pykrita"
    desktop = (pykrita / "comfyrelay_krita.desktop").read_text()
    assert "X-KDE-Library=comfyrelay_krita" in desktop
    package = pykrita / "comfyrelay_krita"
    assert (package / "__init__.py").is_file()
    assert (package / "comfyrelay" / "jobs" / "runner.py").is_file()
    for name in (
        "requests",
        "urllib3",
        "idna",
        "certifi",
        "charset_normalizer",
        "websocket",
        "pydantic",
        "annotated_types",
        "typing_inspection",
    ):
        assert (package / "vendor" / name / "__init__.py").is_file(), name
    compiled = {p.name for p in (package / "vendor" / "pydantic_core").glob("_pydantic_core.*")}
    for python in KRITA_PYTHONS:
        tag = python.replace(".", "")
        assert any(f"cpython-{tag}-" in name for name in compiled), (python, compiled)


def test_zip_root_holds_only_the_plugin(tmp_path: Path) -> None:
    from build_addons import build_krita

    (plugin_zip,) = build_krita(tmp_path, ["linux-x64"])
    with zipfile.ZipFile(plugin_zip) as zf:
        roots = {name.split("/")[0] for name in zf.namelist()}
        assert not any("__pycache__" in n for n in zf.namelist())
    assert roots == {"comfyrelay_krita.desktop", "comfyrelay_krita"}
