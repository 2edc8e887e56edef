"""A job: one workflow run with its bindings, its media inputs and where its results go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ComfyRelayError
from .raster import Pixels, decode_png, encode_png
from .workflow import Bindings, Workflow


@dataclass(frozen=True)
class InputFile:
    """Bytes the host hands over (a render, a canvas); `name` is a suggested file name.

    The bytes are given (`data`) or made when the job is sent, on the runner's thread
    (`make`): reading or encoding a 4K image takes tens of ms to seconds, too long for a
    host's UI thread. A host may hand raw pixels instead (`raw`, also made when sent): they
    go out as a PNG, and a mask made from them needs no decoding.
    """

    name: str
    data: bytes = field(default=b"", repr=False)
    make: Callable[[], bytes] | None = field(default=None, repr=False)
    raw: Callable[[], Pixels] | None = field(default=None, repr=False)

    @classmethod
    def from_path(
        cls, path: Path | str, *, read_now: bool = True, temporary: bool = False
    ) -> InputFile:
        """The file's bytes, now or when sent; `temporary`: the host's own save, deleted
        once read."""
        path = Path(path)
        if read_now:
            return cls(name=path.name, data=path.read_bytes())
        return cls(name=path.name, make=lambda: _read(path, temporary))

    @classmethod
    def from_pixels(cls, name: str, pixels: Pixels | Callable[[], Pixels]) -> InputFile:
        """Raw pixels (or what makes them, called on the runner's thread), sent as a PNG."""
        make = pixels if callable(pixels) else (lambda: pixels)
        return cls(name=name, raw=make)

    def read(self) -> bytes:
        if self.raw is not None:
            return encode_png(self.raw())
        return self.data if self.make is None else self.make()

    def pixels(self) -> Pixels:
        """Its pixels: as handed over, or decoded (8-bit PNG only)."""
        return self.raw() if self.raw is not None else decode_png(self.read(), self.name)


def _read(path: Path, temporary: bool) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ComfyRelayError(f"Cannot read the input image {path}: {reason}.") from exc
    if temporary:
        path.unlink(missing_ok=True)
    return data


@dataclass(frozen=True)
class MediaInput:
    """What goes to one loader: `node` by id or title (None: the only loader of the file's
    kind); `mask`: a host mask, white = change, sent in the loader's own form
    (jobs/masks.py)."""

    node: str | None
    file: InputFile
    mask: bool = False


@dataclass
class Job:
    """`image` goes to the loader `bindings.image_node` names (else the only one); `media`
    to the loaders each names. Together, one source per loader (and a mask)."""

    workflow: Workflow
    out_dir: Path
    bindings: Bindings = field(default_factory=Bindings)
    image: InputFile | None = None
    label: str = ""  # shown by hosts, e.g. "frame 12"
    media: tuple[MediaInput, ...] = ()

    def all_media(self) -> tuple[MediaInput, ...]:
        """Every media input, the `image` first."""
        if self.image is None:
            return self.media
        return (MediaInput(self.bindings.image_node, self.image), *self.media)
