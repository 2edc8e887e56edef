"""API-format workflows: loading, the inputs a UI can offer, and binding values to them."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import WorkflowError
from .media import media_kind
from .workflow_file import read_workflow_file

UIConverter = Callable[[dict[str, Any]], dict[str, Any]]  # UI format -> API format

# Loaders a host's file can go to: class -> the input that names the file. ComfyUI's own
# (nodes.py, comfy_extras/nodes_video.py, nodes_audio.py) list the input folder, which
# /upload/image fills whatever the media (docs/WIRE.md §1.2, §1.6).
IMAGE_LOADERS = {"LoadImage": "image", "LoadImageMask": "image", "LoadImageOutput": "image"}
VIDEO_LOADERS = {
    "LoadVideo": "file",
    "VHS_LoadVideo": "video",
    "VHS_LoadVideoPath": "video",
    "VHS_LoadVideoFFmpeg": "video",
    "VHS_LoadVideoFFmpegPath": "video",
}
AUDIO_LOADERS = {"LoadAudio": "audio", "VHS_LoadAudioUpload": "audio"}
MEDIA_LOADERS = IMAGE_LOADERS | VIDEO_LOADERS | AUDIO_LOADERS
_PLACEHOLDER = {"image": "check.png", "video": "check.mp4", "audio": "check.wav"}
SEED_NAMES = {"seed", "noise_seed"}  # the frontend gives these a seed control
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
    # Typed from the server's node definitions (comfyui.fields.typed_inputs); None where
    # the server does not say, or no server was asked.
    type: str | None = None  # INT, FLOAT, STRING, BOOLEAN or COMBO
    choices: list[Any] | None = None  # what a COMBO accepts: checkpoints, samplers, ...
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    multiline: bool | None = None  # STRING inputs only
    tooltip: str | None = None
    default: Any = None
    control: bool | None = None  # the server gives it a fixed/random/increment control

    @property
    def key(self) -> str:
        return f"{self.node_id}.{self.name}"

    @property
    def has_seed_control(self) -> bool:
        """Whether a host offers fixed / random / increment: as the server says, else
        for seeds known by name."""
        return self.control if self.control is not None else self.kind == "seed"


class Bindings(BaseModel):
    """What to change in a workflow for one run. Nodes are named by id or by title."""

    image_node: str | None = None  # which loader gets the host's image; default: the only one
    prompt: str | None = None
    prompt_node: str | None = None  # default: the text encoder wired to a sampler's positive
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    random_seed: bool = False
    denoise: float | None = Field(default=None, ge=0.0, le=1.0)
    values: dict[str, Any] = Field(default_factory=dict)  # "node.input" -> value
    # Output nodes (id or title) whose files come back; empty: every saved file, or the
    # previews when nothing is saved (jobs/outputs.py).
    outputs: list[str] = Field(default_factory=list)

    def seed_value(self) -> int | None:
        """The seed these bindings set: `seed`, else the first seed input among `values`
        (hosts that keep one field per seed input), else None."""
        if self.seed is not None:
            return self.seed
        for key, value in self.values.items():
            if key.rpartition(".")[2] in SEED_NAMES and isinstance(value, int):
                return value
        return None

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
        return node_title(self.graph, node_id)

    def loader_kind(self, node_id: str) -> str:
        """image, video or audio for a media loader; "" for any other node."""
        class_type = self.graph[node_id]["class_type"]
        for kind, table in (("image", IMAGE_LOADERS), ("video", VIDEO_LOADERS),
                            ("audio", AUDIO_LOADERS)):
            if class_type in table:
                return kind
        return ""

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
        """Every loader a host's file can go to: image, video and audio."""
        return [nid for nid, n in self.graph.items() if n["class_type"] in MEDIA_LOADERS]

    def loaders_of(self, kind: str) -> list[str]:
        return [nid for nid in self.media_nodes() if self.loader_kind(nid) == kind]

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
    def check(self, bindings: Bindings, media_name: str | None = None) -> None:
        """Raise WorkflowError now, before a host renders or reads pixels, if `bindings`
        cannot be applied. The host's file (`media_name`, else a stand-in of the kind the
        chosen loader takes) goes to a media loader when the workflow has one."""
        if media_name is None and self.media_nodes():
            media_name = _PLACEHOLDER[self.loader_kind(self.image_node(bindings.image_node))]
        self.bind(bindings, media_name)

    def bind(self, bindings: Bindings, image_name: str | None = None,
             files: Mapping[str, str] | None = None) -> dict[str, Any]:
        """A new graph with the bindings applied; raises WorkflowError before anything is sent.

        `image_name` (an image, a video or a sound, by its extension) goes to the loader's
        own input: LoadImage.image, LoadVideo.file, LoadAudio.audio, VHS_LoadVideo.video...;
        `files` names the file of each loader by node id (jobs/loaders.py assigns them).
        """
        graph = copy.deepcopy(self.graph)
        if image_name is not None:
            nid = self.image_node(bindings.image_node, media_kind(image_name), image_name)
            graph[nid]["inputs"][MEDIA_LOADERS[graph[nid]["class_type"]]] = image_name
        for nid, name in (files or {}).items():
            graph[nid]["inputs"][MEDIA_LOADERS[graph[nid]["class_type"]]] = name
        if bindings.prompt is not None:
            nid = self._prompt_node(bindings.prompt_node)
            graph[nid]["inputs"]["text"] = bindings.prompt
        self._set_everywhere(graph, SEED_NAMES, bindings.resolve().seed, "seed")
        self._set_everywhere(graph, {"denoise"}, bindings.denoise, "denoise")
        for key, value in bindings.values.items():
            nid, name = self.input_ref(key)
            graph[nid]["inputs"][name] = value
        return graph

    def image_node(self, ref: str | None, kind: str = "", name: str = "") -> str:
        """The loader that receives the host's file of `kind` (image, video, audio; "" for
        any): the node `ref` names, else the only loader of that kind."""
        if ref:
            return self._chosen_loader(ref, kind, name)
        if kind in ("video", "audio"):
            loaders = self.loaders_of(kind)
        else:  # an image may also be a one-frame clip for a video loader
            loaders = self.image_nodes() or self.loaders_of("video") or (
                self.media_nodes() if kind != "image" else []
            )
        if len(loaders) == 1:
            return loaders[0]
        what = {"video": "video", "audio": "sound"}.get(kind, "image")
        if not loaders:
            example = {"video": "LoadVideo (or VHS_LoadVideo)", "audio": "LoadAudio"}
            sent = f" {name!r}" if name else ""
            raise WorkflowError(
                f"Workflow {self.name!r} has no {example.get(kind, 'LoadImage')} node to "
                f"receive the {what}{sent}. Add one, or run it without an input {what}."
            )
        raise WorkflowError(
            f"Workflow {self.name!r} has several {what} loaders "
            f"({self._list(loaders)}); choose which one receives the {what}."
        )

    def _chosen_loader(self, ref: str, kind: str, name: str) -> str:
        nid = self.node_id(ref)
        if nid not in self.media_nodes():
            raise WorkflowError(
                f"Node {ref!r} is a {self.graph[nid]['class_type']}, not an image loader "
                f"(nor a video or audio one). Loaders: {self._list(self.media_nodes())}."
            )
        takes = self.loader_kind(nid)
        if kind in ("image", "video", "audio") and kind != takes and (kind, takes) != (
            "image", "video"
        ):
            raise WorkflowError(
                f"Node {ref!r} ({self.graph[nid]['class_type']}) loads {takes}, but "
                f"{name or 'the input'} is {'an' if kind == 'image' else 'a'} {kind}. "
                f"Loaders: {self._list(self.media_nodes())}."
            )
        return nid

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
    if MEDIA_LOADERS.get(class_type) == name:
        if class_type in VIDEO_LOADERS:
            return "video"
        return "audio" if class_type in AUDIO_LOADERS else "image"
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


def node_title(graph: dict[str, Any], node_id: str) -> str:
    """A node's title for messages. Ids the server made up are named after the nearest node
    the graph has: "12:5" inside subgraph 12 when the graph keys only "12", "7.0.1" for what
    node 7 expanded into (docs/WIRE.md §1.3)."""
    node = graph.get(node_id)
    if isinstance(node, dict):
        return str((node.get("_meta") or {}).get("title") or node.get("class_type") or node_id)
    parent = re.split(r"[:.][^:.]*$", node_id)[0] if re.search(r"[:.]", node_id) else ""
    return node_title(graph, parent) if parent else node_id


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
