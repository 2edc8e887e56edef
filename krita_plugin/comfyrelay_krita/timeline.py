"""The document's animation as a loader's source ("Animation"): the frames of its playback
range, each read with the time set and the projection refreshed, go out as one MP4 to a video
loader, or as one animated PNG to an image loader (ComfyUI's LoadImage reads every frame of
a multi-frame file as a batch).

Krita's API is used on the Qt main thread only, so the frames are read one per step() (one
event-loop turn each: a 1080p frame takes tens of ms, 48 of them in one go would freeze the
canvas for seconds). FFmpeg encodes them on the runner's thread when the job is sent.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .animation import FFMPEG_TIMEOUT, INSTALL_FFMPEG
from .core import core
from .pixels import Rect, read_region
from .qt import ARGB32, QImage, image_bytes

MAX_FRAMES = 600  # 25 s at 24 fps: about 5 GB of 1080p frames held while they are read
CAP_INPUTS = ("frame_load_cap", "frame_count", "max_frames")  # loaders' limits on frames
MP4_NAME, APNG_NAME = "krita-animation.mp4", "krita-animation.png"
NO_ANIMATION = ("Animation and Each frame need an animated document: add keyframes on the timeline "
                "(Window › Workspace › Animation), or choose Canvas.")


def is_animated(doc: Any) -> bool:
    """Some layer, at any depth, has keyframes."""
    def animated(node: Any) -> bool:
        return bool(node.animated()) or any(animated(c) for c in node.childNodes())
    return any(animated(n) for n in doc.topLevelNodes())


def playback_range(doc: Any) -> range:
    """The frames the timeline plays (its playback range, inclusive)."""
    return range(doc.playBackStartTime(), doc.playBackEndTime() + 1)


def animation_name(video: bool) -> str:
    """The file an Animation goes out as: an MP4 to a video loader, else an animated PNG."""
    return MP4_NAME if video else APNG_NAME


def check_animation(doc: Any, workflow: core.Workflow, nid: str, where: str,
                    video: bool = True) -> None:
    """Raise WorkflowError, reading no pixel, when the animation cannot go to loader `nid`
    (a video loader when `video`, else an image loader)."""
    check_frames(doc)
    frames = len(playback_range(doc))
    cap = loader_cap(workflow, nid)
    if cap is not None and frames > cap:
        raise core.WorkflowError(
            f"The playback range has {frames} frames but {where} takes at most {cap}: "
            f"shorten the range on the timeline, or raise its frame limit.")
    if shutil.which("ffmpeg") is None:
        form = "an MP4" if video else "an animated PNG"
        raise core.WorkflowError(f"Animation goes out as {form} made by FFmpeg, which is not "
                                 f"installed. {INSTALL_FFMPEG}.")


def check_frames(doc: Any) -> None:
    """Raise WorkflowError when `doc` has no animation, or too long a range to read."""
    if not is_animated(doc):
        raise core.WorkflowError(NO_ANIMATION)
    frames = len(playback_range(doc))
    if frames > MAX_FRAMES:
        raise core.WorkflowError(f"The playback range has {frames} frames; at most "
                                 f"{MAX_FRAMES} go out at once: shorten it on the timeline.")


def loader_cap(workflow: core.Workflow, nid: str) -> int | None:
    """The loader's own limit on frames it loads (0 or none: no limit)."""
    inputs = workflow.graph.get(nid, {}).get("inputs", {})
    caps = [v for k, v in inputs.items() if k in CAP_INPUTS and isinstance(v, int) and v > 0]
    return min(caps) if caps else None


@dataclass
class FrameReader:
    """Reads `times` of `doc` within `rect`, a frame per step(), then puts the time back.
    `slices` are the seconds each step held the main thread."""

    doc: Any
    rect: Rect
    times: range
    is_open: Callable[[Any], bool]
    images: list[QImage] = field(default_factory=list)
    slices: list[float] = field(default_factory=list)
    error: str | None = None
    _back_to: int | None = None

    @property
    def finished(self) -> bool:
        return self.error is not None or len(self.images) >= len(self.times)

    def step(self) -> bool:
        """Read the next frame; True when all are read (or the reading failed: see error)."""
        if self.finished:
            return True
        started = time.perf_counter()
        if not self.is_open(self.doc):
            self.error = "The document was closed while its frames were read: nothing was sent."
            self.images.clear()
            return True
        if self._back_to is None:
            self._back_to = self.doc.currentTime()
        self.doc.setCurrentTime(self.times[len(self.images)])
        self.doc.refreshProjection()
        self.images.append(read_region(self.doc, self.rect))  # waits for the projection
        if self.finished:
            self.doc.setCurrentTime(self._back_to)
        self.slices.append(time.perf_counter() - started)
        return self.finished


def mp4_file(images: list[QImage], fps: float) -> core.InputFile:
    """The frames as an H.264 MP4, encoded when the job is sent (the runner's thread)."""
    return core.InputFile(MP4_NAME, make=lambda: encode_mp4(images, fps))


def apng_file(images: list[QImage], fps: float) -> core.InputFile:
    """The frames as one animated PNG, encoded when the job is sent (the runner's thread)."""
    return core.InputFile(APNG_NAME, make=lambda: encode_apng(images, fps))


def encode_mp4(images: list[QImage], fps: float) -> bytes:
    """Odd sizes are padded to even (yuv420p)."""
    return _encode(images, fps, "animation.mp4",
                   ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-crf", "10",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart"])


def encode_apng(images: list[QImage], fps: float) -> bytes:
    """Lossless with alpha, looping; LoadImage reads each frame as an image of its batch."""
    return _encode(images, fps, "animation.png",
                   ["-f", "apng", "-plays", "0", "-pix_fmt", "rgba"])


def _encode(images: list[QImage], fps: float, name: str, options: list[str]) -> bytes:
    """FFmpeg reads the raw frames from a pipe and writes `name` with `options`."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise core.ComfyRelayError(f"FFmpeg is not installed. {INSTALL_FFMPEG}.")
    width, height = images[0].width(), images[0].height()
    with tempfile.TemporaryDirectory(prefix="comfyrelay-anim-") as folder:
        out = Path(folder) / name
        command = [ffmpeg, "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgra",
                   "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "pipe:0", *options,
                   str(out)]
        raw = b"".join(_bgra(image) for image in images)
        try:
            subprocess.run(command, input=raw, check=True, capture_output=True,
                           timeout=FFMPEG_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise core.ComfyRelayError(
                f"FFmpeg took over {FFMPEG_TIMEOUT:.0f} s to encode the animation.") from None
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip()[-300:]
            raise core.ComfyRelayError(f"FFmpeg could not encode the animation: {detail}") \
                from None
        return out.read_bytes()


def _bgra(image: QImage) -> bytes:
    """Krita's projection as B, G, R, A bytes (ARGB32 is BGRA in memory on x86 and ARM)."""
    return image_bytes(image.convertToFormat(ARGB32))
