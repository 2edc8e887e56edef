"""Regenerate the converter's golden files from a running ComfyUI and its own web frontend.

For every UI-format workflow of the corpus whose nodes the server knows, headless Chromium loads
it with the frontend's `app.loadGraphData(wf)` and stores what `await app.graphToPrompt()` gives
as `output`, next to the `/object_info` the frontend used. The converter must produce the same
(tests/comfyui/test_convert_golden.py).

Needs: a running ComfyUI (this script never builds or fetches one), Debian's `chromium`, and the
`playwright` package (it drives the system browser; never `playwright install`).

    python tests/golden/make_goldens.py http://127.0.0.1:8199 \
        --templates /path/to/site-packages/comfyui_workflow_templates/templates

writes tests/data/golden/comfyui-<version>_frontend-<version>/.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", help="ComfyUI URL, e.g. http://127.0.0.1:8199")
    parser.add_argument("--templates", type=Path, help="folder of template .json files")
    parser.add_argument("--templates-version", default="", help="e.g. 0.1.94 (for the manifest)")
    parser.add_argument("--out", type=Path, help="golden folder (default: named by versions)")
    args = parser.parse_args(argv)
    server = args.server.rstrip("/")

    stats = get_json(server, "/system_stats")["system"]
    object_info = get_json(server, "/object_info")
    corpus, skipped = load_corpus(args.templates, object_info) if args.templates else ({}, {})
    cases = {p.stem: json.loads(p.read_text()) for p in sorted(CASES.glob("*.json"))}

    frontend_version, outputs = run_frontend(server, {**corpus, **cases})
    folder = args.out or GOLDEN / f"comfyui-{stats['comfyui_version']}_frontend-{frontend_version}"
    folder.mkdir(parents=True, exist_ok=True)
    write_gz(folder / "object_info.json.gz", object_info)
    write_gz(folder / "templates.json.gz", {k: corpus[k] for k in sorted(corpus)})
    write_gz(folder / "templates_output.json.gz", {k: outputs[k] for k in sorted(corpus)})
    (folder / "cases_output.json").write_text(
        json.dumps({k: outputs[k] for k in sorted(cases)}, indent=1, sort_keys=True) + "\n"
    )
    manifest = {
        "comfyui_version": stats["comfyui_version"],
        "frontend_version": frontend_version,
        "templates_package": "comfyui-workflow-templates",
        "templates_version": args.templates_version,
        "templates": len(corpus),
        "with_subgraphs": sorted(k for k, wf in corpus.items() if subgraphs(wf)),
        "skipped": skipped,
        "cases": sorted(cases),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(corpus)} templates ({len(skipped)} skipped), {len(cases)} cases -> {folder}")
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
