"""API-format workflows: loading, the inputs a UI can offer, and binding values to them."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import WorkflowError
from .workflow_file import read_workflow_file

UIConverter = Callable[[dict[str, Any]], dict[str, Any]]  # UI format -> API format

IMAGE_LOADERS = {"LoadImage": "image", "LoadImageMask": "image", "LoadImageOutput": "image"}
VIDEO_LOADERS = {"LoadVideo": "file", "VHS_LoadVideo": "video", "VHS_LoadVideoPath": "video"}
SEED_NAMES = {"seed", "noise_seed"}
# Output nodes are known by name offline; the server's own check covers custom ones.
_OUTPUT_CLASS = re.compile(r"^(Save|Preview)|VideoCombine|Websocket", re.IGNORECASE)
MAX_SEED = 2**53 - 1  # seeds above this lose precision in the JavaScript front end


class WorkflowInput(BaseModel):
    """One literal input a host can show as a field."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    node_title: str
    class_type: str
    name: str
    value: Any
    kind: str  # image, video, prompt, seed, denoise, number, string or boolean

    @property
    def key(self) -> str:
        return f"{self.node_id}.{self.name}"


class Bindings(BaseModel):
    """What to change in a workflow for one run. Nodes are named by id or by title."""

    image_node: str | None = None  # which loader gets the host's image; default: the only one
    prompt: str | None = None
    prompt_node: str | None = None  # default: the text encoder wired to a sampler's positive
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    random_seed: bool = False
    denoise: float | None = Field(default=None, ge=0.0, le=1.0)
    values: dict[str, Any] = Field(default_factory=dict)  # "node.input" -> value

    def resolve(self) -> Bindings:
        """A copy with a concrete seed, so the seed used is known before the run."""
        if not self.random_seed:
            return self
        return self.model_copy(update={"seed": random.randint(0, 2**32 - 1), "random_seed": False})


class Workflow:
    def __init__(self, graph: dict[str, Any], name: str = "workflow") -> None:
        self.graph = check_api_format(graph, name)
        self.name = name

    @classmethod
    def load(cls, path: Path | str, convert: UIConverter | None = None) -> Workflow:
        """Load an API-format .json, a UI-format .json or a ComfyUI PNG/WebP. UI-format
        workflows need `convert` (comfyui.convert.load_workflow passes the server's)."""
        source = read_workflow_file(path)
        if source.prompt is not None:
            return cls(source.prompt, name=source.name)
        assert source.workflow is not None
        if convert is None:
            raise WorkflowError(ui_needs_server(source.name))
        return cls(convert(source.workflow), name=source.name)

    # ---- reading ----
    def title(self, node_id: str) -> str:
        node = self.graph[node_id]
        return str((node.get("_meta") or {}).get("title") or node["class_type"])

    def node_id(self, ref: str) -> str:
        """Resolve a node id or title; the error lists what exists."""
        if ref in self.graph:
            return ref
        matches = [nid for nid in self.graph if self.title(nid) == ref]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise WorkflowError(
                f"Several nodes are titled {ref!r} ({', '.join(matches)}); use the node id instead."
            )
        raise WorkflowError(f"The workflow has no node {ref!r}. Nodes: {self.describe_nodes()}.")

    def describe_nodes(self) -> str:
        return ", ".join(f"{nid} ({self.title(nid)})" for nid in self.graph)

    def image_nodes(self) -> list[str]:
        return [nid for nid, n in self.graph.items() if n["class_type"] in IMAGE_LOADERS]

    def media_nodes(self) -> list[str]:
        loaders = IMAGE_LOADERS | VIDEO_LOADERS
        return [nid for nid, n in self.graph.items() if n["class_type"] in loaders]

    def output_nodes(self) -> list[str]:
        return [nid for nid, n in self.graph.items() if _OUTPUT_CLASS.search(n["class_type"])]

    def inputs(self) -> list[WorkflowInput]:
        """Literal inputs a UI can offer, in node order; links and widgets' extras are left out."""
        found = []
        for nid, node in self.graph.items():
            for name, value in node.get("inputs", {}).items():
                kind = input_kind(node["class_type"], name, value)
                if kind:
                    found.append(
                        WorkflowInput(
                            node_id=nid,
                            node_title=self.title(nid),
                            class_type=node["class_type"],
                            name=name,
                            value=value,
                            kind=kind,
                        )
                    )
        return found

    def positive_prompt_node(self) -> str | None:
        """The text encoder feeding a sampler's `positive`, else the first text encoder."""
        for node in self.graph.values():
            link = node.get("inputs", {}).get("positive")
            if is_link(link) and "text" in self.graph.get(str(link[0]), {}).get("inputs", {}):
                return str(link[0])
        texts = [i.node_id for i in self.inputs() if i.kind == "prompt"]
        return texts[0] if texts else None

    # ---- binding ----
    def check(self, bindings: Bindings) -> None:
        """Raise WorkflowError now, before a host renders or reads pixels, if `bindings`
        cannot be applied (the image goes to a media loader when the workflow has one)."""
        self.bind(bindings, "check.png" if self.media_nodes() else None)

    def bind(self, bindings: Bindings, image_name: str | None = None) -> dict[str, Any]:
        """A new graph with the bindings applied; raises WorkflowError before anything is sent."""
        graph = copy.deepcopy(self.graph)
        if image_name is not None:
            nid = self.image_node(bindings.image_node)
            field = "video" if "video" in graph[nid]["inputs"] else "image"
            graph[nid]["inputs"][field] = image_name
        if bindings.prompt is not None:
            nid = self._prompt_node(bindings.prompt_node)
            graph[nid]["inputs"]["text"] = bindings.prompt
        self._set_everywhere(graph, SEED_NAMES, bindings.resolve().seed, "seed")
        self._set_everywhere(graph, {"denoise"}, bindings.denoise, "denoise")
        for key, value in bindings.values.items():
            nid, name = self.input_ref(key)
            graph[nid]["inputs"][name] = value
        return graph

    def image_node(self, ref: str | None) -> str:
        if ref:
            nid = self.node_id(ref)
            if nid not in self.media_nodes():
                raise WorkflowError(
                    f"Node {ref!r} is a {self.graph[nid]['class_type']}, not an "
                    f"image loader. Image loaders: {self._list(self.media_nodes())}."
                )
            return nid
        loaders = self.image_nodes() or self.media_nodes()
        if len(loaders) == 1:
            return loaders[0]
        if not loaders:
            raise WorkflowError(
                f"Workflow {self.name!r} has no LoadImage node to receive the "
                "image. Add one, or run it without an input image."
            )
        raise WorkflowError(
            f"Workflow {self.name!r} has several image loaders "
            f"({self._list(loaders)}); choose which one receives the image."
        )

    def input_ref(self, key: str) -> tuple[str, str]:
        """Resolve "node.input" (node by id or title) to a settable literal input."""
        node_ref, dot, name = key.rpartition(".")
        if not dot or not node_ref or not name:
            raise WorkflowError(f"{key!r} is not NODE.INPUT (for example 3.seed or KSampler.seed).")
        nid = self.node_id(node_ref)
        inputs = self.graph[nid].get("inputs", {})
        settable = [n for n, v in inputs.items() if not is_link(v)]
        if name not in inputs:
            raise WorkflowError(
                f"Node {nid} ({self.title(nid)}) has no input {name!r}. "
                f"Its inputs: {', '.join(settable) or 'none that can be set'}."
            )
        if is_link(inputs[name]):
            raise WorkflowError(
                f"Input {name!r} of node {nid} ({self.title(nid)}) is connected "
                f"to node {inputs[name][0]}; it cannot be set to a value."
            )
        return nid, name

    def _prompt_node(self, ref: str | None) -> str:
        nid = self.node_id(ref) if ref else self.positive_prompt_node()
        if nid is None or "text" not in self.graph[nid].get("inputs", {}):
            raise WorkflowError(
                f"Workflow {self.name!r} has no prompt text input to set"
                + (f" on node {ref!r}." if ref else ".")
            )
        return nid

    def _set_everywhere(
        self, graph: dict[str, Any], names: set[str], value: Any, what: str
    ) -> None:
        if value is None:
            return
        targets = [
            (nid, n)
            for nid, node in graph.items()
            for n, v in node["inputs"].items()
            if n in names and not is_link(v)
        ]
        if not targets:
            raise WorkflowError(f"Workflow {self.name!r} has no {what} input to set.")
        for nid, name in targets:
            graph[nid]["inputs"][name] = value

    def _list(self, ids: list[str]) -> str:
        return ", ".join(f"{nid} ({self.title(nid)})" for nid in ids)


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def input_kind(class_type: str, name: str, value: Any) -> str | None:
    if is_link(value) or name == "upload":
        return None
    loader = (IMAGE_LOADERS | VIDEO_LOADERS).get(class_type)
    if loader and name in ("image", "video", "file"):
        return "video" if class_type in VIDEO_LOADERS else "image"
    if name in SEED_NAMES and isinstance(value, int):
        return "seed"
    if name == "denoise" and isinstance(value, int | float):
        return "denoise"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "prompt" if name == "text" and "TextEncode" in class_type else "string"
    return None


def ui_needs_server(name: str) -> str:
    return (
        f"{name} is a ComfyUI UI-format workflow (the web UI's plain Save, a template, or the "
        "workflow inside a ComfyUI image). Converting it needs the node definitions of the "
        "server that will run it: on the command line pass --server URL (or set COMFYUI_URL); "
        "in Blender or Krita, set up a ComfyUI server first. Or, in ComfyUI, use Workflow › "
        "Export (API) and load that file instead."
    )


def check_api_format(data: Any, name: str) -> dict[str, Any]:
    """Refuse what is not an API-format graph, saying how to get one."""
    if isinstance(data, dict) and "nodes" in data and "links" in data:
        raise WorkflowError(ui_needs_server(name))
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict):
        data = data["prompt"]  # a saved /prompt request body
    if not isinstance(data, dict) or not data:
        raise WorkflowError(
            f"{name} is not a ComfyUI API-format workflow (expected a JSON object of nodes)."
        )
    bad = [
        str(k)
        for k, v in data.items()
        if not isinstance(v, dict) or not isinstance(v.get("class_type"), str)
    ]
    if bad:
        raise WorkflowError(
            f"{name} is not an API-format workflow: entries {', '.join(bad[:5])} "
            "have no class_type. Export it with Workflow › Export (API)."
        )
    graph = {str(k): {**v, "inputs": dict(v.get("inputs") or {})} for k, v in data.items()}
    if not any(_OUTPUT_CLASS.search(n["class_type"]) for n in graph.values()):
        raise WorkflowError(
            f"{name} has no output node, so it would produce nothing. Add a "
            "SaveImage (or PreviewImage) node and export it again."
        )
    return graph
