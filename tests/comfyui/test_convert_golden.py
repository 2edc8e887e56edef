"""The converter against ComfyUI's own frontend: every template ComfyUI publishes (whose nodes the
server knows) and our small cases, converted by the real frontend (tests/golden/make_goldens.py).

Each folder under tests/data/golden/ is one frontend served by one ComfyUI. The converter follows
CURRENT (frontend 1.58.1): that set, and any from a newer frontend, must match exactly. An older
set (1.27.10) must match except for the differences listed in OLDER_DIFFERENCES, each named with
its reason (docs/WIRE.md, "UI-format conversion: frontend 1.58 against 1.27").

Compared exactly: each node's id, class_type and every input. `_meta.title` too, with one known
exception: a node saved without a title shows the frontend's English name for its type, which
for a few types (e.g. ImageScaleToTotalPixels -> "Scale Image to Total Pixels") differs from the
server's display_name that we use; nothing else the frontend adds is compared.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from comfyrelay.comfyui.convert import to_api
from comfyrelay.comfyui.nodes import NodeDefs

from tests.paths import ROOT, WORKFLOWS

GOLDEN = ROOT / "tests" / "data" / "golden"
CURRENT = "1.58.1"  # the frontend the converter follows
CORPORA = ("templates", "templates_json")  # the pinned templates; comfyui-workflow-templates-json

# Where frontend 1.27.10 queued something else than 1.58.1 does, and we follow 1.58.1. Keyed by
# template (templates-json ones as `templates_json/<name>`) or case; each entry names what
# differs and why. docs/WIRE.md explains each kind.
DROPPED_DISPLAY = "1.27 sent the empty value of a display-only widget as an input; 1.58 does not"
RENUMBERED = "1.58 gives an inner node whose id is already used the next free id"
BYPASSED = "1.27 queued the contents of a bypassed subgraph node of the workflow (a 1.27 bug)"
SHIFTED = "1.27 set a subgraph's promoted widgets one widget off (a 1.27 bug: steps = the seed)"
UNPROMOTED = (
    "1.58 promotes no widget for a subgraph input whose inner node lacks that widget, so the "
    "subgraph node's saved values land one widget later (1.58's behaviour, followed)"
)


@dataclass(frozen=True)
class Difference:
    """One allowed difference: `node` (an id in 1.27's output) and what about it."""

    node: str
    input: str | None = None  # None: the whole node (renumbered, or its contents left out)
    renamed_to: str | None = None  # RENUMBERED: our id for 1.27's `node`
    reason: str = ""


def display(node: str, name: str) -> Difference:
    return Difference(node, name, reason=DROPPED_DISPLAY)


def renumbered(pairs: dict[str, str]) -> list[Difference]:
    return [Difference(old, renamed_to=new, reason=RENUMBERED) for old, new in pairs.items()]


def bypassed(*nodes: str) -> list[Difference]:
    """Subgraph nodes of the workflow whose contents (`node:…`) only 1.27 queued."""
    return [Difference(node, reason=BYPASSED) for node in nodes]


def shifted(node: str, *inputs: str, reason: str = SHIFTED) -> list[Difference]:
    return [Difference(node, name, reason=reason) for name in inputs]


OLDER_DIFFERENCES: dict[str, dict[str, list[Difference]]] = {
    "1.27.10": {
        "api_google_gemini": [display("7", "preview")],
        "api_google_gemini_image": [display("4", "preview")],
        "api_openai_chat": [display("2", "preview")],
        "api_stability_ai_audio_inpaint": [display("11", "audioUI"), display("6", "audioUI")],
        "api_stability_ai_audio_to_audio": [display("11", "audioUI"), display("6", "audioUI")],
        "api_stability_ai_text_to_audio": [display("6", "audioUI")],
        "api_wan_image_to_video": [display("3", "audioUI")],
        "api_wan_text_to_video": [display("3", "audioUI")],
        "audio_ace_step_1_m2m_editing": [display("59", "audioUI"), display("64", "audioUI")],
        "audio_ace_step_1_t2a_instrumentals": [display("59", "audioUI")],
        "audio_ace_step_1_t2a_song": [display("59", "audioUI")],
        "audio_stable_audio_example": [display("13", "audioUI")],
        "video_humo": [display("58", "audioUI")],
        "video_wan2_2_14B_s2v": [
            display("58", "audioUI"),
            *renumbered({"85:76": "85:184", "85:77": "85:183", "85:78": "85:182"}),
        ],
        "nested_subgraph": renumbered({"9:1:1": "9:1:10"}),
        "templates_json/api_wan_image_to_video": [display("3", "audioUI")],
        "templates_json/api_wan_text_to_video": [display("3", "audioUI")],
        "templates_json/audio_ace_step_1_t2a_instrumentals": [display("59", "audioUI")],
        "templates_json/video_humo": [display("58", "audioUI")],
        "templates_json/template_sugar_coated_gummy_style_qwen": [display("76:82", "preview")],
        "templates_json/image_ovis_text_to_image": shifted("57:44", "steps", "cfg"),
        "templates_json/template_qwen_image_illustration_lora": shifted("76:3", "steps", "cfg"),
        "templates_json/3d_hunyuan3d-v2.1": [
            *shifted("19:1", "ckpt_name", reason=UNPROMOTED),
            *shifted("19:4", "resolution", reason=UNPROMOTED),
            *shifted("19:7", "steps", "cfg", "sampler_name", "scheduler", reason=UNPROMOTED),
            *shifted("19:9", "algorithm", "threshold", reason=UNPROMOTED),
        ],
        "templates_json/flux1_dev_uso_reference_image_gen": bypassed("113"),
        "templates_json/image_flux.1_fill_dev_OneReward": bypassed("110"),
        "templates_json/image_qwen_image_instantx_inpainting_controlnet": bypassed("219", "220"),
        "templates_json/image_newbieimage_exp0_1-t2i": renumbered(
            {"41:43": "41:53", "41:49": "41:54"}
        ),
        "templates_json/templates-photo_to_product_vid": renumbered({"27:27": "27:31"}),
        "templates_json/video_wan2_2_14B_s2v": [
            display("58", "audioUI"),
            *bypassed("87", "165", "172", "174"),
            *renumbered({"85:76": "85:184", "85:77": "85:183", "85:78": "85:182"}),
        ],
    },
}


@dataclass(frozen=True)
class GoldenSet:
    folder: Path

    @property
    def frontend(self) -> str:
        return str(self.manifest["frontend_version"])

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "manifest.json").read_text()))

    def read_gz(self, name: str) -> Any:
        return json.loads(gzip.decompress((self.folder / name).read_bytes()))


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@cache
def golden_sets() -> dict[str, GoldenSet]:
    found = [GoldenSet(p) for p in sorted(GOLDEN.iterdir()) if (p / "manifest.json").is_file()]
    return {s.frontend: s for s in found}


@cache
def defs(frontend: str) -> NodeDefs:
    return NodeDefs(golden_sets()[frontend].read_gz("object_info.json.gz"))


@cache
def corpus(frontend: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Workflows and the frontend's outputs for them; empty where the set lacks that corpus."""
    folder = golden_sets()[frontend]
    if not (folder.folder / f"{name}.json.gz").is_file():
        return {}, {}
    return folder.read_gz(f"{name}.json.gz"), folder.read_gz(f"{name}_output.json.gz")


def saved_titles(workflow: dict[str, Any]) -> dict[str, str]:
    """Flattened id -> the title saved in the workflow, for nodes that have one."""
    subgraphs = {s["id"]: s for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    found: dict[str, str] = {}

    def walk(nodes: list[dict[str, Any]], path: str, depth: int) -> None:
        for node in nodes:
            node_id = f"{path}{node['id']}"
            if node.get("title"):
                found[node_id] = node["title"]
            if node["type"] in subgraphs and depth < 8:
                walk(subgraphs[node["type"]]["nodes"], node_id + ":", depth + 1)

    walk(workflow["nodes"], "", 0)
    return found


def differences(
    got: dict[str, Any], want: dict[str, Any], frontend: str, titles: dict[str, str]
) -> list[str]:
    """Every way `got` (ours) differs from `want` (the frontend's), one line each, naming the
    node and the input."""
    lines: list[str] = []
    for node_id in sorted(set(got) - set(want)):
        lines.append(f"node {node_id} ({got[node_id]['class_type']}): ours only")
    for node_id in sorted(set(want) - set(got)):
        lines.append(f"node {node_id} ({want[node_id]['class_type']}): frontend {frontend} only")
    for node_id in sorted(set(got) & set(want)):
        mine, theirs = got[node_id], want[node_id]
        where = f"node {node_id} ({theirs['class_type']})"
        if mine["class_type"] != theirs["class_type"]:
            lines.append(f"{where}: class_type {mine['class_type']!r}")
            continue
        for name in sorted(set(mine["inputs"]) | set(theirs["inputs"])):
            ours = mine["inputs"].get(name, "<absent>")
            its = theirs["inputs"].get(name, "<absent>")
            if ours != its:
                lines.append(f"{where} input {name!r}: ours {ours!r}, frontend {frontend} {its!r}")
        title = mine["_meta"]["title"]
        display_name = defs(frontend)[theirs["class_type"]].display_name
        if (node_id in titles or title != display_name) and title != theirs["_meta"]["title"]:
            lines.append(f"{where} title: ours {title!r}, frontend {theirs['_meta']['title']!r}")
    return lines


def allowing(want: dict[str, Any], allowed: list[Difference]) -> dict[str, Any]:
    """The older frontend's output with the allowed differences taken as 1.58 has them."""
    want = json.loads(json.dumps(want))
    renames = {d.node: d.renamed_to for d in allowed if d.renamed_to}
    for difference in allowed:
        if difference.renamed_to is None and difference.input is None:
            inside = [k for k in want if k.startswith(difference.node + ":")]
            assert inside, f"1.27 queued nothing inside {difference.node}; drop it from the list"
            for key in inside:  # queued by 1.27 only
                del want[key]
    for node in want.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and value[0] in renames:
                node["inputs"][name] = [renames[value[0]], value[1]]
    return {renames.get(k, k): v for k, v in want.items()}


def compare(frontend: str, name: str, workflow: dict[str, Any], want: dict[str, Any]) -> None:
    """`name` is the template or case, `templates_json/…` for the templates-json set."""
    allowed = OLDER_DIFFERENCES.get(frontend, {}).get(name, [])
    got = to_api(workflow, defs(frontend))
    if allowed:
        want = allowing(want, allowed)
        for difference in allowed:  # an allowed input must really differ, as 1.58 has it
            if difference.input is not None:
                node = difference.node
                assert difference.input not in got[node]["inputs"] or (
                    got[node]["inputs"][difference.input] != want[node]["inputs"][difference.input]
                ), f"{name}: {node}.{difference.input} no longer differs; drop it from the list"
                want[node]["inputs"].pop(difference.input, None)
                got[node]["inputs"].pop(difference.input, None)
    lines = differences(got, want, frontend, saved_titles(workflow))
    assert not lines, f"{name} converts unlike frontend {frontend}:\n  " + "\n  ".join(lines)


def cases() -> list[tuple[str, str, str]]:
    found = []
    for frontend in golden_sets():
        for kind in CORPORA:
            found += [(frontend, kind, name) for name in sorted(corpus(frontend, kind)[0])]
    return found


@pytest.mark.parametrize(("frontend", "kind", "name"), cases())
def test_template_converts_like_the_frontend(frontend: str, kind: str, name: str) -> None:
    workflows, outputs = corpus(frontend, kind)
    key = name if kind == "templates" else f"{kind}/{name}"
    compare(frontend, key, workflows[name], outputs[name])


@pytest.mark.parametrize("frontend", sorted(golden_sets()))
def test_case_converts_like_the_frontend(frontend: str) -> None:
    folder = golden_sets()[frontend].folder
    for name, want in json.loads((folder / "cases_output.json").read_text()).items():
        workflow = json.loads((WORKFLOWS / "ui" / f"{name}.json").read_text())
        compare(frontend, name, workflow, want)


def test_current_set_is_the_issue_24_corpus() -> None:
    """The set the converter follows: frontend 1.58.1 served by ComfyUI 0.3.64 over the
    templates ComfyUI pins (every one the older set has) and templates-json 0.1.123."""
    current = golden_sets()[CURRENT].manifest
    older = golden_sets()["1.27.10"].manifest
    assert current["comfyui_version"] == "0.3.64" and current["templates_version"] == "0.1.94"
    pinned, _ = corpus(CURRENT, "templates")
    assert len(pinned) == current["templates"] == older["templates"] == 166
    extra = current["templates_json"]
    assert extra["version"] == "0.1.123" and extra["package"] == "comfyui-workflow-templates-json"
    workflows, outputs = corpus(CURRENT, "templates_json")
    # 112 whose nodes a ComfyUI without torchaudio has, and 5 more that need its audio nodes
    assert len(workflows) == extra["templates"] == 117 and sorted(workflows) == sorted(outputs)
    assert len(extra["with_subgraphs"]) >= 30


def test_only_older_frontends_may_differ() -> None:
    """A set from the current frontend or a newer one is held to exact equality."""
    for frontend in OLDER_DIFFERENCES:
        assert version_key(frontend) < version_key(CURRENT)
    assert CURRENT in golden_sets() and "1.27.10" in golden_sets()


def test_older_set_shows_the_1_27_bugs_we_do_not_copy() -> None:
    """The 1.27.10 set, made over the same templates-json, has the shift and the bypassed
    subgraphs; the current set does not."""
    _, old_outputs = corpus("1.27.10", "templates_json")
    assert old_outputs["image_ovis_text_to_image"]["57:44"]["inputs"]["steps"] == 775709856082329
    assert any(k.startswith("113:") for k in old_outputs["flux1_dev_uso_reference_image_gen"])
    _, outputs = corpus(CURRENT, "templates_json")
    assert outputs["image_ovis_text_to_image"]["57:44"]["inputs"]["steps"] == 20


def test_promoted_widgets_keep_their_values() -> None:
    """The shift issue 24 found: a KSampler inside a subgraph whose steps got the seed."""
    workflows, _ = corpus(CURRENT, "templates_json")
    got = to_api(workflows["image_ovis_text_to_image"], defs(CURRENT))
    sampler = got["57:44"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (775709856082329, 20, 5)


def test_bypassed_subgraph_leaves_its_nodes_out() -> None:
    workflows, _ = corpus(CURRENT, "templates_json")
    got = to_api(workflows["flux1_dev_uso_reference_image_gen"], defs(CURRENT))
    assert not [k for k in got if k.startswith("113:")]  # node 113 is bypassed
    assert "112:31" in got  # the one that is not still runs


def test_golden_files_stay_small() -> None:
    for found in golden_sets().values():
        assert sum(p.stat().st_size for p in found.folder.iterdir()) < 2_000_000
