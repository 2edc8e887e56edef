"""Video and animated results in Krita: frames decoded off the main thread (animated
WebP/PNG/GIF by Qt, video files by FFmpeg when it is installed), then either one animated
paint layer (Krita with a window) or a group with a layer per frame (headless Krita).

The animated layer is made with Document.importAnimation, one frame file per call, each new
single-keyframe layer merged down into the first, one frame per event-loop turn. Measured on
Krita 5.1.5 (issue 25): importAnimation with two or more files segfaults about 1 in 10 while
loading a later file; one file per call with mergeDown gave 180 calls without a crash.
importAnimation also dereferences the main window, so headless Krita (kritarunner, no
window) gets the group of layers instead: it segfaults there every time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .layers import add_result_layer, insertion_point
from .pixels import Rect, load_fitted
from .qt import ARGB32, QImage, QImageReader, QPainter

QT_ANIMATIONS = {".webp", ".png", ".apng", ".gif"}
FFMPEG_TIMEOUT = 600.0  # seconds; a long 4K clip takes a while on a small CPU
MAX_FRAMES = 120  # a layer each in a group: 120 frames of 1080p take about 1 GB in Krita
INSTALL_FFMPEG = ("Install FFmpeg (the one Krita uses to render animations, e.g. "
                  "`sudo apt install ffmpeg`, or ffmpeg.org on Windows and macOS) and run again")


@dataclass
class Frames:
    """A clip's frames, decoded; `more` of them were left out (see MAX_FRAMES).

    `images` are filled for a group of layers; `files` always hold the kept frames as PNGs
    (placed on a canvas-sized image when made for an animated layer)."""

    images: list[QImage]
    more: int = 0
    files: list[Path] = field(default_factory=list)
    fps: float | None = None
    animated: bool = False  # made for an animated layer (files only)
    scaled_from: tuple[int, int] | None = None  # the frames' own size, when scaled


@dataclass
class Placement:
    """Where a clip's frames go: each is scaled to `region`, the area the run replaces. For
    an animated layer (`canvas`, the document's size, given) each is then drawn there on a
    transparent canvas-sized image: importAnimation puts a file at the canvas's corner."""

    region: Rect
    canvas: tuple[int, int] | None = None


def extract_frames(video: Path, folder: Path, placed: Placement) -> Frames:
    """The frames of `video`, decoded in order (a decode thread), written as PNGs into
    `folder` on the way and scaled to the region. For an animated layer the files are
    canvas-sized and no images are kept in memory. Raises ValueError with what to do when
    they cannot be read."""
    folder.mkdir(parents=True, exist_ok=True)
    if video.suffix.lower() in QT_ANIMATIONS:
        files, fps = _qt_frames(video, folder)
    else:
        files, fps = _ffmpeg_frames(video, folder), video_fps(video)
    if not files:
        raise ValueError(f"{video.name} has no frames Krita can read.")
    region = placed.region
    size = (region.width, region.height)
    scaled_from: tuple[int, int] | None = None
    if placed.canvas is not None:
        placed_files = []
        for file in files:
            image, own = load_fitted(file, size)
            scaled_from = scaled_from or own
            if own is None and (region.x, region.y, *size) == (0, 0, *placed.canvas):
                placed_files.append(file)  # already the canvas: no second encode
            else:
                out = file.with_name(f"placed_{file.name}")
                placed_files.append(place_frame(image, out, region, placed.canvas))
        return Frames([], 0, placed_files, fps, animated=True, scaled_from=scaled_from)
    kept = files[:MAX_FRAMES]
    images = []
    for file in kept:
        image, own = load_fitted(file, size)
        scaled_from = scaled_from or own
        images.append(image)
    return Frames(images, len(files) - len(kept), kept, fps, scaled_from=scaled_from)


def place_frame(image: QImage, out: Path, at: Rect, canvas: tuple[int, int]) -> Path:
    """`image` (already at.width × at.height) drawn at (at.x, at.y) on a transparent PNG of
    the canvas's size, written to `out`."""
    placed = QImage(canvas[0], canvas[1], ARGB32)
    placed.fill(0)
    painter = QPainter(placed)
    painter.drawImage(at.x, at.y, image)
    painter.end()
    placed.save(str(out), "PNG")
    return out


def _qt_frames(path: Path, folder: Path) -> tuple[list[Path], float | None]:
    reader = QImageReader(str(path))
    frames: list[Path] = []
    delay = 0
    while reader.canRead():
        image = reader.read()
        if image.isNull():
            break
        delay = delay or reader.nextImageDelay()
        frame = folder / f"frame_{len(frames):05d}.png"
        image.save(str(frame), "PNG")
        frames.append(frame)
    return frames, (1000.0 / delay if delay > 0 else None)


def _ffmpeg_frames(path: Path, folder: Path) -> list[Path]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ValueError(f"{path.name} is a video: Krita reads its frames with FFmpeg, "
                         f"which is not installed. {INSTALL_FFMPEG}; the file is in "
                         f"{path.parent}.")
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path),
               str(folder / "frame_%05d.png")]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=FFMPEG_TIMEOUT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise ValueError(f"FFmpeg could not read {path.name}: "
                         f"{detail.decode(errors='replace').strip()[-300:]}") from None
    return sorted(folder.glob("frame_*.png"))


def video_fps(path: Path) -> float | None:
    """The clip's frame rate by ffprobe, None when it cannot tell."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
               "stream=avg_frame_rate,r_frame_rate", "-of", "json", str(path)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60, check=True)
        stream = json.loads(done.stdout)["streams"][0]
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError):
        return None
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, _, den = str(stream.get(key, "0/0")).partition("/")
        try:
            rate = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if rate > 0:
            return rate
    return None


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
    return group


def can_animate(doc: Any) -> bool:
    """Whether importAnimation is safe here: it needs Krita's main window (headless Krita
    has none and crashes), and a view of `doc` so the new layer is shown."""
    try:
        from krita import Krita  # only inside Krita
    except ImportError:
        return False
    krita = Krita.instance()
    if krita.activeWindow() is None:
        return False
    return any(view.document() == doc for window in krita.windows() for view in window.views())


class AnimatedLayer:
    """Frame files becoming one animated paint layer, one frame per step() (main thread).

    Each step imports one file at its frame (a new single-keyframe layer on top of the
    stack) and merges it down into the layer made so far, which is kept on top of the stack
    meanwhile. The last step moves it above `above` (or the active layer) and names it."""

    def __init__(self, doc: Any, files: list[Path], start: int, name: str, above: Any = None,
                 fps: float | None = None) -> None:
        self.doc, self.files, self.start, self.name = doc, list(files), start, name
        self.above, self.fps = above, fps
        self.done = 0  # frames in the layer so far
        self.layer: Any = None
        self.error: str | None = None
        self._place: tuple[Any, Any] | None = None
        self._set_fps = False

    @property
    def finished(self) -> bool:
        return self.error is not None or self.done >= len(self.files)

    def step(self) -> bool:
        """Add the next frame; True when the layer is complete (or failed: see error)."""
        if self.finished:
            return True
        if self.done == 0:
            self._begin()
        frame = self.start + self.done
        before = {n.uniqueId() for n in self.doc.rootNode().childNodes()}
        self._keep_on_top()
        file = self.files[self.done]
        if not self.doc.importAnimation([str(file)], frame, 1):
            self.error = f"Krita could not import frame {self.done + 1} ({file.name})."
            return True
        self.doc.waitForDone()
        new = [n for n in self.doc.rootNode().childNodes() if n.uniqueId() not in before]
        if self.layer is None:
            self.layer = new[-1]
        else:
            new[-1].mergeDown()
            self.doc.waitForDone()
            self.layer = self.doc.rootNode().childNodes()[-1]  # the merged layer, on top
        self.done += 1
        if self.finished:
            self._finish()
        return self.finished

    def _begin(self) -> None:
        """Where the layer will go, and the document's frame rate when it has no animation."""
        above = self.above
        self._place = ((above.parentNode(), above) if above is not None
                       else insertion_point(self.doc))
        animated = any(n.animated() for n in self.doc.topLevelNodes())
        self._set_fps = bool(self.fps) and not animated

    def _keep_on_top(self) -> None:
        """The layer so far must be right under the next import (the top of the stack)."""
        root = self.doc.rootNode()
        if self.layer is not None and root.childNodes()[-1] != self.layer:
            self.layer.remove()
            root.addChildNode(self.layer, root.childNodes()[-1])
            self.doc.waitForDone()

    def _finish(self) -> None:
        doc, layer = self.doc, self.layer
        layer.setName(self.name)
        parent, sibling = self._place or (None, None)
        root_top = doc.rootNode().childNodes()[-1]
        if parent is not None and sibling != layer and not (
                parent == doc.rootNode() and sibling == root_top == layer):
            layer.remove()
            parent.addChildNode(layer, sibling)
        end = self.start + len(self.files) - 1
        if doc.fullClipRangeEndTime() < end:
            doc.setFullClipRangeEndTime(end)
        if doc.playBackEndTime() < end:
            set_playback_range(doc, doc.playBackStartTime(), end)
        if self._set_fps and self.fps:
            doc.setFramesPerSecond(max(1, round(self.fps)))
        doc.waitForDone()  # Krita activates the layer itself (see layers.py)


def set_playback_range(doc: Any, start: int, end: int) -> None:
    """The timeline plays start..end (inclusive). Krita 5.1's setPlayBackRange stops a frame
    short (measured: (0, 3) plays 0-2); versions that fix it get what was asked."""
    doc.setPlayBackRange(start, end)
    short = end - doc.playBackEndTime()
    if short:
        doc.setPlayBackRange(start, end + short)
