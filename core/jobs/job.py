"""A job: one workflow run with its bindings, its input image and where its results go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ComfyRelayError
from .workflow import Bindings, Workflow


@dataclass(frozen=True)
class InputFile:
    """Bytes the host hands over (a render, a canvas); `name` is a suggested file name.

    The bytes are given (`data`) or made when the job is sent, on the runner's thread
    (`make`): reading or encoding a 4K image takes tens of ms to seconds, too long for a
    host's UI thread.
    """

    name: str
    data: bytes = field(default=b"", repr=False)
    make: Callable[[], bytes] | None = field(default=None, repr=False)

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

    def read(self) -> bytes:
        return self.data if self.make is None else self.make()


def _read(path: Path, temporary: bool) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ComfyRelayError(f"Cannot read the input image {path}: {reason}.") from exc
    if temporary:
        path.unlink(missing_ok=True)
    return data


@dataclass
class Job:
    workflow: Workflow
    out_dir: Path
    bindings: Bindings = field(default_factory=Bindings)
    image: InputFile | None = None
    label: str = ""  # shown by hosts, e.g. "frame 12"
