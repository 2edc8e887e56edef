"""Regenerate the converter's golden files from a running ComfyUI and its own web frontend.

For every UI-format workflow of the corpus whose nodes the server knows, headless Chromium loads
it with the frontend's `app.loadGraphData(wf)` and stores what `await app.graphToPrompt()` gives
as `output`, next to the `/object_info` the frontend used. The converter must produce the same
(tests/comfyui/test_convert_golden.py).

Needs Debian's `chromium` and the `playwright` package (it drives the system browser; never
`playwright install`), and a ComfyUI. Either one already running, serving its own frontend:

    python tests/golden/make_goldens.py http://127.0.0.1:8199 \
        --templates /path/to/site-packages/comfyui_workflow_templates/templates

or a ComfyUI source folder (this script never builds or fetches ComfyUI itself) and the Python
of its venv, which the script starts on 127.0.0.1:8199, CPU only, serving the pinned frontend
from PyPI with `--front-end-root`, over the templates that ComfyUI pins and the pinned
templates-json set:

    python tests/golden/make_goldens.py --comfyui /work/comfy-0.3.64 \
        --python /work/comfy-venv/bin/python

Both write tests/data/golden/comfyui-<version>_frontend-<version>/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
CASES = ROOT / "tests" / "data" / "workflows" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Node types the frontend handles itself; the server never sees them.
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
TIMEOUT = 30  # seconds for each HTTP request to the server
# The frontend and the second template set the goldens follow (issue 24: what people save
# workflows with today). The templates ComfyUI itself pins are read from its requirements.txt.
FRONTEND_VERSION = "1.58.1"
TEMPLATES_JSON_VERSION = "0.1.123"
PORT = 8199


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", nargs="?", help="ComfyUI URL, e.g. http://127.0.0.1:8199")
    parser.add_argument("--templates", type=Path, help="folder of template .json files")
    parser.add_argument("--templates-version", default="", help="e.g. 0.1.94 (for the manifest)")
    parser.add_argument("--comfyui", type=Path, help="ComfyUI source folder to start")
    parser.add_argument("--python", type=Path, help="the Python of that ComfyUI's venv")
    parser.add_argument("--frontend", default=FRONTEND_VERSION, help="comfyui-frontend-package")
    parser.add_argument("--templates-json", default=TEMPLATES_JSON_VERSION,
                        help="comfyui-workflow-templates-json version")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "goldens",
                        help="where the PyPI packages are unpacked")  # fmt: skip
    parser.add_argument("--out", type=Path, help="golden folder (default: named by versions)")
    args = parser.parse_args(argv)
    if args.comfyui:
        return from_source(args)
    if not args.server:
        parser.error("give a server URL, or --comfyui and --python")
    extra: dict[str, Any] = {}
    return generate(args.server.rstrip("/"), args.templates, args.templates_version, extra,
                    args.out)  # fmt: skip


def from_source(args: argparse.Namespace) -> int:
    """Start the ComfyUI at args.comfyui with the pinned frontend and template packages."""
    pinned = pinned_versions(args.comfyui / "requirements.txt")
    templates_version = pinned["comfyui-workflow-templates"]
    frontend = unpack(args.cache, "comfyui-frontend-package", args.frontend)
    templates = unpack(args.cache, "comfyui-workflow-templates", templates_version)
    templates_json = unpack(args.cache, "comfyui-workflow-templates-json", args.templates_json)
    extra = {
        "templates_json": (
            templates_json / "comfyui_workflow_templates_json" / "templates",
            args.templates_json,
        )
    }
    static = frontend / "comfyui_frontend_package" / "static"
    with comfyui_server(args.comfyui, args.python or Path(sys.executable), static) as server:
        return generate(
            server,
            templates / "comfyui_workflow_templates" / "templates",
            templates_version,
            extra,
            args.out,
        )


def pinned_versions(requirements: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file."""
    found: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def unpack(cache: Path, package: str, version: str) -> Path:
    """The wheel of package==version from PyPI (pip's own client), unpacked once into cache."""
    folder = cache / f"{package}-{version}"
    if folder.is_dir():
        return folder
    wheels = cache / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "-d", str(wheels), f"{package}=={version}"],
        check=True,
    )  # fmt: skip
    stem = package.replace("-", "_")
    wheel = next(wheels.glob(f"{stem}-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    return folder


@contextmanager
def comfyui_server(source: Path, python: Path, static: Path) -> Iterator[str]:
    """ComfyUI on loopback, CPU only, serving the frontend in `static`; stopped afterwards."""
    url = f"http://127.0.0.1:{PORT}"
    log = (Path(tempfile.gettempdir()) / "goldens-comfyui.log").open("w")
    command = [str(python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(PORT),
               "--front-end-root", str(static), "--disable-auto-launch"]  # fmt: skip
    process = subprocess.Popen(command, cwd=source, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # torch's first import is slow
        while True:
            if process.poll() is not None:
                raise SystemExit(f"ComfyUI exited ({process.returncode}); see {log.name}")
            try:
                get_json(url, "/system_stats")
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit(f"ComfyUI did not answer in 300 s; see {log.name}") from None
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def generate(
    server: str,
    templates: Path | None,
    templates_version: str,
    extra: dict[str, tuple[Path, str]],
    out: Path | None,
) -> int:
    """Write the golden folder: the pinned templates, each `extra` set (name -> folder and
    version) and our cases, as the server's frontend converts them."""
    stats = get_json(server, "/system_stats")["system"]
    object_info = get_json(server, "/object_info")
    corpus, skipped = load_corpus(templates, object_info) if templates else ({}, {})
    extras = {name: load_corpus(folder, object_info) for name, (folder, _) in extra.items()}
    cases = {p.stem: json.loads(p.read_text()) for p in sorted(CASES.glob("*.json"))}

    every = {**corpus, **cases}
    for name, (found, _) in extras.items():
        every.update({f"{name}/{k}": v for k, v in found.items()})
    frontend_version, outputs = run_frontend(server, every)
    folder = out or GOLDEN / f"comfyui-{stats['comfyui_version']}_frontend-{frontend_version}"
    folder.mkdir(parents=True, exist_ok=True)
    write_gz(folder / "object_info.json.gz", object_info)
    write_gz(folder / "templates.json.gz", {k: corpus[k] for k in sorted(corpus)})
    write_gz(folder / "templates_output.json.gz", {k: outputs[k] for k in sorted(corpus)})
    for name, (found, _) in extras.items():
        write_gz(folder / f"{name}.json.gz", {k: found[k] for k in sorted(found)})
        write_gz(folder / f"{name}_output.json.gz",
                 {k: outputs[f"{name}/{k}"] for k in sorted(found)})  # fmt: skip
    (folder / "cases_output.json").write_text(
        json.dumps({k: outputs[k] for k in sorted(cases)}, indent=1, sort_keys=True) + "\n"
    )
    manifest: dict[str, Any] = {
        "comfyui_version": stats["comfyui_version"],
        "frontend_version": frontend_version,
        "templates_package": "comfyui-workflow-templates",
        "templates_version": templates_version,
        "templates": len(corpus),
        "with_subgraphs": sorted(k for k, wf in corpus.items() if subgraphs(wf)),
        "skipped": skipped,
        "cases": sorted(cases),
    }
    for name, (found, missing) in extras.items():
        manifest[name] = {
            "package": "comfyui-workflow-templates-json",
            "version": extra[name][1],
            "templates": len(found),
            "with_subgraphs": sorted(k for k, wf in found.items() if subgraphs(wf)),
            "skipped": missing,
        }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    counts = ", ".join(f"{len(found)} of {name}" for name, (found, _) in extras.items())
    print(f"{len(corpus)} templates ({len(skipped)} skipped), {counts}, {len(cases)} cases "
          f"-> {folder}")  # fmt: skip
    return 0


def get_json(server: str, route: str) -> Any:
    response = requests.get(server + route, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def subgraphs(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return list((workflow.get("definitions") or {}).get("subgraphs") or [])


def load_corpus(
    folder: Path, object_info: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """UI-format workflows whose every node type the server (or the frontend) knows."""
    corpus: dict[str, Any] = {}
    skipped: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.json")):
        workflow = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(workflow, dict) or "nodes" not in workflow:
            continue  # the template index, not a workflow
        inner = {s["id"] for s in subgraphs(workflow)}
        nodes = [*workflow["nodes"], *(n for s in subgraphs(workflow) for n in s["nodes"])]
        known = inner | FRONTEND_ONLY | set(object_info)
        missing = sorted({n["type"] for n in nodes} - known)
        if missing:
            skipped[path.stem] = missing
        else:
            corpus[path.stem] = workflow
    return corpus, skipped


def run_frontend(server: str, workflows: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Each workflow's `graphToPrompt().output`, from the server's own frontend."""
    from playwright.sync_api import sync_playwright

    outputs: dict[str, Any] = {}
    version = "unknown"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(server, wait_until="load")
        page.wait_for_function(
            "() => window.app && window.app.graph && window.LiteGraph"
            " && 'KSampler' in window.LiteGraph.registered_node_types",
            timeout=120_000,
        )
        for name, workflow in workflows.items():
            result = page.evaluate(
                """async (wf) => {
                    await window.app.loadGraphData(wf, true, false, null, {
                        showMissingNodesDialog: false, showMissingModelsDialog: false});
                    const p = await window.app.graphToPrompt();
                    return {output: p.output, version: p.workflow.extra.frontendVersion};
                }""",
                workflow,
            )
            outputs[name] = result["output"]
            version = result["version"]
            print(f"{name}: {len(result['output'])} nodes", file=sys.stderr)
        browser.close()
    return version, outputs


def write_gz(path: Path, data: Any) -> None:
    # mtime=0 keeps the bytes the same when the content is, so reruns make no git noise.
    text = json.dumps(data, indent=None, sort_keys=True, separators=(",", ":"))
    path.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))


if __name__ == "__main__":
    sys.exit(main())
