"""Video and animation results as one animated layer: the frames are read off the main thread
(animated WebP/PNG/GIF by Qt, video files by FFmpeg when it is installed) and brought in with
Krita's own frame import, so the layer has one keyframe per frame."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from .qt import QImageReader

QT_ANIMATIONS = {".webp", ".png", ".apng", ".gif"}
FFMPEG_TIMEOUT = 600.0  # seconds; a long 4K clip takes a while on a small CPU


def extract_frames(video: Path, folder: Path) -> list[Path]:
    """Each frame of `video` as a PNG in `folder`, in order (a decode thread). Raises
    ValueError with what to do when the frames cannot be read."""
    folder.mkdir(parents=True, exist_ok=True)
    if video.suffix.lower() in QT_ANIMATIONS:
        frames = _qt_frames(video, folder)
    else:
        frames = _ffmpeg_frames(video, folder)
    if not frames:
        raise ValueError(f"{video.name} has no frames Krita can read.")
    return frames


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


def add_animated_layer(doc: Any, frames: list[Path], name: str) -> Any:
    """One new layer holding the frames from frame 0 on (main thread); returns it. The
    document's animation range grows to fit."""
    if not doc.importAnimation([str(f) for f in frames], 0, 1):
        raise ValueError(f"Krita could not import the frames of {name}.")
    doc.waitForDone()
    layer = doc.activeNode()  # the import makes the new layer active
    layer.setName(name)
    if doc.fullClipRangeEndTime() < len(frames) - 1:
        doc.setFullClipRangeEndTime(len(frames) - 1)
    return layer
