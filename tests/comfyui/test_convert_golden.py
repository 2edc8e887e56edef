"""The converter against ComfyUI's own frontend: every template ComfyUI publishes (whose nodes the
server knows) and our small cases, converted by the real frontend (tests/golden/make_goldens.py).

Compared exactly: each node's id, class_type and every input. `_meta.title` too, with one known
exception: a node saved without a title shows the frontend's English name for its type, which
for a few types (e.g. ImageScaleToTotalPixels -> "Scale Image to Total Pixels") differs from the
server's display_name that we use; nothing else the frontend adds is compared.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from comfyrelay.comfyui.convert import to_api
from comfyrelay.comfyui.nodes import NodeDefs

from tests.paths import ROOT, WORKFLOWS

GOLDEN = ROOT / "tests" / "data" / "golden" / "comfyui-0.3.64_frontend-1.27.10"


def read_gz(name: str) -> Any:
    return json.loads(gzip.decompress((GOLDEN / name).read_bytes()))


@cache
def defs() -> NodeDefs:
    return NodeDefs(read_gz("object_info.json.gz"))


@cache
def templates() -> tuple[dict[str, Any], dict[str, Any]]:
    return read_gz("templates.json.gz"), read_gz("templates_output.json.gz")


def saved_titles(workflow: dict[str, Any]) -> dict[str, str]:
    """Flattened id -> the title saved in the workflow, for nodes that have one."""
    subgraphs = {s["id"]: s for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    found: dict[str, str] = {}

    def walk(nodes: list[dict[str, Any]], path: str) -> None:
        for node in nodes:
            node_id = f"{path}{node['id']}"
            if node.get("title"):
                found[node_id] = node["title"]
            if node["type"] in subgraphs:
                walk(subgraphs[node["type"]]["nodes"], node_id + ":")

    walk(workflow["nodes"], "")
    return found


def assert_same(got: dict[str, Any], want: dict[str, Any], workflow: dict[str, Any]) -> None:
    assert sorted(got) == sorted(want), "node ids differ"
    titles = saved_titles(workflow)
    for node_id, node in want.items():
        mine = got[node_id]
        assert mine["class_type"] == node["class_type"], node_id
        assert mine["inputs"] == node["inputs"], f"inputs of node {node_id}"
        title = mine["_meta"]["title"]
        if node_id in titles or title != defs()[node["class_type"]].display_name:
            assert title == node["_meta"]["title"], f"title of node {node_id}"


def test_corpus_is_the_published_templates() -> None:
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    corpus, outputs = templates()
    assert manifest["templates_version"] == "0.1.94" and len(corpus) == manifest["templates"]
    assert len(corpus) >= 150 and sorted(corpus) == sorted(outputs)
    assert len(manifest["with_subgraphs"]) >= 5


@pytest.mark.parametrize("name", sorted(templates()[0]))
def test_template_converts_like_the_frontend(name: str) -> None:
    corpus, outputs = templates()
    assert_same(to_api(corpus[name], defs()), outputs[name], corpus[name])


CASES = json.loads((GOLDEN / "cases_output.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_converts_like_the_frontend(name: str) -> None:
    workflow = json.loads((WORKFLOWS / "ui" / f"{name}.json").read_text())
    got = to_api(workflow, defs())
    assert got == CASES[name]  # these cases are small enough to match whole, titles included


def test_golden_files_stay_small() -> None:
    size = sum(p.stat().st_size for p in Path(GOLDEN).iterdir())
    assert size < 2_000_000
