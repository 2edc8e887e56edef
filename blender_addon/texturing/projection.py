"""One object's texture while views come in: the engine's pieces put together per object.

Two surfaces per object: the texture's own (the chosen size), where colours accumulate, and
a small one (COVERAGE_SIZE) that only counts where views reached, against the area visible
from outside, for the coverage reported and for placing cameras: 200 directions over a
2048² texture's millions of texels would cost a minute, over 256² a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .blend import PAINTED, Accumulator, sample, uncovered_mask, view_weights
from .geometry import Camera, Floats, Mesh
from .placement import Placed, auto_cameras, coverage, outside_visible
from .raster import depth_map, screen
from .surface import surface

COVERAGE_SIZE = 256
DIRECTIONS = 200  # the outside-visible area: what some camera from afar could see


class ObjectProjection:
    def __init__(self, mesh: Mesh, size: int) -> None:
        self.mesh = mesh
        self.surface = surface(mesh, size)
        self.accumulator = Accumulator(self.surface)
        self.small = surface(mesh, COVERAGE_SIZE)
        self.reached = np.zeros(len(self.small.texels))  # the small surface's total weight
        self.visible = np.ones(len(self.small.texels), bool)  # set by measure_visible()

    def add(self, picture: Floats, camera: Camera, depth: Floats, only_new: bool) -> None:
        """One view's picture (H, W, C), row 0 at the top. `only_new` (sequential mode): the
        view paints only texels no earlier view painted."""
        seen = view_weights(self.surface, camera, depth)
        weights = seen.weights
        if only_new:
            weights = np.where(self.accumulator.painted, 0.0, weights)
        self.accumulator.add(sample(picture, seen.xy), weights)
        reached = view_weights(self.small, camera, depth).weights
        if only_new:
            reached = np.where(self.reached > PAINTED, 0.0, reached)
        self.reached += reached

    def texture(self) -> tuple[Floats, int]:
        """The blended texture (S, S, C), row 0 at the top, and how many texels no view saw
        (filled from their neighbours)."""
        return self.accumulator.texture(), self.accumulator.filled

    def coverage(self) -> float:
        """The share of the outside-visible area some view painted."""
        return coverage(self.small, self.reached > PAINTED, self.visible)

    def projected(self, camera: Camera, depth: Floats) -> tuple[Floats, Floats]:
        """What this camera sees of the texture painted so far: colours (H, W, C) and where
        they are painted (H, W) 0/1; nothing where another object is in front."""
        own = screen(camera, self.mesh.corners())
        hit = own.tri >= 0
        front = hit & (own.depth <= depth + 1e-3 * self.surface.extent())
        uv = np.einsum("nk,nkd->nd", own.bary[front], self.mesh.uvs[own.tri[front]])
        size = self.surface.size
        col = np.clip(np.floor(uv[:, 0] * size).astype(np.int64), 0, size - 1)
        row = np.clip(np.floor((1.0 - uv[:, 1]) * size).astype(np.int64), 0, size - 1)
        colours = np.zeros((size * size, 4))
        painted = np.zeros(size * size)
        colours[self.surface.texels, : self._channels()] = self.accumulator.colors()
        painted[self.surface.texels] = self.accumulator.painted
        flat = row * size + col
        picture = np.zeros((*depth.shape, 4))
        mask = np.zeros(depth.shape)
        picture[front] = colours[flat]
        mask[front] = painted[flat]
        picture[..., 3] = 1.0
        return picture, mask

    def uncovered(self, camera: Camera, depth: Floats) -> Floats:
        return uncovered_mask(self.surface, camera, depth, self.accumulator.painted)

    def _channels(self) -> int:
        return min(self.accumulator.colors().shape[1], 4)


def depth(camera: Camera, occluders: Floats) -> Floats:
    """The camera's depth map of everything that hides something."""
    return depth_map(camera, occluders)


def sees(camera: Camera, mesh: Mesh) -> bool:
    """Some of the mesh lies in the camera's frame, in front of it."""
    xy, z = camera.project(mesh.positions[np.unique(mesh.triangles)])
    inside = ((z > 0) & (xy[:, 0] >= 0) & (xy[:, 0] <= camera.width) & (xy[:, 1] >= 0)
              & (xy[:, 1] <= camera.height))
    return bool(inside.any()) or bool(screen(camera, mesh.corners()).tri.max() >= 0)


def seen_so_far(objects: Sequence[ObjectProjection], camera: Camera,
                occluders: Floats) -> tuple[Floats, Floats]:
    """Projected so far (H, W, 4; black where nothing is painted yet) and Uncovered (H, W;
    white where this camera sees a texel no earlier view painted) over all the objects."""
    shown = depth(camera, occluders)
    picture = np.zeros((camera.height, camera.width, 4))
    picture[..., 3] = 1.0
    uncovered = np.zeros((camera.height, camera.width))
    for target in objects:
        colours, painted = target.projected(camera, shown)
        picture = np.where(painted[..., None] > 0, colours, picture)
        uncovered = np.maximum(uncovered, target.uncovered(camera, shown))
    return picture, uncovered


def measure_visible(objects: Sequence[ObjectProjection], occluders: Floats) -> None:
    """Each object's outside-visible area, from DIRECTIONS directions."""
    masks = outside_visible([o.small for o in objects], occluders, n=DIRECTIONS)
    for target, mask in zip(objects, masks, strict=True):
        target.visible = mask


def place(objects: Sequence[ObjectProjection], occluders: Floats, count: int,
          width: int, height: int) -> list[Placed]:
    """`count` cameras around the objects, greedy by newly covered visible area."""
    return auto_cameras([o.small for o in objects], occluders, count, width, height,
                        visible=[o.visible for o in objects])
