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
from .job import InputFile, Job, MediaInput
from .masks import MASK_LOADERS, loader_pixels, mask_form
from .media import media_kind
from .outputs import check_picked
from .raster import Pixels, decode_png, encode_png
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
        kind = media_kind(name)
        if item.node is None and kind == "image":
            # An image goes to the only image loader that is not a mask loader: the usual
            # inpainting graph has a LoadImage and a LoadImageMask.
            plain = [n for n in workflow.image_nodes()
                     if workflow.graph[n]["class_type"] != "LoadImageMask"]
            if len(plain) == 1:
                return plain[0]
        return workflow.image_node(item.node, kind, name)
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
    """The files to send, one per loader (the runner's thread: it reads and converts).
    A file bound to several loaders is read once (a host's temporary file is gone after)."""
    read = _Reader()
    files = []
    for nid, items in assign(workflow, media).items():
        mask = next((i for i in items if i.mask), None)
        plain = next((i for i in items if not i.mask), None)
        if mask is None:
            assert plain is not None
            data = read.data(plain.file)
            files.append(LoaderFile(nid, content_name(plain.file.name, data), data))
            continue
        where = f"loader {nid} ({workflow.title(nid)})"
        image = read.pixels(plain.file) if plain is not None else None
        pixels = loader_pixels(read.pixels(mask.file), mask_form(workflow.graph[nid]), image,
                               where)
        data = encode_png(pixels)
        files.append(LoaderFile(nid, content_name("mask.png", data), data))
    return files


class _Reader:
    """Each InputFile's bytes and pixels, made once per prepare() (runner's thread)."""

    def __init__(self) -> None:
        self._data: dict[int, bytes] = {}
        self._pixels: dict[int, Pixels] = {}
        self._keep: list[InputFile] = []  # ids stay valid while the files live

    def data(self, file: InputFile) -> bytes:
        if id(file) not in self._data:
            self._keep.append(file)
            self._data[id(file)] = file.read()
        return self._data[id(file)]

    def pixels(self, file: InputFile) -> Pixels:
        if id(file) not in self._pixels:
            self._keep.append(file)
            self._pixels[id(file)] = (file.raw() if file.raw is not None
                                      else decode_png(self.data(file), file.name))
        return self._pixels[id(file)]


def content_name(name: str, data: bytes) -> str:
    """A name made of a hash of `data` and `name`'s extension: the same bytes, the same
    name, whatever the file was called, so they are one file on a server."""
    digest = hashlib.sha256(data).hexdigest()[:24]
    return f"comfyrelay-{digest}{PurePath(name).suffix.lower()}"


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


class LoaderKind(str, Enum):
    """What a loader reads."""

    IMAGE = "image"
    MASK = "mask"  # a LoadImageMask
    VIDEO = "video"
    AUDIO = "audio"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Loader:
    """One loader of a workflow, for `comfyrelay inputs` and the hosts' source lists."""

    node_id: str
    title: str
    class_type: str
    kind: LoaderKind
    file: str  # the file the workflow names now (kept when nothing is bound to it)
    role: Role

    def describe(self) -> str:
        return f"{self.node_id} ({self.title}): {self.kind}"


def workflow_loaders(workflow: Workflow) -> list[Loader]:
    """Every media loader, in node order, with what it reads and what it likely wants."""
    found = []
    for nid in workflow.media_nodes():
        node = workflow.graph[nid]
        kind = LoaderKind.MASK if node["class_type"] == "LoadImageMask" else LoaderKind(
            workflow.loader_kind(nid))
        value = node["inputs"].get(MEDIA_LOADERS[node["class_type"]], "")
        found.append(Loader(nid, workflow.title(nid), node["class_type"], kind,
                            value if isinstance(value, str) else "", _role(workflow, nid, kind)))
    return found


def _role(workflow: Workflow, nid: str, kind: LoaderKind) -> Role:
    if kind is not LoaderKind.IMAGE:
        return Role(kind.value)
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
