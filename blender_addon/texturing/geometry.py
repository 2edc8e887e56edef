"""Meshes and cameras as plain arrays, in Blender's conventions (Z up, cameras look down -Z).

Image coordinates everywhere in this package: x = column from the left, y = row from the TOP
(row 0 is the top row, as in a PNG), in pixels, with pixel (col, row)'s centre at
(col + 0.5, row + 0.5). Depth is the positive distance along the camera's viewing axis (-Z of
its view space), in world units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

CLIP_START = 0.1  # Blender's default camera clip range; only the depth buffer's z uses them
CLIP_END = 1000.0


@dataclass(frozen=True)
class Mesh:
    """One object's evaluated triangles in world space.

    positions (V,3) world; triangles (T,3) vertex indices; uvs (T,3,2) the UV of each corner
    (0..1, v up as in Blender); normals (T,3,3) each corner's world normal as rendered
    (smooth or flat)."""

    positions: Floats
    triangles: Ints
    uvs: Floats
    normals: Floats

    def corners(self) -> Floats:
        """(T,3,3): each triangle's corner positions."""
        return self.positions[self.triangles]


@dataclass(frozen=True)
class Camera:
    """world_to_view (4,4): the inverse of the camera object's world matrix (looks down -Z,
    +Y up). projection (4,4): view -> OpenGL clip space, as Blender's
    `camera.calc_matrix_camera(depsgraph, x=width, y=height)` returns it. width, height: the
    rendered image's size in pixels."""

    world_to_view: Floats
    projection: Floats
    width: int
    height: int

    def project(self, points: Floats) -> tuple[Floats, Floats]:
        """Pixel coordinates (N,2) (col from the left, row from the top, centres at +0.5) and
        depth (N,) (distance along the viewing axis, positive in front) of world points (N,3).
        Points behind the camera get meaningless xy and depth <= 0: callers test depth > 0."""
        # np.dot with contiguous small matrices: several times faster than a transposed view.
        view = np.dot(points, np.ascontiguousarray(self.world_to_view[:3, :3].T))
        view += self.world_to_view[:3, 3]
        clip = np.dot(view, np.ascontiguousarray(self.projection[:, :3].T))
        clip += self.projection[:, 3]
        w = clip[:, 3]
        w = np.where(np.abs(w) < 1e-12, 1e-12, w)  # on the eye's plane: no finite position
        xy = np.empty((len(points), 2))
        xy[:, 0] = (clip[:, 0] / w + 1.0) * (0.5 * self.width)
        xy[:, 1] = (1.0 - clip[:, 1] / w) * (0.5 * self.height)  # NDC y up, image rows down
        return xy, -view[:, 2]

    @property
    def orthographic(self) -> bool:
        return bool(self.projection[3, 3] == 1.0)

    def eye(self) -> Floats:
        """The camera's position in the world."""
        return self._eye.copy()

    @cached_property
    def _normal_matrix(self) -> Floats:
        return np.ascontiguousarray(np.linalg.inv(self.world_to_view[:3, :3]))

    @cached_property
    def _eye(self) -> Floats:  # asked for per slice of texels: inverted once
        view_to_world = np.linalg.inv(self.world_to_view)
        return np.asarray(view_to_world[:3, 3], dtype=np.float64)

    def backward(self) -> Floats:
        """The unit world direction the camera looks away from (its view +Z)."""
        axis = np.asarray(self.world_to_view[2, :3], dtype=np.float64)
        return axis / np.linalg.norm(axis)

    def to_camera(self, points: Floats) -> Floats:
        """(N,3) unit directions from each point towards the camera (for the angle it sees a
        surface at): towards the eye, or along the view axis for an orthographic camera."""
        if self.orthographic:
            return np.broadcast_to(self.backward(), points.shape).copy()
        towards = self._eye - points
        length = np.sqrt(np.einsum("nd,nd->n", towards, towards))
        return towards / np.maximum(length, 1e-12)[:, None]

    def normals_to_view(self, normals: Floats) -> Floats:
        """(N,3) world normals as unit normals in view space (the inverse transpose, so a
        scaled camera object still gives true normals)."""
        view = np.dot(normals, self._normal_matrix)
        length = np.sqrt(np.einsum("nd,nd->n", view, view))
        return view / np.maximum(length, 1e-12)[:, None]

    def rays(self, x: Floats, y: Floats) -> tuple[Floats, Floats]:
        """The view-space x and y (N,) of the rays through pixel coordinates: for a
        perspective camera of the ray's point at depth 1 (z = -1), for an orthographic one of
        its origin (z = 0)."""
        p = self.projection
        ndc_x, ndc_y = 2.0 * x / self.width - 1.0, 1.0 - 2.0 * y / self.height
        if self.orthographic:
            return (ndc_x - p[0, 3]) / p[0, 0], (ndc_y - p[1, 3]) / p[1, 1]
        return (ndc_x + p[0, 2]) / p[0, 0], (ndc_y + p[1, 2]) / p[1, 1]

    def pixel_size(self, depth: Floats) -> Floats:
        """The world width one pixel covers at each depth (for depth-test bias)."""
        scale = 2.0 / (self.projection[0, 0] * self.width)
        return scale if self.orthographic else depth * scale

    def clip_range(self) -> tuple[float, float]:
        """The clip start and end its projection was made for (view-space depths)."""
        (a, b) = self.projection[2, 2], self.projection[2, 3]
        if self.orthographic:
            return (b + 1.0) / a, (b - 1.0) / a
        return b / (a - 1.0), b / (a + 1.0)

    @classmethod
    def look_at(cls, eye: ArrayLike, target: ArrayLike, width: int, height: int,
                lens_mm: float = 50.0, sensor_mm: float = 36.0,
                clip: tuple[float, float] = (CLIP_START, CLIP_END)) -> Camera:
        """A perspective camera at `eye` looking at `target` with world +Z up, built as
        Blender builds it for sensor fit AUTO (the sensor spans the larger image side, no
        shift, square pixels): focal f = 2 * lens / sensor in NDC units, so
        projection[0,0] = f and projection[1,1] = f * width / height when width >= height,
        else projection[1,1] = f and projection[0,0] = f * height / width; the z rows are
        OpenGL's for the clip range `clip` (Blender's default unless given)."""
        return cls(view_matrix(eye, target),
                   perspective(width, height, lens_mm, sensor_mm, *clip), width, height)

    @classmethod
    def ortho(cls, direction: ArrayLike, center: ArrayLike, radius: float,
              size: int) -> Camera:
        """A square orthographic camera looking along -direction at a sphere (center,
        radius), framing it exactly: the view from infinitely far away in `direction`."""
        d = np.asarray(direction, dtype=np.float64)
        c = np.asarray(center, dtype=np.float64)
        eye = c + d / np.linalg.norm(d) * 2.0 * radius
        near, far = radius * 0.5, radius * 3.5
        projection = np.diag([1.0 / radius, 1.0 / radius, -2.0 / (far - near), 1.0])
        projection[2, 3] = -(far + near) / (far - near)
        return cls(view_matrix(eye, c), projection, size, size)


def view_matrix(eye: ArrayLike, target: ArrayLike) -> Floats:
    """world -> view for a camera at eye looking at target, world +Z up (+Y when looking
    straight up or down), as a Blender camera object with a Track To constraint."""
    e = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - e
    forward /= np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0]) if abs(forward[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    matrix = np.eye(4)
    matrix[0, :3], matrix[1, :3], matrix[2, :3] = right, true_up, -forward
    matrix[:3, 3] = -matrix[:3, :3] @ e
    return matrix


def clip_for(distance: float, radius: float) -> tuple[float, float]:
    """A clip range for a camera `distance` from the centre of a sphere of `radius`:
    Blender's default, brought closer for a small object (which the default 0.1 m start would
    cut away), keeping the default's end-to-start ratio."""
    near = min(CLIP_START, 0.5 * (distance - radius))
    return near, near * (CLIP_END / CLIP_START)


def perspective(width: int, height: int, lens_mm: float, sensor_mm: float,
                near: float = CLIP_START, far: float = CLIP_END) -> Floats:
    """view -> clip for a perspective camera, sensor fit AUTO (see Camera.look_at)."""
    focal = 2.0 * lens_mm / sensor_mm
    fx, fy = (focal, focal * width / height) if width >= height else (
        focal * height / width, focal)
    matrix = np.zeros((4, 4))
    matrix[0, 0], matrix[1, 1] = fx, fy
    matrix[2, 2] = -(far + near) / (far - near)
    matrix[2, 3] = -2.0 * far * near / (far - near)
    matrix[3, 2] = -1.0
    return matrix


def half_angle(width: int, height: int, lens_mm: float, sensor_mm: float = 36.0) -> float:
    """Half the field of view across the image's smaller side, in radians."""
    projection = perspective(width, height, lens_mm, sensor_mm)
    return math.atan(1.0 / max(projection[0, 0], projection[1, 1]))
