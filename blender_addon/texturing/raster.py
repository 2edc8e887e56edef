"""Rasterising all triangles at once: into UV space (which triangle and where in it each texel
centre lies) and into a camera's image (a depth map, and the nearest triangle per pixel).

No per-triangle Python loop: all triangles are scan-converted at once. Each triangle's rows of
pixel centres are expanded into (triangle, row) pairs with np.repeat, each row's exact span
of covered centres comes from the triangle's three edge functions, and the spans are expanded
into (triangle, pixel) pairs the same way; the nearest pair is kept per pixel. Triangles go
in chunks so a few huge ones do not take the memory of all pairs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .geometry import Camera, Floats, Ints

PAIRS_PER_CHUNK = 2_000_000  # bounding-box pixels per chunk: about 100 MB of temporaries
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
    pixel coordinates (x right, y = row down). Degenerate triangles cover nothing."""
    edges, ok = edge_functions(points)
    x_min, x_max = _least(points[:, :, 0]), _most(points[:, :, 0])
    lo = np.maximum(np.floor(_least(points[:, :, 1]) - 0.5).astype(np.int64) + 1, 0)
    hi = np.minimum(np.floor(_most(points[:, :, 1]) - 0.5).astype(np.int64), height - 1)
    in_x = (x_max >= 0.5) & (x_min <= width - 0.5)
    rows = np.where(ok & in_x, np.maximum(hi - lo + 1, 0), 0)
    # Chunks of triangles whose bounding boxes hold at most PAIRS_PER_CHUNK pixels.
    span = np.clip(np.ceil(x_max - x_min), 1, width)
    ends = np.cumsum(rows * span.astype(np.int64))
    found: list[Covered] = []
    start = 0
    while start < len(points):
        budget = (ends[start - 1] if start else 0) + PAIRS_PER_CHUNK
        stop = max(int(np.searchsorted(ends, budget, side="right")), start + 1)
        tris = np.arange(start, stop)
        found.append(_scan(edges, tris, lo[tris], rows[tris], width))
        start = stop
    if not found:
        return Covered(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)))
    return Covered(*(np.concatenate(parts) for parts in zip(
        *((c.tri, c.pixel, c.bary) for c in found), strict=True)))


def _least(corners: Floats) -> Floats:
    """(T,) the least of each row of (T,3): numpy's reductions are slow over three items."""
    return np.minimum(np.minimum(corners[:, 0], corners[:, 1]), corners[:, 2])


def _most(corners: Floats) -> Floats:
    return np.maximum(np.maximum(corners[:, 0], corners[:, 1]), corners[:, 2])


def edge_functions(points: Floats) -> tuple[Floats, NDArray[np.bool_]]:
    """(T,3,3) per triangle the plane (a, b, c) of each barycentric: w_i = a x + b y + c; and
    (T,) whether the triangle has any area."""
    x, y = points[:, :, 0], points[:, :, 1]
    area: Floats = ((x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0])
                    - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0]))
    ok = np.abs(area) > 1e-12
    safe = np.where(ok, area, 1.0)
    edges = np.empty((len(points), 3, 3))
    for i in range(3):  # w_i is the area opposite corner i: the edge from j to k
        j, k = (i + 1) % 3, (i + 2) % 3
        edges[:, i, 0] = (y[:, j] - y[:, k]) / safe
        edges[:, i, 1] = (x[:, k] - x[:, j]) / safe
        edges[:, i, 2] = (x[:, j] * y[:, k] - x[:, k] * y[:, j]) / safe
    return edges, ok


def _scan(edges: Floats, tris: Ints, lo: Ints, rows: Ints, width: int) -> Covered:
    """Scan conversion of some triangles: first their (triangle, row) pairs, each row's exact
    span of covered pixel centres from the three edge functions, then the pixels of each.
    One edge at a time on flat arrays: numpy is slow at reducing short (R,3) rows."""
    coef = [[np.ascontiguousarray(edges[:, i, k]) for k in range(3)] for i in range(3)]
    row_tri = np.repeat(tris, rows)
    row = np.repeat(lo, rows) + _ranks(rows)
    yc = row + 0.5
    x_min = np.full(len(row), -1.0)
    x_max = np.full(len(row), width + 1.0)
    missed = np.zeros(len(row), bool)
    for a_all, b_all, c_all in coef:  # w_i = a x + level on this row: >= -EDGE on one side
        a = a_all[row_tri]
        level = b_all[row_tri] * yc + c_all[row_tri]
        right, left = a > 0, a < 0
        bound = (-EDGE - level) / np.where(right | left, a, 1.0)
        x_min = np.where(right, np.maximum(x_min, bound), x_min)
        x_max = np.where(left, np.minimum(x_max, bound), x_max)
        missed |= ~(right | left) & (level < -EDGE)  # an edge along the row, outside it
    first = np.maximum(np.ceil(x_min - 0.5), 0).astype(np.int64)
    last = np.minimum(np.floor(x_max - 0.5), width - 1).astype(np.int64)
    count = np.where(missed, 0, np.maximum(last - first + 1, 0))
    pick = np.repeat(np.arange(len(row_tri)), count)
    col = np.repeat(first, count) + _ranks(count)
    tri, prow = row_tri[pick], row[pick]
    xc, pyc = col + 0.5, prow + 0.5
    bary = np.empty((len(tri), 3))
    for i, (a_all, b_all, c_all) in enumerate(coef):
        bary[:, i] = a_all[tri] * xc + b_all[tri] * pyc + c_all[tri]
    return Covered(tri, prow * width + col, bary)


def _ranks(counts: Ints) -> Ints:
    """0, 1, ... counts[0]-1, 0, 1, ... counts[1]-1, ...: each item's rank in its group."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(starts, counts)


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
    texel, pair = _one_pair_per_pixel(covered.pixel)
    tri[texel] = covered.tri[pair]
    bary[texel] = covered.bary[pair]
    _add_slivers(points, covered.tri, size, tri, bary)
    return Texels(tri.reshape(size, size), bary.reshape(size, size, 3))


def _one_pair_per_pixel(pixel: Ints) -> tuple[Ints, Ints]:
    """The distinct pixels and, for each, one of the pairs that cover it (a centre on an edge
    two triangles share is in both): whichever an assignment keeps, the same for all arrays."""
    winner = np.full(int(pixel.max()) + 1 if len(pixel) else 0, -1, np.int64)
    winner[pixel] = np.arange(len(pixel))
    distinct = np.flatnonzero(winner >= 0)
    return distinct, winner[distinct]


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
    reaching nearer than the camera's clip start are cut there (_in_front), as a render cuts
    them: a floor passing under and behind the camera still hides what lies below it."""
    width, height = camera.width, camera.height
    covered, tri, depth_of_pair, weights = _fragments(camera, triangles)
    depth = _nearest(covered.pixel, depth_of_pair, width * height)
    nearest = np.flatnonzero(depth_of_pair <= depth[covered.pixel])
    pixel, pair = _one_pair_per_pixel(covered.pixel[nearest])
    ids = np.full(width * height, -1, np.int32)
    bary = np.zeros((width * height, 3))
    ids[pixel] = tri[nearest[pair]]
    bary[pixel] = weights[nearest[pair]]
    return Screen(ids.reshape(height, width), bary.reshape(height, width, 3),
                  depth.reshape(height, width))


def depth_map(camera: Camera, triangles: Floats) -> Floats:
    """(H,W) depth of the nearest of the world triangles (T,3,3) at each pixel centre, inf
    where none: pass every visible object's triangles, since any of them can hide a texel."""
    covered, _, depth_of_pair, _ = _fragments(camera, triangles)
    depth = _nearest(covered.pixel, depth_of_pair, camera.width * camera.height)
    return depth.reshape(camera.height, camera.width)


def _fragments(camera: Camera, triangles: Floats) -> tuple[Covered, Ints, Floats, Floats]:
    """The covered (triangle, pixel) pairs, each pair's triangle index in `triangles`, depth
    and barycentrics in the world triangle (perspective-correct)."""
    pieces, owner, corners = _in_front(camera, triangles)
    xy, z = camera.project(pieces.reshape(-1, 3))
    xy, z = xy.reshape(-1, 3, 2), z.reshape(-1, 3)
    covered = cover(xy, camera.width, camera.height)
    piece = covered.tri
    if camera.orthographic:  # depth is linear in screen space
        depth, weights = (covered.bary * z[piece]).sum(axis=1), covered.bary
    else:
        over_z = covered.bary / z[piece]  # only 1/z is, and the barycentrics divided by z
        depth = 1.0 / over_z.sum(axis=1)
        weights = over_z * depth[:, None]
    if corners is not None:  # a piece's barycentrics -> its triangle's
        weights = np.einsum("km,kmc->kc", weights, corners[piece])
    return covered, owner[piece], depth, weights


def _in_front(camera: Camera, triangles: Floats) -> tuple[Floats, Ints, Floats | None]:
    """The triangles cut to their part beyond the clip start (Sutherland–Hodgman against that
    one plane; a cut leaves a triangle or a quad, split in two): world pieces (P,3,3), each
    piece's triangle, and its corners' barycentrics in that triangle (None: nothing cut)."""
    near = camera.clip_range()[0]
    _, z = camera.project(triangles.reshape(-1, 3))
    inside = z.reshape(-1, 3) > near
    count = inside.sum(axis=1)
    whole = np.flatnonzero(count == 3)
    one, two = np.flatnonzero(count == 1), np.flatnonzero(count == 2)
    if not len(one) and not len(two):
        return triangles[whole], whole, None
    depth, unit = z.reshape(-1, 3), np.eye(3)
    i = np.argmax(inside[one], axis=1)  # the corner in front: (i, i→j, i→k)
    j, k = (i + 1) % 3, (i + 2) % 3
    in_one = np.stack([unit[i], _cut(depth[one], i, j, near), _cut(depth[one], i, k, near)], 1)
    k = np.argmin(inside[two], axis=1)  # the corner behind: (i, j, j→k) and (i, j→k, i→k)
    i, j = (k + 1) % 3, (k + 2) % 3
    jk, ik = _cut(depth[two], j, k, near), _cut(depth[two], i, k, near)
    corners = np.concatenate([np.broadcast_to(unit, (len(whole), 3, 3)), in_one,
                              np.stack([unit[i], unit[j], jk], 1),
                              np.stack([unit[i], jk, ik], 1)])
    owner = np.concatenate([whole, one, two, two])
    return np.einsum("pmc,pcd->pmd", corners, triangles[owner]), owner, corners


def _cut(depth: Floats, a: Ints, b: Ints, near: float) -> Floats:
    """(N,3) barycentrics of where each edge a→b crosses the depth `near` (view depth is
    linear along a world segment)."""
    n = np.arange(len(depth))
    t = (depth[n, a] - near) / (depth[n, a] - depth[n, b])
    out = np.zeros((len(depth), 3))
    out[n, a] = 1.0 - t
    out[n, b] += t
    return out


def _nearest(pixel: Ints, depth: Floats, pixels: int) -> Floats:
    """(pixels,) the least depth per pixel, inf where none."""
    out = np.full(pixels, np.inf)
    np.minimum.at(out, pixel, depth)
    return out
