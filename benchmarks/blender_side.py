"""The bpy side of the Blender benchmark: `python -S blender_side.py IN.json`.

Runs inside real bpy the way tests/blender does (its set-up helpers are imported from
tests/blender/scripts/blender_checks.py), writes every raw measurement as JSON to the "out"
path of its input, and leaves the statistics to benchmarks/blender.py on the host.

The source is a generated float image with render-like content (smooth shading, hard edges,
sampling noise), sent through the add-on's own "existing image" path, which saves it with the
same `pixels.save_render` as a Render Result. A Cycles render at 3840×2160 takes 20-40 s on a
small CPU and its pixels cannot be set, so it would cost most of the time budget for no
difference in what is measured.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "blender" / "scripts"))
# Typed as Any, as in blender_checks: the add-on's own classes are unknown to the bpy stubs.
checks: Any = importlib.import_module("blender_checks")
bpy: Any = importlib.import_module("bpy")

Report = dict[str, Any]
LOADERS = ("load_image", "load_preview", "load_sequence", "load_movie")  # results.py
SLOW = {"PNG level 100", "WEBP lossless"}  # 10× the others at 4K: measured once


# ---------------------------------------------------------------- the source image


def render_like(width: int, height: int) -> np.ndarray:
    """Linear float RGBA, bottom row first: a lit gradient, two shaded objects with hard
    edges, and per-pixel noise like a lightly sampled render, so PNG sizes mean something."""
    rng = np.random.default_rng(6)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    rgb = np.stack([0.25 + 0.3 * u, 0.3 + 0.2 * v, 0.45 - 0.2 * u * v], axis=-1)
    objects = ((0.3, 0.55, 0.22, (0.8, 0.3, 0.1)), (0.7, 0.4, 0.15, (0.1, 0.5, 0.2)))
    for cx, cy, r, colour in objects:  # centre, radius (in image heights), colour
        d = np.hypot((u - cx) * width / height, v - cy)
        shade = np.clip(1.0 - d / r, 0, 1)[..., None] * np.array(colour, np.float32) + 0.05
        rgb = np.where((d < r)[..., None], shade, rgb)
    rgb += rng.normal(0.0, 0.015, rgb.shape).astype(np.float32)
    alpha = np.ones((height, width, 1), np.float32)
    return np.concatenate([np.clip(rgb, 0, None), alpha], axis=-1)


def source_image(width: int, height: int) -> Any:
    name = f"Source {width}x{height}"
    image = bpy.data.images.new(name, width, height, alpha=True, float_buffer=True)
    image.pixels.foreach_set(render_like(width, height).ravel())
    return image


# ---------------------------------------------------------------- responsiveness


class Slices:
    """Every pump of the add-on, split into the time spent in results' loaders (plus the
    first pixel access, which an Image Editor's first draw would cost) and the rest; and
    the save of the source image when Run is pressed. All wrapped from outside: the
    add-on's own functions are replaced by timed ones."""

    def __init__(self, addon: str) -> None:
        self.pump = checks.addon_module(addon, "pump")
        self.session = self.pump.SESSION
        self.pumps: list[tuple[float, float]] = []  # (whole pump, of which import), seconds
        self.saves: list[float] = []  # saving the source image, seconds
        self._import = 0.0
        self._depth = 0  # load_preview calls load_image: time only the outer call
        results = checks.addon_module(addon, "results")
        for name in LOADERS:
            setattr(results, name, self._timed(getattr(results, name)))
        pixels = checks.addon_module(addon, "pixels")
        pixels.existing_image = self._saving(pixels.existing_image)
        original = self.pump.pump
        self.pump.pump = lambda: self._pump(original)  # what _tick calls

    def _pump(self, original: Callable[[], bool]) -> bool:
        self._import = 0.0
        started = time.perf_counter()
        try:
            return original()
        finally:
            self.pumps.append((time.perf_counter() - started, self._import))

    def _saving(self, save: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return save(*args, **kwargs)
            finally:
                self.saves.append(time.perf_counter() - started)

        return timed

    def _timed(self, load: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            self._depth += 1
            try:
                loaded = load(*args, **kwargs)
                if self._depth == 1 and isinstance(loaded, bpy.types.Image):
                    # Reading the size decodes the file, as an editor's first draw would
                    # (`image.size` alone is a lazy array: its values must be read).
                    tuple(loaded.size)
                return loaded
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._import += time.perf_counter() - started

        return timed


def one_job(addon: str, slices: Slices) -> Report:
    """Press Run without waiting, then pump as the add-on's bpy.app.timers callback would
    (pump._tick, at the delay it asks for): `blender -b` has no timers, and drive() pumps
    more often than the UI does."""
    pump = checks.addon_module(addon, "pump")
    session = slices.session
    slices.pumps.clear()
    started = time.perf_counter()
    error = checks.run_op(wait=False)
    press = time.perf_counter() - started
    assert not error, error
    while (delay := pump._tick()) is not None and session.busy:
        time.sleep(delay)
    view = session.view
    assert view.status.startswith("Done"), (view.status, view.error)
    return {
        "pumps": list(slices.pumps),
        "press": press,
        "save": slices.saves[-1],
        "size": list(bpy.data.images[pump.SHOWN.outputs[0]].size),
    }


def responsiveness(addon: str, payload: Report) -> Report:
    scene = bpy.context.scene
    settings = checks.use_workflow(scene, payload["workflow"])
    settings.source = "IMAGE"
    slices = Slices(addon)
    jobs: Report = {}
    for width, height in payload["sizes"]:
        settings.source_image = source_image(width, height)
        done = [one_job(addon, slices) for _ in range(payload["repeats"])]
        assert all(job["size"] == [width, height] for job in done), done[0]["size"]
        jobs[f"{width}×{height}"] = done
        bpy.data.images.remove(settings.source_image)  # keep memory flat on a small machine
    return jobs


# ---------------------------------------------------------------- passes


def passes(addon: str, payload: Report) -> list[Report]:
    """Run pressed for a fresh 3840×2160 render with its depth and normal passes, each to
    its own loader: the press's time against Blender's own render job (render_init to
    render_complete: rendering, compositing, writing the files), per repeat."""
    scene = checks.tiny_scene()
    scene.render.resolution_x, scene.render.resolution_y = payload["passes_size"]
    scene.cycles.samples = 1  # the render's length is Blender's; only the rest is measured
    settings = checks.use_workflow(scene, payload["passes_workflow"])
    for entry in settings.media:
        entry.source = {"Render": "RENDER"}.get(entry.title, entry.source)
    marks: dict[str, float] = {}
    handlers = bpy.app.handlers
    for name in ("render_init", "render_complete"):
        getattr(handlers, name).append(lambda *_, n=name: marks.__setitem__(n, time.perf_counter()))
    session = checks.addon_module(addon, "pump").SESSION
    done = []
    for _ in range(payload["passes_repeats"]):
        started = time.perf_counter()
        error = checks.run_op(wait=False)
        press = time.perf_counter() - started
        assert not error, error
        checks.addon_module(addon, "pump").drive(timeout=120)
        assert session.view.status.startswith("Done"), (session.view.status, session.view.error)
        done.append({"press": press, "render": marks["render_complete"] - marks["render_init"]})
    return done


# ---------------------------------------------------------------- encode


@contextlib.contextmanager
def image_format(scene: Any, **settings: Any) -> Iterator[None]:
    """The scene's output format set as given for the save; restored after."""
    fmt = scene.render.image_settings
    names = ["media_type", "file_format", "color_mode", "color_depth", "quality", "compression"]
    saved = {n: getattr(fmt, n) for n in [*names, "exr_codec"] if hasattr(fmt, n)}
    try:
        fmt.media_type = "IMAGE"
        for name, value in settings.items():
            setattr(fmt, name, value)
        yield
    finally:
        for name, value in saved.items():
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                setattr(fmt, name, value)


Save = Callable[[], contextlib.AbstractContextManager[None]]


def formats(pixels: Any, scene: Any) -> dict[str, Save]:
    """How each case saves. PNG goes through the add-on's own png_output (8-bit RGBA); the
    others are what Blender could write for an upload instead."""
    fast = pixels.FAST_PNG
    rgb = {"color_mode": "RGB", "color_depth": "8"}

    def png(level: int) -> Save:
        return lambda: pixels.png_output(scene, level)

    def other(**settings: Any) -> Save:
        return lambda: image_format(scene, **settings)

    cases = {f"PNG level {level}": png(level) for level in sorted({0, fast, 50, 100})}
    cases[f"PNG RGB level {fast}"] = other(file_format="PNG", compression=fast, **rgb)
    cases["JPEG quality 90"] = other(file_format="JPEG", quality=90, **rgb)
    cases["WEBP quality 90"] = other(file_format="WEBP", quality=90, **rgb)
    cases["WEBP lossless"] = other(file_format="WEBP", quality=100, **rgb)
    cases["OpenEXR half DWAA"] = other(
        file_format="OPEN_EXR", color_mode="RGB", color_depth="16", exr_codec="DWAA"
    )
    return cases


def encode(addon: str, payload: Report) -> Report:
    """Seconds and bytes per save of a 3840×2160 image, per format; formats interleaved
    within each repeat, so drift on a shared machine hits them all alike."""
    scene = bpy.context.scene
    pixels = checks.addon_module(addon, "pixels")
    width, height = payload["encode_size"]
    image = source_image(width, height)
    folder = Path(payload["output"]) / "encode"
    folder.mkdir(parents=True, exist_ok=True)
    measured: dict[str, list[tuple[float, int]]] = {}
    for repeat in range(payload["repeats"]):
        for name, save_as in formats(pixels, scene).items():
            if repeat and name in SLOW:
                continue
            path = folder / f"{len(measured)}-{name.replace(' ', '_')}"
            with save_as():
                started = time.perf_counter()
                image.save_render(str(path), scene=scene)
                seconds = time.perf_counter() - started
            measured.setdefault(name, []).append((seconds, path.stat().st_size))
            path.unlink()
    return {"fast_png": pixels.FAST_PNG, "cases": measured}


# ---------------------------------------------------------------- main


def main() -> None:
    payload = json.loads(Path(sys.argv[1]).read_text())
    report: Report = {}
    try:
        addon = checks.install(payload["zip"])
        checks.configure(addon, payload)
        report["responsiveness"] = responsiveness(addon, payload)
        report["encode"] = encode(addon, payload)
        report["passes"] = passes(addon, payload)
    except Exception:
        report["exception"] = traceback.format_exc()
    Path(payload["out"]).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
