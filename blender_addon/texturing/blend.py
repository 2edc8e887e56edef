"""Blending camera views into one object's texture: how much each view counts at each texel,
sampling the views, the running weighted sum, filling what no view saw, and the Uncovered mask
of sequential mode."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from .geometry import Camera, Floats, Ints
from .raster import screen
from .surface import Surface

FloatT = TypeVar("FloatT", np.float32, np.float64)
Taps = NDArray[np.bool_]  # (N,4) per point, which of its bilinear sample's pixels to read

PAINTED = 1e-3  # a texel with less total weight has no colour of its own yet
CHUNK = 1 << 16  # texels per slice of work
THREADS = min(2, os.cpu_count() or 1)  # Blender's target machine has two cores
GUTTER = 4  # texels of colour around the UV islands: mip levels 0-2 and bilinear stay clean


@dataclass(frozen=True)
class Weighting:
    """How views share a texel. The defaults:
    cutoff_deg 80: past it a view's pixels stretch more than 5.7 times over the surface, too
    blurry and too sensitive to small misalignment to be worth any weight;
    power 2: a square-on view outweighs one at 60 degrees four to one, so the sharpest view
    dominates, yet neighbouring views still overlap enough to hide the seams between them;
    feather 0.1: weights fall to zero over the outer tenth of the frame (of its smaller
    side), so a view's border leaves no visible edge where the next view takes over;
    depth_bias 0.001, slope_pixels 0.5: a texel is visible when the depth map around it is
    within a thousandth of the object's size, plus half a pixel's width of depth at its
    slope, of the depth its own triangle's plane predicts there (see plane_taps()). Since the
    plane's own slope is predicted, not allowed for, the tolerance only covers curvature and
    creases between pixel centres: a surface 0.02 behind another on a 3-unit object (the
    sockets behind Suzanne's eyes) stays hidden at 1024 pixels, with no speckles of
    self-occlusion on curved low-poly meshes;
    far_pixels 1: the depth map may lie farther than the plane predicts by that many more
    pixels' width of depth at (slope + 1). Past a convex crease the next triangle bends away
    behind the texel's plane: it is the same surface going on, so the pixel showing it gives
    the right colour, yet with the tight tolerance every texel within a pixel of a crease
    failed (at 256-pixel views 3.5 % of Suzanne's area, none of it hidden). What lies in
    front of the plane (an occluder) keeps the tight tolerance; the background (inf) and
    anything more than a pixel or so behind a silhouette still fail."""

    cutoff_deg: float = 80.0
    power: float = 2.0
    feather: float = 0.1
    depth_bias: float = 0.001
    slope_pixels: float = 0.5
    far_pixels: float = 1.0


@dataclass(frozen=True)
class ViewSample:
    """One view at each of a surface's texels: its weight (N,) (0 = unused), where the
    texel lies in the view's image (N,2) (col, row from the top, pixel centres at +0.5) and
    which of the four pixels its bilinear sample reads show its own plane (N,4) (see
    plane_taps(); sample() reads only those)."""

    weights: Floats
    xy: Floats
    taps: Taps


def in_frame(camera: Camera, xy: Floats, z: Floats) -> NDArray[np.bool_]:
    """(N,) points in front of the camera and inside its image."""
    return ((z > 0) & (xy[:, 0] >= 0) & (xy[:, 0] < camera.width)
            & (xy[:, 1] >= 0) & (xy[:, 1] < camera.height))


def plane_taps(camera: Camera, depth: Floats, xy: Floats, z: Floats, planes: Floats,
               weighting: Weighting, extent: float) -> tuple[NDArray[np.bool_], Taps]:
    """(N,) points in the frame, in front of the camera and not hidden: at each of the four
    pixels a bilinear sample at xy reads, the depth map (H,W) holds what the point's own
    triangle plane (unit normals `planes` (N,3) in view space) would put there, within a
    tolerance. So nothing in front of it (an occluder) and nothing behind it (the background
    around a silhouette) blends in. Predicting the depth along the plane, rather than allowing for
    slopes as shadow maps do, keeps the tolerance small: the constant bias (depth_bias x
    extent) and slope_pixels pixels' width of depth at the plane's slope, for curvature and
    creases between pixel centres; behind the plane, far_pixels more (a convex crease).
    Also (N,4) which of the four pixels (in sample()'s order) lie on the plane within the
    tight tolerance: a point is seen only if one does, and its colour is read from those
    alone, so past a crease (often a UV seam) the next face's colour does not blend in."""
    width, height = camera.width, camera.height
    seen = np.zeros(len(z), bool)
    taps = np.zeros((len(z), 4), bool)
    index = np.flatnonzero(in_frame(camera, xy, z))
    at, px = z[index], xy[index]
    n = planes[index]
    # Along the plane, n . ray changes linearly with the pixel: a + bx dx + by dy.
    bx = n[:, 0] * (2.0 / width) / camera.projection[0, 0]
    by = -n[:, 1] * (2.0 / height) / camera.projection[1, 1]
    if camera.orthographic:  # depth moves by (bx dx + by dy) / n_z
        facing = np.abs(n[:, 2])
        a = np.where(facing > 1e-9, n[:, 2], 1e-9)
    else:  # depth is inversely proportional to n . ray, the ray (rx, ry, -1)
        rx, ry = camera.rays(px[:, 0], px[:, 1])
        a = n[:, 0] * rx + n[:, 1] * ry - n[:, 2]
        facing = np.abs(a) / np.sqrt(rx * rx + ry * ry + 1.0)
    slope = np.sqrt(np.maximum(1.0 - facing * facing, 0.0)) / np.maximum(facing, 0.1)
    pixel = camera.pixel_size(at)
    allowed = weighting.depth_bias * extent + slope * pixel * weighting.slope_pixels
    beyond = allowed + (slope + 1.0) * pixel * weighting.far_pixels  # farther: a crease
    x0 = np.clip(np.floor(px[:, 0] - 0.5).astype(np.int64), 0, width - 1)
    y0 = np.clip(np.floor(px[:, 1] - 0.5).astype(np.int64), 0, height - 1)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    flat = depth.reshape(-1)
    ok = facing > 1e-6
    dx, dy = x0 + 0.5 - px[:, 0], y0 + 0.5 - px[:, 1]
    across = at * a
    on_plane = np.zeros((len(index), 4), bool)
    for k, (col, row) in enumerate(((x0, y0), (x1, y0), (x0, y1), (x1, y1))):
        step = bx * (dx + (col - x0)) + by * (dy + (row - y0))
        there = flat[row * width + col]
        if camera.orthographic:
            off, size = there - at - step / a, np.ones(len(at))
        else:  # there - at a / (a + step), times |a + step| so as not to divide; the plane
            towards = a + step  # must still face the same way there (not seen edge-on)
            off = (there * towards - across) * np.sign(towards)
            size = np.abs(towards)
            ok &= towards * a > 0
        ok &= (off >= -allowed * size) & (off <= beyond * size)
        on_plane[:, k] = off <= allowed * size
    ok &= on_plane.any(axis=1)
    seen[index] = ok
    taps[index] = on_plane & ok[:, None]
    return seen, taps


def view_weights(surface: Surface, camera: Camera, depth: Floats,
                 weighting: Weighting | None = None) -> ViewSample:
    """Each texel's weight in this view: in the frame x visible (depth test against the
    camera's depth map of every occluder) x |cos| of the viewing angle to the power, zero past
    the cutoff x a feather towards the frame's edges."""
    w = weighting or Weighting()
    weights = np.zeros(len(surface.texels))
    xy = np.empty((len(surface.texels), 2))
    taps = np.empty((len(surface.texels), 4), bool)
    planes = camera.normals_to_view(surface.planes)  # per triangle, gathered per texel

    def work(part: slice) -> None:
        weights[part], xy[part], taps[part] = point_weights(
            surface.positions[part], surface.normals[part], planes[surface.triangles[part]],
            camera, depth, w, surface.extent)

    in_slices(len(weights), work)
    return ViewSample(weights, xy, taps)


def in_slices(count: int, work: Callable[[slice], None]) -> None:
    """work() on slices of range(count) that stay in the CPU's cache, on THREADS threads:
    numpy lets go of the GIL inside each operation, so the cores share the slices."""
    parts = [slice(start, start + CHUNK) for start in range(0, count, CHUNK)]
    if len(parts) < 2 or THREADS < 2:
        for part in parts:
            work(part)
        return
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(work, parts):  # each slice writes only its own part
            pass


def point_weights(positions: Floats, normals: Floats, planes: Floats, camera: Camera,
                  depth: Floats, w: Weighting, extent: float) -> tuple[Floats, Floats, Taps]:
    """view_weights() of some points (weights, xy, taps); each test runs only on those the
    ones before kept."""
    xy, z = camera.project(positions)
    weights = np.zeros(len(z))
    taps = np.zeros((len(z), 4), bool)
    index = np.flatnonzero(in_frame(camera, xy, z))
    to_camera = camera.to_camera(positions[index])
    cos = np.abs(np.einsum("nd,nd->n", normals[index], to_camera))
    keep = cos >= math.cos(math.radians(w.cutoff_deg))
    index, cos = index[keep], cos[keep]
    seen, on_plane = plane_taps(camera, depth, xy[index], z[index], planes[index], w, extent)
    taps[index] = on_plane
    index, cos = index[seen], cos[seen]
    weights[index] = cos ** w.power * _feather(camera, xy[index], w.feather)
    return weights, xy, taps


def _feather(camera: Camera, xy: Floats, fraction: float) -> Floats:
    """1 inside the frame, easing to 0 over `fraction` of the smaller side at its edges."""
    border = np.minimum(np.minimum(xy[:, 0], camera.width - xy[:, 0]),
                        np.minimum(xy[:, 1], camera.height - xy[:, 1]))
    width = fraction * min(camera.width, camera.height)
    if width <= 0:
        return (border > 0).astype(np.float64)
    t = np.clip(border / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)  # smoothstep: no crease where the feather starts


def sample(image: Floats, xy: Floats, taps: Taps | None = None) -> Floats:
    """Bilinear samples (N,C) of an image (H,W,C) at pixel coordinates xy (N,2) (centres at
    +0.5; beyond the border the edge pixels repeat). With taps (N,4), from the pixels it
    marks alone (their bilinear weights scaled up to 1; equal shares where those are 0)."""
    height, width = image.shape[:2]
    flat = image.reshape(height * width, -1)
    x = np.clip(xy[:, 0] - 0.5, 0.0, width - 1.0)
    y = np.clip(xy[:, 1] - 0.5, 0.0, height - 1.0)
    x0 = np.minimum(x.astype(np.int64), max(width - 2, 0))  # x >= 0: truncation is floor
    y0 = np.minimum(y.astype(np.int64), max(height - 2, 0))
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    if taps is not None and not taps.all():
        return _masked(flat, (x0, x1, y0, y1), width, (fx, fy), taps)
    top = flat[y0 * width + x0] * (1 - fx) + flat[y0 * width + x1] * fx
    bottom = flat[y1 * width + x0] * (1 - fx) + flat[y1 * width + x1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float64)


def _masked(flat: Floats, corners: tuple[Ints, Ints, Ints, Ints], width: int,
            fractions: tuple[Floats, Floats], taps: Taps) -> Floats:
    """sample() from the marked pixels only."""
    x0, x1, y0, y1 = corners
    fx, fy = fractions
    share = np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy],
                           axis=1) * taps
    total = share.sum(axis=1, keepdims=True)
    share = np.where(total > 1e-9, share / np.maximum(total, 1e-9),
                     taps / np.maximum(taps.sum(axis=1, keepdims=True), 1))
    out = np.zeros((len(x0), flat.shape[1]))
    for k, (col, row) in enumerate(((x0, y0), (x1, y0), (x0, y1), (x1, y1))):
        out += flat[row * width + col] * share[:, k, None]
    return out


class Accumulator:
    """The weighted sum of the views added so far, for one surface."""

    def __init__(self, surface: Surface) -> None:
        self.surface = surface
        self.total = np.zeros(len(surface.texels))
        self.sums: Floats | None = None

    def add(self, colors: Floats, weights: Floats) -> None:
        """Add one view's colours (N,C) at the texels with their weights (N,)."""
        if self.sums is None:
            self.sums = np.zeros((len(self.total), colors.shape[1]))
        self.sums += colors * weights[:, None]
        self.total += weights

    @property
    def painted(self) -> NDArray[np.bool_]:
        """(N,) texels some view has given a colour."""
        return self.total > PAINTED

    @property
    def filled(self) -> int:
        """How many texels no view saw: texture() fills them from their neighbours."""
        return int(np.count_nonzero(~self.painted))

    def colors(self) -> Floats:
        """(N,C) each texel's blended colour (0 where unpainted)."""
        if self.sums is None:
            return np.zeros((len(self.total), 4))
        return self.sums / np.maximum(self.total, PAINTED)[:, None]

    def texture(self) -> NDArray[np.float32]:
        """(S,S,C) float32 the blended texture, row 0 at the top: texels no view saw, and a
        gutter of GUTTER texels around the UV islands, take their neighbours' colours; beyond
        it, 0. float32 as Blender's pixels are, and half the memory of a 2048² texture."""
        size = self.surface.size
        channels = 4 if self.sums is None else self.sums.shape[1]
        image = np.zeros((size * size, channels), np.float32)
        known = np.zeros(size * size, bool)
        image[self.surface.texels] = self.colors()
        known[self.surface.texels] = self.painted
        filled = push_pull(image.reshape(size, size, channels), known.reshape(size, size))
        filled[~grow(layout_mask(self.surface), GUTTER)] = 0.0
        return filled


def layout_mask(surface: Surface) -> NDArray[np.bool_]:
    """(S,S) the texels the UV layout covers."""
    mask = np.zeros(surface.size * surface.size, bool)
    mask[surface.texels] = True
    return mask.reshape(surface.size, surface.size)


def grow(mask: NDArray[np.bool_], steps: int) -> NDArray[np.bool_]:
    """The mask dilated by `steps` texels (8-neighbourhood)."""
    out = mask.copy()
    for _ in range(steps):
        step = out.copy()
        step[1:] |= out[:-1]
        step[:-1] |= out[1:]
        wide = step.copy()
        wide[:, 1:] |= step[:, :-1]
        wide[:, :-1] |= step[:, 1:]
        out = wide
    return out


def push_pull(image: NDArray[FloatT], known: NDArray[np.bool_]) -> NDArray[FloatT]:
    """(H,W,C) a copy of the image with every unknown pixel given the average of the nearest
    known ones at the coarsest scale that has some: averages over 2x2 blocks up a pyramid
    (pull), then unknown pixels take their block's value on the way down (push). O(pixels),
    unlike dilating one ring at a time across a big hole; in the image's own precision."""
    out = image.copy()
    if known.all() or not known.any():
        return out
    weight = known.astype(image.dtype)
    out *= weight[..., None]
    return _fill(out, weight)


def _fill(sums: NDArray[FloatT], weight: NDArray[FloatT]) -> NDArray[FloatT]:
    """The averages sums / weight where weight > 0 and the coarser level's elsewhere, in
    place of sums."""
    holes = weight == 0
    coarse = None
    if holes.any() and weight.size > 1:
        coarse = _fill(_halve(sums), _halve(weight))
    sums /= np.where(holes, 1, weight)[..., None]
    if coarse is not None:
        rows, cols = np.nonzero(holes)
        sums[rows, cols] = coarse[rows // 2, cols // 2]
    return sums


def _halve(image: NDArray[FloatT]) -> NDArray[FloatT]:
    """Sums over 2x2 blocks (an odd last row or column padded with zeros)."""
    odd = (image.shape[0] % 2, image.shape[1] % 2)
    if any(odd):
        image = np.pad(image, ((0, odd[0]), (0, odd[1])) + ((0, 0),) * (image.ndim - 2))
    return image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2]


def uncovered_mask(surface: Surface, camera: Camera, depth: Floats,
                   painted: NDArray[np.bool_]) -> Floats:
    """(H,W) 1 where this camera sees the surface (not hidden by anything in the depth map)
    at a texel no earlier view painted, 0 elsewhere (painted, hidden, other objects,
    background). Per pixel: the surface's own nearest triangle and UV there, the texel under
    it, and whether that texel is painted (texels between islands take their neighbours')."""
    mesh = surface.mesh
    own = screen(camera, mesh.corners())
    hit = own.tri >= 0
    w = Weighting()
    allowed = w.depth_bias * surface.extent + camera.pixel_size(own.depth) * w.slope_pixels
    front = hit & (own.depth <= depth + np.where(hit, allowed, 0.0))
    tri = own.tri[front]
    uv = np.einsum("nk,nkd->nd", own.bary[front], mesh.uvs[tri])
    size = surface.size
    col = np.clip(np.floor(uv[:, 0] * size).astype(np.int64), 0, size - 1)
    row = np.clip(np.floor((1.0 - uv[:, 1]) * size).astype(np.int64), 0, size - 1)
    done = np.zeros((size * size, 1), np.float32)
    done[surface.texels, 0] = painted
    done = push_pull(done.reshape(size, size, 1), layout_mask(surface))[..., 0]
    mask = np.zeros(depth.shape)
    mask[front] = done[row, col] < 0.5
    return mask
