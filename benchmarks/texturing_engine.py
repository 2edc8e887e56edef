"""The texturing engine's share of issue 21's budget: projecting views onto a UV sphere of
about 20,000 triangles and baking them into its texture, numpy only, in this process.

    .venv/bin/python -m benchmarks.texturing_engine [--repeats N]

Each figure is the whole engine side of one bake: the surface's texels for the texture size,
per view a depth map of the scene, the view's weights and its colours sampled into the sum,
then the texture with unseen texels and the gutter filled. Views are 1024 x 1024 images made
before the clock starts (reading Blender's renders is the bpy side's). Blender's target for
projection and bake together is 20 s for 6 views at 2048² on 2 cores; the engine has to stay
well inside it. Also timed: outside-visible area (200 directions) and placing 6 cameras.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.blender import meshes

from .table import Row, render, row

VIEW = 1024
SEGMENTS = RINGS = 100  # 19,800 triangles
TARGET_S = 20.0


def under_target(seconds: float) -> bool:
    return seconds < TARGET_S


def timed(task: Callable[[], object], repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        task()
        runs.append(time.perf_counter() - started)
    return runs


def run(repeats: int, workdir: Path) -> list[Row]:
    # The engine is imported after tests.blender, which lets its package load without bpy.
    from blender_addon.texturing import blend, placement, raster
    from blender_addon.texturing.geometry import Camera, Floats
    from blender_addon.texturing.surface import surface

    repeats = max(1, min(repeats, 3))  # a 12-view bake takes seconds; three runs show spread
    mesh = meshes.uv_sphere(SEGMENTS, RINGS)
    occluders = mesh.corners()
    rng = np.random.default_rng(0)

    def bake(views: int, size: int) -> None:
        surf = surface(mesh, size)
        acc = blend.Accumulator(surf)
        for camera, image in shots[views]:
            view = blend.view_weights(surf, camera, raster.depth_map(camera, occluders))
            used = np.flatnonzero(view.weights > 0)  # as ObjectProjection.add samples
            colours = np.zeros((len(view.weights), image.shape[2]))
            colours[used] = blend.sample(image, view.xy[used], view.taps[used])
            acc.add(colours, view.weights)
        acc.texture()

    shots: dict[int, list[tuple[Camera, Floats]]] = {
        n: [(Camera.look_at(d * 4.0, (0, 0, 0), VIEW, VIEW, lens_mm=50),
             rng.random((VIEW, VIEW, 3)))
            for d in placement.directions(n)]
        for n in (6, 12)
    }
    rows = []
    for views, size in ((6, 1024), (6, 2048), (12, 2048)):
        target = f"< {TARGET_S:.0f} s" if (views, size) == (6, 2048) else ""
        rows.append(row("texturing", f"bake {views} views into {size}² "
                        f"({len(mesh.triangles)} triangles)",
                        timed(functools.partial(bake, views, size), repeats), "s", target,
                        under_target if target else None))
    small = surface(mesh, 256)
    rows.append(row("texturing", "outside-visible area, 200 directions (256² surface)",
                    timed(lambda: placement.outside_visible([small], occluders), repeats), "s"))
    visible = placement.outside_visible([small], occluders)
    rows.append(row("texturing", "place 6 cameras from 96 candidates (256² surface)",
                    timed(lambda: placement.auto_cameras([small], occluders, 6, VIEW, VIEW,
                                                         visible=visible), repeats), "s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.texturing_engine",
                                     description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(render(run(args.repeats, Path("."))))


if __name__ == "__main__":
    main()
