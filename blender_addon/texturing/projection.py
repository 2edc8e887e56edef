"""One object's texture while views come in: the engine's pieces put together per object.

Two surfaces per object: the texture's own (the chosen size), where colours accumulate, and
a small one (COVERAGE_SIZE) that only counts where views reached, against the area visible
from outside, for the coverage reported and for placing cameras: 200 directions over a
2048² texture's millions of texels would cost a minute, over 256² a few seconds.

Occlusion is the engine's depth test (blend.view_weights) and, on top of it, a triangle
test: the triangle the camera shows at a texel's pixel must be the texel's own or share a
corner with it, else the texel must be strictly in front (no slope allowance). The depth
test alone lets a surface closer behind another than its bias take the other's colours
(Suzanne's eye sockets behind her eyes, 0.02 apart, took the eyes' colours).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .blend import (
    PAINTED,
    Accumulator,
    Weighting,
    sample,
    uncovered_mask,
    view_weights,
    visible,
)
from .geometry import Camera, Floats, Ints, Mesh
from .placement import Placed, auto_cameras, bounding_sphere, coverage, directions
from .raster import Screen, screen
from .surface import Surface, surface

COVERAGE_SIZE = 256
DIRECTIONS = 200  # the outside-visible area: what some camera from afar could see
STRICT = 1e-3  # of the object's size: how far behind another triangle a texel may be
VISIBLE_RESOLUTION = 128  # pixels of each orthographic view measuring the visible area


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
        weights = self._own(self.surface, camera, shown, seen.weights)
        if only_new:
            weights = np.where(self.accumulator.painted, 0.0, weights)
        used = np.flatnonzero(weights > 0)  # sampled only where they count
        colours = np.zeros((len(weights), picture.shape[2]))
        colours[used] = sample(picture, seen.xy[used])
        self.accumulator.add(colours, weights)
        reached = view_weights(self.small, camera, shown.depth).weights
        reached = self._own(self.small, camera, shown, reached)
        if only_new:
            reached = np.where(self.reached > PAINTED, 0.0, reached)
        self.reached += reached

    def _own(self, where: Surface, camera: Camera, shown: Screen, weights: Floats) -> Floats:
        """The weights, zero where the triangle test fails (tested where they are not 0)."""
        index = np.flatnonzero(weights > 0)
        ok = self._own_points(where.positions[index], where.triangles[index], where.extent,
                              camera, shown)
        out = weights.copy()
        out[index[~ok]] = 0.0
        return out

    def _own_points(self, positions: Floats, triangles: Ints, extent: float, camera: Camera,
                    shown: Screen) -> NDArray[np.bool_]:
        """(N,) points (on `triangles` of this mesh) whose pixel shows their own triangle or
        one sharing a corner with it, or nothing nearer than STRICT of the object's size."""
        xy, z = camera.project(positions)
        col = np.clip(np.floor(xy[:, 0]).astype(np.int64), 0, camera.width - 1)
        row = np.clip(np.floor(xy[:, 1]).astype(np.int64), 0, camera.height - 1)
        there = shown.tri[row, col].astype(np.int64) - self.offset
        mine = (there >= 0) & (there < len(self.mesh.triangles))
        corners = self.mesh.triangles[triangles]
        others = self.mesh.triangles[np.where(mine, there, 0)]
        touching = mine & (corners[:, :, None] == others[:, None, :]).any(axis=(1, 2))
        front = z <= shown.depth[row, col] + STRICT * extent
        return touching | front

    def texture(self) -> tuple[Floats, int]:
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


def seen_so_far(objects: Sequence[ObjectProjection], camera: Camera,
                occluders: Floats) -> tuple[Floats, Floats]:
    """Projected so far (H, W, 4; black where nothing is painted yet) and Uncovered (H, W;
    white where this camera sees a texel no earlier view painted) over all the objects."""
    view = shown(camera, occluders)
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
    DIRECTIONS directions shows, by the same tests as a view's (the engine's depth test and
    angle cutoff, and the triangle test). Each view tests only texels no earlier one showed."""
    center, radius = bounding_sphere([o.small for o in objects])
    cutoff = np.cos(np.radians(Weighting().cutoff_deg))
    for target in objects:
        target.visible = np.zeros(len(target.small.texels), bool)
    for direction in directions(DIRECTIONS):
        camera = Camera.ortho(direction, center, radius, VISIBLE_RESOLUTION)
        view = shown(camera, occluders)
        for target in objects:
            small = target.small
            todo = np.flatnonzero(~target.visible)
            points = small.positions[todo]
            xy, z = camera.project(points)
            cos = np.abs(small.normals[todo] @ camera.backward())
            seen = (cos >= cutoff) & visible(camera, view.depth, xy, z, cos, Weighting(),
                                             small.extent)
            seen &= target._own_points(points, small.triangles[todo], small.extent, camera,
                                       view)
            target.visible[todo[seen]] = True


def place(objects: Sequence[ObjectProjection], occluders: Floats, count: int,
          width: int, height: int) -> list[Placed]:
    """`count` cameras around the objects, greedy by newly covered visible area."""
    return auto_cameras([o.small for o in objects], occluders, count, width, height,
                        visible=[o.visible for o in objects])
