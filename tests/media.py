"""Small videos and sounds for tests. A video is made with PyAV, else the ffmpeg command,
where the test side has either; tests that need one are skipped otherwise."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import wave
from pathlib import Path

import pytest
from PIL import Image

FRAMES = 6
SIZE = (64, 48)


def frame(n: int) -> Image.Image:
    """Frame n: a horizontal ramp in green, a level of red per frame (inversion is visible)."""
    image = Image.new("RGB", SIZE)
    image.putdata([(40 * n % 256, x * 4, 128) for _ in range(SIZE[1]) for x in range(SIZE[0])])
    return image


def have_av() -> bool:
    return importlib.util.find_spec("av") is not None


def make_mp4(path: Path, frames: int = FRAMES, fps: int = 8) -> Path:
    """An H.264 MP4 of `frames` frames; fails the test when neither PyAV nor ffmpeg is here."""
    if have_av():
        import av

        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("h264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
            for n in range(frames):
                for packet in stream.encode(av.VideoFrame.from_image(frame(n))):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.fail("making a test video needs PyAV or ffmpeg: `bash tests/run.sh` installs both")
    pattern = path.with_name(path.stem + "_%02d.png")
    for n in range(frames):
        frame(n).save(str(pattern) % n)
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-framerate", str(fps), "-i", str(pattern),
         "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)],
        check=True,
    )
    return path


def mp4_frames(path: Path) -> list[Image.Image] | None:
    """The decoded frames, or None when the test side cannot decode (no PyAV)."""
    if not have_av():
        return None
    import av

    with av.open(str(path)) as container:
        return [f.to_image().convert("RGB") for f in container.decode(video=0)]


def looks_like_mp4(path: Path) -> bool:
    """An ISO base media file: a box size, then `ftyp`."""
    return path.read_bytes()[4:8] == b"ftyp"


def make_wav(path: Path, seconds: float = 0.1, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x10" * int(rate * seconds))
    return path
