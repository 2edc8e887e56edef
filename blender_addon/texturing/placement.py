"""Where to put cameras and how much of the objects they see: evenly spread directions, the
surface visible from outside at all (coverage is measured against it, so the backs of
Suzanne's eyes do not count as missed), greedy automatic placement and coverage."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .blend import PAINTED, Weighting, view_weights
from .blend import visible as unoccluded
from .geometry import Camera, Floats, half_angle
from .raster import depth_map
from .surface import Surface

Mask = NDArray[np.bool_]
GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))
FRAME_MARGIN = 1.05  # the bounding sphere fills the frame's smaller side but for 5 %
TIE_BREAK = 1e-3  # how much better views count once all new area is covered


@dataclass(frozen=True)
class Placed:
    """An automatically placed camera and the share of the outside-visible area it newly
    covers (0..1; the shares of a placement add up to its coverage)."""

    camera: Camera
    added_coverage: float


def directions(n: int) -> Floats:
    """(n,3) unit vectors spread evenly over the sphere (a Fibonacci spiral: equal-area bands
    in z, each point turned by the golden angle from the last)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.maximum(1.0 - z * z, 0.0))
    phi = i * GOLDEN_ANGLE
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def bounding_sphere(surfaces: Sequence[Surface]) -> tuple[Floats, float]:
    """Centre (of the bounding box) and radius around every surface point."""
    points = np.concatenate([s.positions for s in surfaces])
    center = 0.5 * (points.min(axis=0) + points.max(axis=0))
    radius = float(np.sqrt(((points - center) ** 2).sum(axis=1).max()))
    return center, max(radius, 1e-6)


def outside_visible(surfaces: Sequence[Surface], occluder_triangles: Floats, n: int = 200,
                    resolution: int = 128) -> list[Mask]:
    """Per surface, (N,) texels visible from at least one of n directions evenly spread
    around the objects (orthographic views of the bounding sphere, depth-tested against every
    occluder at resolution x resolution). 128 pixels across the bounding sphere keep 200
    views of 20,000 triangles to about 2 s of CPU; what spans less than a pixel or two from
    every side (a crack, a hair-thin gap) counts as hidden."""
    center, radius = bounding_sphere(surfaces)
    found = [np.zeros(len(s.texels), bool) for s in surfaces]
    weighting = Weighting()
    for direction in directions(n):
        camera = Camera.ortho(direction, center, radius, resolution)
        depth = depth_map(camera, occluder_triangles)
        for s, seen in zip(surfaces, found, strict=True):
            rest = np.flatnonzero(~seen)  # a texel seen once needs no more tests
            xy, z = camera.project(s.positions[rest])
            planes = camera.normals_to_view(s.planes)[s.triangles[rest]]
            seen[rest] = unoccluded(camera, depth, xy, z, planes, weighting, s.extent)
    return found


def coverage(surface: Surface, seen: Mask, visible: Mask) -> float:
    """The share (0..1) of the visible texels' world area that is seen (1 if none visible)."""
    total = float(surface.areas[visible].sum())
    return float(surface.areas[visible & seen].sum()) / total if total > 0 else 1.0


def combined_coverage(surfaces: Sequence[Surface], seen: Sequence[Mask],
                      visible: Sequence[Mask]) -> float:
    """coverage() of several objects together: the seen share of all their visible area."""
    total = sum(float(s.areas[v].sum()) for s, v in zip(surfaces, visible, strict=True))
    covered = sum(float(s.areas[v & c].sum())
                  for s, c, v in zip(surfaces, seen, visible, strict=True))
    return covered / total if total > 0 else 1.0


def auto_cameras(surfaces: Sequence[Surface], occluder_triangles: Floats, count: int,
                 width: int, height: int, lens_mm: float = 50.0, candidates: int = 96,
                 visible: Sequence[Mask] | None = None) -> list[Placed]:
    """`count` cameras on a sphere around the objects, each chosen from `candidates`
    directions as the one that newly covers the most outside-visible area, weighted by how
    squarely it sees it (ties, once everything is covered, go to the view that sees
    something better than the views before). Each camera frames the bounding sphere. Pass
    the surfaces at a modest size (256 is plenty), `visible` if outside_visible() is at hand.
    Candidates are judged on small depth maps; the coverage each chosen camera adds is then
    measured at its own resolution, so the shares add up to what a bake will paint."""
    center, radius = bounding_sphere(surfaces)
    distance = radius * FRAME_MARGIN / math.sin(half_angle(width, height, lens_mm))
    outside = list(visible) if visible is not None else outside_visible(
        surfaces, occluder_triangles)
    areas = np.concatenate([s.areas * m for s, m in zip(surfaces, outside, strict=True)])
    total = max(float(areas.sum()), 1e-30)
    scale = min(1.0, 256.0 / max(width, height))  # depth maps for choosing need few pixels
    small = (max(int(width * scale), 1), max(int(height * scale), 1))
    options = []
    for direction in directions(candidates):
        eye = center + direction * distance
        trial = Camera.look_at(eye, center, *small, lens_mm=lens_mm)
        quality = _quality(surfaces, trial, occluder_triangles)
        options.append((Camera.look_at(eye, center, width, height, lens_mm=lens_mm), quality))
    seen = np.zeros(len(areas), bool)
    placed = []
    for camera in _greedy(options, areas, count):
        now = _quality(surfaces, camera, occluder_triangles) > PAINTED
        placed.append(Placed(camera, float(areas[now & ~seen].sum()) / total))
        seen |= now
    return placed


def _quality(surfaces: Sequence[Surface], camera: Camera, occluder_triangles: Floats) -> Floats:
    """Every surface's texels' weights in one camera's view, end to end."""
    depth = depth_map(camera, occluder_triangles)
    return np.concatenate([view_weights(s, camera, depth).weights for s in surfaces])


def _greedy(options: list[tuple[Camera, Floats]], areas: Floats, count: int) -> list[Camera]:
    best = np.zeros(len(areas))
    chosen: list[Camera] = []
    for _ in range(min(count, len(options))):
        covered = best > 0
        gains = [float((areas * np.where(covered, 0.0, q)).sum()
                       + TIE_BREAK * (areas * np.maximum(q - best, 0.0)).sum())
                 for _, q in options]
        camera, quality = options.pop(int(np.argmax(gains)))
        best = np.maximum(best, quality)
        chosen.append(camera)
    return chosen
