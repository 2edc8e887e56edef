"""Video and animation results as a group of layers, one per frame: the frames are read off
the main thread (animated WebP/PNG/GIF by Qt, video files by FFmpeg when it is installed).

A layer per frame rather than an animated layer: Krita 5's Python API has no call to add
keyframes, and its frame import (Document.importAnimation) crashes headless Krita."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layers import add_result_layer, insertion_point
from .pixels import Rect, load_image
from .qt import QImage, QImageReader

QT_ANIMATIONS = {".webp", ".png", ".apng", ".gif"}
FFMPEG_TIMEOUT = 600.0  # seconds; a long 4K clip takes a while on a small CPU
MAX_FRAMES = 120  # a layer each: 120 frames of 1080p take about 1 GB in Krita


@dataclass
class Frames:
    """A clip's frames, decoded; `more` of them were left out (see MAX_FRAMES)."""

    images: list[QImage]
    more: int = 0


def extract_frames(video: Path, folder: Path) -> Frames:
    """The frames of `video`, decoded in order (a decode thread), written as PNGs into
    `folder` on the way. Raises ValueError with what to do when they cannot be read."""
    folder.mkdir(parents=True, exist_ok=True)
    if video.suffix.lower() in QT_ANIMATIONS:
        files = _qt_frames(video, folder)
    else:
        files = _ffmpeg_frames(video, folder)
    if not files:
        raise ValueError(f"{video.name} has no frames Krita can read.")
    kept = files[:MAX_FRAMES]
    return Frames([load_image(f) for f in kept], len(files) - len(kept))


def _qt_frames(path: Path, folder: Path) -> list[Path]:
    reader = QImageReader(str(path))
    frames: list[Path] = []
    while reader.canRead():
        image = reader.read()
        if image.isNull():
            break
        frame = folder / f"frame_{len(frames):05d}.png"
        image.save(str(frame), "PNG")
        frames.append(frame)
    return frames


def _ffmpeg_frames(path: Path, folder: Path) -> list[Path]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ValueError(
            f"{path.name} is a video: Krita reads its frames with FFmpeg, which is not "
            f"installed. Install FFmpeg (the one Krita uses to render animations) and run "
            f"again; the file is in {path.parent}."
        )
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path),
               str(folder / "frame_%05d.png")]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=FFMPEG_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise ValueError(f"FFmpeg could not read {path.name}: "
                         f"{detail.decode(errors='replace').strip()[-300:]}") from None
    return sorted(folder.glob("frame_*.png"))


def add_frame_layers(doc: Any, frames: Frames, name: str, at: Rect, above: Any = None) -> Any:
    """A group named `name` holding a layer per frame, first frame on top (main thread);
    returns the group."""
    group = doc.createGroupLayer(name)
    parent, sibling = (above.parentNode(), above) if above else insertion_point(doc)
    parent.addChildNode(group, sibling)
    previous = None
    for n, image in reversed(list(enumerate(frames.images, 1))):  # the last one at the bottom
        place = Rect(at.x, at.y, image.width(), image.height())
        previous = add_result_layer(doc, image, f"frame {n}", place, previous, parent=group)
    doc.setActiveNode(group)
    return group
