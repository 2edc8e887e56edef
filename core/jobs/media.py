"""What kind of media a file is (image, video, audio or other), from its name or MIME type."""

from __future__ import annotations

from enum import Enum
from pathlib import Path


class MediaKind(str, Enum):
    """What a file holds, which says how a host opens it. A str, so "image" == IMAGE."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    FILE = "file"  # anything else: saved, not opened

    def __str__(self) -> str:  # the value in messages and JSON, on every Python version
        return self.value


IMAGE_EXT = {
    ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".exr", ".gif", ".apng", ".avif",
}
VIDEO_EXT = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"}
AUDIO_EXT = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac"}


def media_kind(path: Path | str, mime: str = "") -> MediaKind:
    """image, video, audio or file: by extension, else by the MIME type a server gave
    (Video Helper Suite reports `format: "video/h264-mp4"`)."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXT:
        return MediaKind.IMAGE
    if ext in VIDEO_EXT:
        return MediaKind.VIDEO
    if ext in AUDIO_EXT:
        return MediaKind.AUDIO
    family = mime.split("/", 1)[0].lower()
    return MediaKind(family) if family in ("image", "video", "audio") else MediaKind.FILE
