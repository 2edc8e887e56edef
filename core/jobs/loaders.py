"""Which file goes to which loader of a workflow: a job's media inputs bound to loaders by id
or title, a host's masks turned into what each loader reads (masks.py), and every file named
after its content, so the same bytes are one file on a server however often they are sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePath

from ..errors import WorkflowError
from .job import Job, MediaInput
from .masks import MASK_LOADERS, MaskForm, loader_pixels, mask_form
from .media import media_kind
from .outputs import check_picked
from .raster import encode_png
from .workflow import MEDIA_LOADERS, Workflow, is_link


@dataclass(frozen=True)
class LoaderFile:
    """A file ready to send: the loader it goes to, its content-named name, its bytes."""

    node_id: str
    name: str
    data: bytes = b""


def assign(workflow: Workflow, media: Sequence[MediaInput]) -> dict[str, list[MediaInput]]:
    """Each input's loader (node id), reading no bytes: raises WorkflowError for a loader
    that does not exist or cannot take the input, and for two images or two masks sent to
    one loader."""
    chosen: dict[str, list[MediaInput]] = {}
    for item in media:
        nid = _loader(workflow, item)
        taken = chosen.setdefault(nid, [])
        if any(other.mask == item.mask for other in taken):
            what = "masks" if item.mask else "inputs"
            raise WorkflowError(
                f"Two {what} are bound to loader {nid} ({workflow.title(nid)}): give it one "
                "source."
            )
        taken.append(item)
    return chosen


def _loader(workflow: Workflow, item: MediaInput) -> str:
    if not item.mask:
        name = item.file.name
        return workflow.image_node(item.node, media_kind(name), name)
    if item.node:
        nid = workflow.node_id(item.node)
    else:
        candidates = [n for n in workflow.media_nodes()
                      if workflow.graph[n]["class_type"] == "LoadImageMask"]
        if len(candidates) != 1:
            raise WorkflowError(
                f"Workflow {workflow.name!r} has {len(candidates) or 'no'} LoadImageMask "
                "nodes: name the loader that receives the mask (NODE=PATH)."
            )
        nid = candidates[0]
    if workflow.graph[nid]["class_type"] not in MASK_LOADERS:
        raise WorkflowError(
            f"Node {item.node!r} ({workflow.graph[nid]['class_type']}) cannot load a mask: "
            "send it to a LoadImage or LoadImageMask."
        )
    return nid


def prepare(workflow: Workflow, media: Sequence[MediaInput]) -> list[LoaderFile]:
    """The files to send, one per loader (the runner's thread: it reads and converts)."""
    files = []
    for nid, items in assign(workflow, media).items():
        mask = next((i for i in items if i.mask), None)
        plain = next((i for i in items if not i.mask), None)
        if mask is None:
            assert plain is not None
            data = plain.file.read()
            files.append(LoaderFile(nid, content_name(plain.file.name, data), data))
            continue
        node = workflow.graph[nid]
        where = f"loader {nid} ({workflow.title(nid)})"
        form = mask_form(node)
        image = plain.file.pixels() if plain is not None else None
        pixels = loader_pixels(mask.file.pixels(), form, image, where)
        data = encode_png(pixels)
        stem = PurePath((plain or mask).file.name).stem
        suffix = "mask" if form is MaskForm.CHANNEL or plain is None else "masked"
        files.append(LoaderFile(nid, content_name(f"{stem}-{suffix}.png", data), data))
    return files


def content_name(name: str, data: bytes) -> str:
    """`name` with a hash of `data` before its extension: the same bytes, the same name."""
    path = PurePath(name)
    digest = hashlib.sha256(data).hexdigest()[:16]
    return f"{path.stem}-{digest}{path.suffix}"


def placeholders(workflow: Workflow, media: Sequence[MediaInput]) -> dict[str, str]:
    """A stand-in file name per loader, to check the bindings before anything is read."""
    names = {}
    for nid, items in assign(workflow, media).items():
        plain = next((i for i in items if not i.mask), None)
        names[nid] = plain.file.name if plain is not None else "mask.png"
    return names


def check(job: Job) -> None:
    """Raise WorkflowError now, before anything is read or sent, when the job's media
    cannot go to its loaders or its bindings cannot be applied."""
    job.workflow.bind(job.bindings, files=placeholders(job.workflow, job.all_media()))
    check_picked(job.workflow, job.bindings.outputs)


class Role(str, Enum):
    """What a loader most likely wants, from its title and the nodes it feeds: hosts pick
    a default source with it (a render pass, the selection)."""

    IMAGE = "image"
    DEPTH = "depth"
    NORMAL = "normal"
    LINEART = "lineart"
    CANNY = "canny"
    MASK = "mask"
    VIDEO = "video"
    AUDIO = "audio"

    def __str__(self) -> str:
        return self.value


# Words that name a role, looked for in lower case; the first that matches wins.
_ROLE_WORDS = (
    (Role.NORMAL, ("normal",)),
    (Role.DEPTH, ("depth", "zoe", "midas")),
    (Role.LINEART, ("lineart", "line art", "line_art", "scribble")),
    (Role.CANNY, ("canny", "edge")),
    (Role.MASK, ("mask", "inpaint")),
)


@dataclass(frozen=True)
class Loader:
    """One loader of a workflow, for `comfyrelay inputs` and the hosts' source lists."""

    node_id: str
    title: str
    class_type: str
    kind: str  # image, mask, video or audio: what it reads
    file: str  # the file the workflow names now (kept when nothing is bound to it)
    role: Role

    def describe(self) -> str:
        return f"{self.node_id} ({self.title}): {self.kind}"


def workflow_loaders(workflow: Workflow) -> list[Loader]:
    """Every media loader, in node order, with what it reads and what it likely wants."""
    found = []
    for nid in workflow.media_nodes():
        node = workflow.graph[nid]
        kind = "mask" if node["class_type"] == "LoadImageMask" else workflow.loader_kind(nid)
        value = node["inputs"].get(MEDIA_LOADERS[node["class_type"]], "")
        found.append(Loader(nid, workflow.title(nid), node["class_type"], kind,
                            value if isinstance(value, str) else "", _role(workflow, nid, kind)))
    return found


def _role(workflow: Workflow, nid: str, kind: str) -> Role:
    if kind in ("video", "audio", "mask"):
        return Role(kind)
    words = [workflow.title(nid).lower()]
    for consumer in _consumers(workflow, nid):
        words.append(_words(workflow, consumer))
        for source in _sources(workflow, consumer):  # e.g. the ControlNet model it applies
            if source != nid:
                words.append(_words(workflow, source))
    text = " ".join(words)
    return next((role for role, names in _ROLE_WORDS if any(n in text for n in names)),
                Role.IMAGE)


def _consumers(workflow: Workflow, nid: str) -> list[str]:
    return [other for other, node in workflow.graph.items()
            if any(is_link(v) and str(v[0]) == nid for v in node["inputs"].values())]


def _sources(workflow: Workflow, nid: str) -> list[str]:
    return [str(v[0]) for v in workflow.graph[nid]["inputs"].values()
            if is_link(v) and str(v[0]) in workflow.graph]


def _words(workflow: Workflow, nid: str) -> str:
    node = workflow.graph[nid]
    texts = [str(node["class_type"]), workflow.title(nid)]
    texts += [v for v in node["inputs"].values() if isinstance(v, str)]
    return " ".join(texts).lower()
