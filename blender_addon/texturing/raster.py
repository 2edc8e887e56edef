"""Rasterising all triangles at once: into UV space (which triangle and where in it each texel
centre lies) and into a camera's image (a depth map, and the nearest triangle per pixel).

No per-triangle Python loop: every triangle's bounding box of pixel centres is expanded into
(triangle, pixel) pairs with np.repeat, the pairs outside their triangle are dropped by their
barycentrics, and the nearest is kept per pixel. Triangles go in chunks so a few huge ones do
not take the memory of all pairs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .geometry import Camera, Floats, Ints

PAIRS_PER_CHUNK = 4_000_000  # about 150 MB of temporaries per chunk
EDGE = 1e-9  # barycentric slack, so a centre exactly on a shared edge is not lost to both


@dataclass(frozen=True)
class Texels:
    """Per texel of a size x size texture (row 0 = top = v 1): the triangle whose UVs hold its
    centre (-1: none) and the centre's barycentrics in it."""

    tri: NDArray[np.int32]  # (S,S)
    bary: Floats  # (S,S,3)


@dataclass(frozen=True)
class Covered:
    """(triangle, pixel) pairs whose pixel centre lies in the triangle: K of them."""

    tri: Ints  # (K,)
    pixel: Ints  # (K,) flat index row * width + col
    bary: Floats  # (K,3) barycentrics in the rasterised (2D) triangle


def cover(points: Floats, width: int, height: int) -> Covered:
    """Every pixel centre (col + 0.5, row + 0.5) inside each 2D triangle (T,3,2), given in
    pixel coordinates (x right, y = row down)."""
    found: list[Covered] = []
    lo = np.floor(points.min(axis=1) - 0.5).astype(np.int64) + 1  # first centre >= min
    hi = np.floor(points.max(axis=1) - 0.5).astype(np.int64)  # last centre <= max
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    extent = np.maximum(hi - lo + 1, 0)
    counts = extent[:, 0] * extent[:, 1]
    start = 0
    ends = np.cumsum(counts)
    while start < len(points):
        # As many triangles as fit in one chunk's pairs (at least one).
        budget = (ends[start - 1] if start else 0) + PAIRS_PER_CHUNK
        stop = max(int(np.searchsorted(ends, budget, side="right")), start + 1)
        found.append(_cover_chunk(points, lo, extent, counts, np.arange(start, stop), width))
        start = stop
    if not found:
        return Covered(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)))
    return Covered(*(np.concatenate(parts) for parts in zip(
        *((c.tri, c.pixel, c.bary) for c in found), strict=True)))


def _cover_chunk(points: Floats, lo: Ints, extent: Ints, counts: Ints, tris: Ints,
                 width: int) -> Covered:
    n = counts[tris]
    tri = np.repeat(tris, n)
    first = np.cumsum(n) - n
    local = np.arange(len(tri)) - np.repeat(first, n)
    nx = extent[tri, 0]
    col = lo[tri, 0] + local % np.maximum(nx, 1)
    row = lo[tri, 1] + local // np.maximum(nx, 1)
    bary = barycentrics(points[tri], col + 0.5, row + 0.5)
    inside = np.all(bary >= -EDGE, axis=1)
    return Covered(tri[inside], row[inside] * width + col[inside], bary[inside])


def barycentrics(corners: Floats, x: Floats, y: Floats) -> Floats:
    """(K,3) barycentrics of points (x, y) in 2D triangles (K,3,2); all -1 for degenerate
    triangles (so they count as outside)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area: Floats = ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1])
                    - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    w1: Floats = ((x - a[:, 0]) * (c[:, 1] - a[:, 1]) - (y - a[:, 1]) * (c[:, 0] - a[:, 0]))
    w2: Floats = ((b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (b[:, 1] - a[:, 1]) * (x - a[:, 0]))
    ok = np.abs(area) > 1e-20
    safe = np.where(ok, area, 1.0)
    w1, w2 = w1 / safe, w2 / safe
    out = np.stack([1.0 - w1 - w2, w1, w2], axis=1)
    out[~ok] = -1.0
    return out


def rasterize_uv(uvs: Floats, size: int) -> Texels:
    """Which triangle (T,3,2 UVs) holds each texel centre of a size x size texture, row 0 at
    the top (v = 1). A triangle too thin to hold any texel centre still gets the texel under
    its centroid when no other triangle has it, so slivers keep a colour."""
    points = np.empty_like(uvs)
    points[..., 0] = uvs[..., 0] * size
    points[..., 1] = (1.0 - uvs[..., 1]) * size
    covered = cover(points, size, size)
    tri = np.full(size * size, -1, np.int32)
    bary = np.zeros((size * size, 3))
    # One triangle per texel (a centre on a shared edge is in both): the first pair of each.
    texel, first = np.unique(covered.pixel, return_index=True)
    tri[texel] = covered.tri[first]
    bary[texel] = covered.bary[first]
    _add_slivers(points, covered.tri, size, tri, bary)
    return Texels(tri.reshape(size, size), bary.reshape(size, size, 3))


def _add_slivers(points: Floats, covered: Ints, size: int, tri: NDArray[np.int32],
                 bary: Floats) -> None:
    lost = np.setdiff1d(np.arange(len(points)), covered)
    if not len(lost):
        return
    centre = points[lost].mean(axis=1)
    col = np.clip(np.floor(centre[:, 0]).astype(np.int64), 0, size - 1)
    row = np.clip(np.floor(centre[:, 1]).astype(np.int64), 0, size - 1)
    texel = row * size + col
    free = tri[texel] < 0
    tri[texel[free]] = lost[free]
    bary[texel[free]] = 1.0 / 3.0


@dataclass(frozen=True)
class Screen:
    """What a camera sees of some triangles, per pixel (H,W): the nearest triangle (-1: none),
    its perspective-correct barycentrics and its depth (inf: none)."""

    tri: NDArray[np.int32]
    bary: Floats
    depth: Floats


def screen(camera: Camera, triangles: Floats) -> Screen:
    """Rasterise world triangles (T,3,3) into the camera's image with a z-buffer. Triangles
    reaching behind the near plane are left out (no clipping): cameras frame the objects from
    outside, so only something between camera and object could be lost."""
    width, height = camera.width, camera.height
    xy, z = camera.project(triangles.reshape(-1, 3))
    xy, z = xy.reshape(-1, 3, 2), z.reshape(-1, 3)
    front = np.flatnonzero(np.all(z > 1e-6, axis=1))
    covered = cover(xy[front], width, height)
    tri = front[covered.tri]
    if camera.orthographic:  # depth is linear in screen space
        depth_of_pair = (covered.bary * z[tri]).sum(axis=1)
        weights = covered.bary
    else:  # only 1/z is, and the barycentrics divided by z
        over_z = covered.bary / z[tri]
        depth_of_pair = 1.0 / over_z.sum(axis=1)
        weights = over_z * depth_of_pair[:, None]
    depth = np.full(width * height, np.inf)
    np.minimum.at(depth, covered.pixel, depth_of_pair)
    nearest = depth_of_pair <= depth[covered.pixel]
    ids = np.full(width * height, -1, np.int32)
    bary = np.zeros((width * height, 3))
    ids[covered.pixel[nearest]] = tri[nearest]
    bary[covered.pixel[nearest]] = weights[nearest]
    return Screen(ids.reshape(height, width), bary.reshape(height, width, 3),
                  depth.reshape(height, width))


def depth_map(camera: Camera, triangles: Floats) -> Floats:
    """(H,W) depth of the nearest of the world triangles (T,3,3) at each pixel centre, inf
    where none: pass every visible object's triangles, since any of them can hide a texel."""
    return screen(camera, triangles).depth
