"""What kind of media a file is (image, video, audio or other), from its name or MIME type."""

from __future__ import annotations

from pathlib import Path

IMAGE_EXT = {
    ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".exr", ".gif", ".apng", ".avif",
}
VIDEO_EXT = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"}
AUDIO_EXT = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac"}


def media_kind(path: Path | str, mime: str = "") -> str:
    """image, video, audio or file: by extension, else by the MIME type a server gave
    (Video Helper Suite reports `format: "video/h264-mp4"`)."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXT:
        return "image"
    if ext in VIDEO_EXT:
        return "video"
    if ext in AUDIO_EXT:
        return "audio"
    family = mime.split("/", 1)[0].lower()
    return family if family in ("image", "video", "audio") else "file"
