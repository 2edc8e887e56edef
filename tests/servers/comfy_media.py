"""The test server's video, animation and audio nodes: LoadVideo, GetVideoComponents,
CreateVideo, SaveVideo (comfy_extras/nodes_video.py), SaveAnimatedWEBP (nodes.py), LoadAudio
and SaveAudio (comfy_extras/nodes_audio.py), as ComfyUI 0.3.44 and 0.3.64 run them where a
client can tell: the loaders' `file` and `audio` inputs and their "Invalid ... file" checks,
video and animations reported under `images` with `animated: [true]`, sound under `audio`.

Media is decoded and encoded with PyAV, as ComfyUI does; it is imported only when such a node
runs, so the rest of the test server needs no PyAV. Schemas are the real 0.3.64 answers
(comfy_media_schemas.json).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

from tests.servers.comfy_nodes import (
    Ctx,
    Folders,
    NodeDef,
    NodeResult,
    load_image_changed,
    save_path,
)

SCHEMAS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).with_name("comfy_media_schemas.json")).read_text()
)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
AUDIO_EXTENSIONS = (".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac")


@dataclass
class Video:
    """A VIDEO value: a file (VideoFromFile) or frames (VideoFromComponents)."""

    path: Path | None = None
    frames: list[Image.Image] = field(default_factory=list)
    fps: float = 0.0


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise RuntimeError("PyAV is not installed on the test side: no video nodes") from None
    return av


def video_files(folders: Folders) -> list[str]:
    """What LoadVideo offers: the video files directly in the input folder."""
    found = folders.input.iterdir()
    return sorted(p.name for p in found if p.suffix.lower() in VIDEO_EXTENSIONS)


def audio_files(folders: Folders) -> list[str]:
    """What LoadAudio offers: audio and video files directly in the input folder."""
    wanted = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS
    return sorted(p.name for p in folders.input.iterdir() if p.suffix.lower() in wanted)


def load_video(ctx: Ctx, file: str) -> NodeResult:
    name, folder = ctx.folders.annotated(file)
    return NodeResult((Video(path=(folder or ctx.folders.input) / name),))


def file_check(kind: str) -> Callable[[Folders, Any], bool | str]:
    """A loader's input check: "Invalid {kind} file: ..." when the file is not there."""

    def valid(folders: Folders, value: Any) -> bool | str:
        name, folder = folders.annotated(value)
        if not ((folder or folders.input) / name).is_file():
            return f"Invalid {kind} file: {value}"
        return True

    return valid


def load_video_changed(folders: Folders, file: Any) -> str:
    """fingerprint_inputs: the file's modification time, not its hash."""
    try:
        name, folder = folders.annotated(file)
        return str(os.path.getmtime((folder or folders.input) / name))
    except (OSError, AttributeError, TypeError):
        return "missing"


def decode(video: Video) -> tuple[list[Image.Image], float]:
    if video.path is None:
        return video.frames, video.fps
    av = _av()
    with av.open(str(video.path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_image().convert("RGB") for frame in container.decode(stream)]
        rate = stream.average_rate or stream.base_rate or 0
    if not frames:
        raise ValueError(f"No frames in {video.path.name}")
    return frames, float(rate)


def get_video_components(ctx: Ctx, video: Video) -> NodeResult:
    frames, fps = decode(video)
    return NodeResult((frames, None, fps))


def create_video(ctx: Ctx, images: list[Image.Image], fps: float, audio: Any = None) -> NodeResult:
    return NodeResult((Video(frames=list(images), fps=float(fps)),))


def save_video(
    ctx: Ctx, video: Video, filename_prefix: str = "video/ComfyUI", format: str = "auto",
    codec: str = "auto",
) -> NodeResult:
    frames, fps = decode(video)
    folder, stem, counter, subfolder = save_path(ctx.folders.output, filename_prefix)
    name = f"{stem}_{counter:05}_.mp4"
    encode(frames, fps or 24.0, folder / name)
    item = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"images": [item], "animated": [True]})


def encode(frames: list[Image.Image], fps: float, path: Path) -> None:
    """H.264 in MP4, yuv420p (even sizes), as VideoFromComponents.save_to does."""
    av = _av()
    width, height = frames[0].width // 2 * 2, frames[0].height // 2 * 2
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("h264", rate=Fraction(round(fps * 1000), 1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            frame = av.VideoFrame.from_image(image.convert("RGB").crop((0, 0, width, height)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def save_animated_webp(
    ctx: Ctx, images: list[Image.Image], filename_prefix: str = "ComfyUI", fps: float = 6.0,
    lossless: bool = True, quality: int = 80, method: str = "default",
) -> NodeResult:
    folder, stem, counter, subfolder = save_path(ctx.folders.output, filename_prefix)
    name = f"{stem}_{counter:05}_.webp"
    images[0].save(
        folder / name, save_all=True, append_images=images[1:], duration=int(1000 / fps),
        lossless=lossless, quality=quality,
    )
    item = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"images": [item], "animated": [True]})


@dataclass
class Audio:
    """An AUDIO value: here the file it came from, transcoded when saved."""

    path: Path


def load_audio(ctx: Ctx, audio: str) -> NodeResult:
    name, folder = ctx.folders.annotated(audio)
    return NodeResult((Audio((folder or ctx.folders.input) / name),))


def save_audio(ctx: Ctx, audio: Audio, filename_prefix: str = "audio/ComfyUI") -> NodeResult:
    """FLAC, as SaveAudio writes it."""
    av = _av()
    folder, stem, counter, subfolder = save_path(ctx.folders.output, filename_prefix)
    name = f"{stem}_{counter:05}_.flac"
    with av.open(str(audio.path)) as source, av.open(str(folder / name), mode="w") as target:
        rate = source.streams.audio[0].rate
        stream = target.add_stream("flac", rate=rate)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode():
            target.mux(packet)
    item = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"audio": [item]})


MEDIA_NODES: dict[str, NodeDef] = {
    "LoadAudio": NodeDef(
        # LoadAudio's fingerprint is its file's hash, as LoadImage's.
        load_audio, SCHEMAS["LoadAudio"], file_check("audio"), load_image_changed, "audio"
    ),
    "SaveAudio": NodeDef(save_audio, SCHEMAS["SaveAudio"]),
    "LoadVideo": NodeDef(
        load_video, SCHEMAS["LoadVideo"], file_check("video"), load_video_changed, "file"
    ),
    "GetVideoComponents": NodeDef(get_video_components, SCHEMAS["GetVideoComponents"]),
    "CreateVideo": NodeDef(create_video, SCHEMAS["CreateVideo"]),
    "SaveVideo": NodeDef(save_video, SCHEMAS["SaveVideo"]),
    "SaveAnimatedWEBP": NodeDef(save_animated_webp, SCHEMAS["SaveAnimatedWEBP"]),
}
