"""One object's texture while views come in: the engine's pieces put together per object.

Two surfaces per object: the texture's own (the chosen size), where colours accumulate, and
a small one (COVERAGE_SIZE) that only counts where views reached, against the area visible
from outside, for the coverage reported and for placing cameras: 200 directions over a
2048² texture's millions of texels would cost a minute, over 256² a few seconds.

Occlusion is the engine's (blend.view_weights: each texel's own triangle plane predicts the
depth map at the four pixels its sample reads). The camera's screen of every occluder is
made once per view and shared by the objects (its depth) and Projected So Far (its
triangles: the objects' own come first among the occluders, at each one's `offset`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .blend import PAINTED, Accumulator, sample, uncovered_mask, view_weights
from .geometry import Camera, Floats, Mesh
from .placement import Placed, auto_cameras, coverage, outside_visible
from .raster import Screen, screen
from .surface import surface

COVERAGE_SIZE = 256
DIRECTIONS = 200  # the outside-visible area: what some camera from afar could see


class ObjectProjection:
    def __init__(self, mesh: Mesh, size: int, offset: int) -> None:
        self.mesh = mesh
        self.offset = offset  # where its triangles start among the occluders
        self.surface = surface(mesh, size)
        self.accumulator = Accumulator(self.surface)
        self.small = surface(mesh, COVERAGE_SIZE)
        self.reached = np.zeros(len(self.small.texels))  # the small surface's total weight
        self.visible = np.ones(len(self.small.texels), bool)  # set by measure_visible()

    def add(self, picture: Floats, camera: Camera, shown: Screen, only_new: bool) -> None:
        """One view's picture (H, W, C), row 0 at the top. `only_new` (sequential mode): the
        view paints only texels no earlier view painted."""
        seen = view_weights(self.surface, camera, shown.depth)
        weights = seen.weights
        if only_new:
            weights = np.where(self.accumulator.painted, 0.0, weights)
        used = np.flatnonzero(weights > 0)  # sampled only where they count
        colours = np.zeros((len(weights), picture.shape[2]))
        colours[used] = sample(picture, seen.xy[used], seen.taps[used])
        if picture.shape[2] == 4:  # a transparent pixel is no colour: it adds nothing
            weights = weights * np.clip(colours[:, 3], 0.0, 1.0)
        self.accumulator.add(colours, weights)
        reached = view_weights(self.small, camera, shown.depth).weights
        if only_new:
            reached = np.where(self.reached > PAINTED, 0.0, reached)
        self.reached += reached

    def texture(self) -> tuple[NDArray[np.float32], int]:
        """The blended texture (S, S, C), row 0 at the top, and how many texels no view saw
        (filled from their neighbours)."""
        return self.accumulator.texture(), self.accumulator.filled

    def coverage(self) -> float:
        """The share of the outside-visible area some view painted."""
        return coverage(self.small, self.reached > PAINTED, self.visible)

    def projected(self, shown: Screen) -> tuple[Floats, Floats]:
        """What the camera shows of the texture painted so far: colours (H, W, 4) and where
        they are painted (H, W) 0/1; nothing where another object is in front."""
        local = shown.tri.astype(np.int64) - self.offset
        front = (local >= 0) & (local < len(self.mesh.triangles))
        uv = np.einsum("nk,nkd->nd", shown.bary[front], self.mesh.uvs[local[front]])
        size = self.surface.size
        col = np.clip(np.floor(uv[:, 0] * size).astype(np.int64), 0, size - 1)
        row = np.clip(np.floor((1.0 - uv[:, 1]) * size).astype(np.int64), 0, size - 1)
        colours = np.zeros((size * size, 4))
        colours[:, 3] = 1.0
        painted = np.zeros(size * size)
        blended = self.accumulator.colors()
        channels = min(blended.shape[1], 3)
        colours[self.surface.texels, :channels] = blended[:, :channels]
        painted[self.surface.texels] = self.accumulator.painted
        flat = row * size + col
        picture = np.zeros((*shown.depth.shape, 4))
        picture[..., 3] = 1.0
        mask = np.zeros(shown.depth.shape)
        picture[front] = colours[flat]
        mask[front] = painted[flat]
        return picture, mask

    def uncovered(self, camera: Camera, shown: Screen) -> Floats:
        return uncovered_mask(self.surface, camera, shown.depth, self.accumulator.painted)


def shown(camera: Camera, occluders: Floats) -> Screen:
    """What the camera shows of everything that hides something: per pixel the nearest
    triangle (an index into `occluders`), where in it, and its depth."""
    return screen(camera, occluders)


def sees(camera: Camera, mesh: Mesh) -> bool:
    """Some of the mesh lies in the camera's frame, in front of it."""
    return bool((screen(camera, mesh.corners()).tri >= 0).any())


def seen_so_far(objects: Sequence[ObjectProjection], camera: Camera, occluders: Floats,
                seen: Screen | None = None) -> tuple[Floats, Floats]:
    """Projected so far (H, W, 4; black where nothing is painted yet) and Uncovered (H, W;
    white where this camera sees a texel no earlier view painted) over all the objects.
    `seen`: shown(camera, occluders) when at hand."""
    view = seen if seen is not None else shown(camera, occluders)
    picture = np.zeros((camera.height, camera.width, 4))
    picture[..., 3] = 1.0
    uncovered = np.zeros((camera.height, camera.width))
    for target in objects:
        colours, painted = target.projected(view)
        picture = np.where(painted[..., None] > 0, colours, picture)
        uncovered = np.maximum(uncovered, target.uncovered(camera, view))
    return picture, uncovered


def measure_visible(objects: Sequence[ObjectProjection], occluders: Floats) -> None:
    """Each object's outside-visible area: texels some orthographic view from one of
    DIRECTIONS directions shows (the engine's placement.outside_visible, by a view's tests)."""
    masks = outside_visible([o.small for o in objects], occluders, n=DIRECTIONS)
    for target, mask in zip(objects, masks, strict=True):
        target.visible = mask


def place(objects: Sequence[ObjectProjection], occluders: Floats, count: int,
          width: int, height: int) -> list[Placed]:
    """`count` cameras around the objects, greedy by newly covered visible area."""
    return auto_cameras([o.small for o in objects], occluders, count, width, height,
                        visible=[o.visible for o in objects])
