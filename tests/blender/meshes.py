"""UV-mapped test meshes built in numpy for the texturing engine's tests and benchmark."""

from __future__ import annotations

import numpy as np

from blender_addon.texturing.geometry import Floats, Mesh

# Each cube face: its outward normal and two in-face axes with u x v = normal, so every UV
# island keeps the face's orientation as seen from outside.
FACES = (
    ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    ((0, 1, 0), (-1, 0, 0), (0, 0, 1)),
    ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
    ((0, 0, 1), (1, 0, 0), (0, 1, 0)),
    ((0, 0, -1), (-1, 0, 0), (0, 1, 0)),
)
MARGIN = 0.02  # between the cube's UV islands


def cube(center: tuple[float, float, float] = (0, 0, 0), half: float = 1.0) -> Mesh:
    """A cube of 12 triangles, flat normals, each face its own island in a 3 x 2 UV grid."""
    positions, uvs, normals = [], [], []
    for i, (n, u, v) in enumerate(FACES):
        nn, uu, vv = (np.array(a, dtype=np.float64) for a in (n, u, v))
        square = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        corners = [np.array(center) + half * (nn + s * uu + t * vv) for s, t in square]
        cell = np.array([i % 3 / 3.0, i // 3 / 2.0])
        span = np.array([1 / 3.0, 1 / 2.0]) - 2 * MARGIN
        island = [cell + MARGIN + span * (np.array([s, t]) + 1) / 2 for s, t in square]
        for a, b, c in ((0, 1, 2), (0, 2, 3)):
            positions.append([corners[a], corners[b], corners[c]])
            uvs.append([island[a], island[b], island[c]])
            normals.append([nn, nn, nn])
    return from_corners(np.array(positions), np.array(uvs), np.array(normals))


def uv_sphere(segments: int = 32, rings: int = 16, radius: float = 1.0) -> Mesh:
    """A latitude-longitude sphere with smooth normals, u around and v from the south pole up
    (the triangles that would be points at the poles are left out)."""
    lon = np.linspace(0.0, 2 * np.pi, segments + 1)
    lat = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
    grid_lon, grid_lat = np.meshgrid(lon, lat)  # (rings+1, segments+1)
    points = np.stack([np.cos(grid_lat) * np.cos(grid_lon), np.cos(grid_lat) * np.sin(grid_lon),
                       np.sin(grid_lat)], axis=-1).reshape(-1, 3)
    uv = np.stack([grid_lon / (2 * np.pi), (grid_lat + np.pi / 2) / np.pi], axis=-1).reshape(-1, 2)
    r, s = np.meshgrid(np.arange(rings), np.arange(segments), indexing="ij")
    a = (r * (segments + 1) + s).reshape(-1)
    b, c, d = a + 1, a + segments + 2, a + segments + 1  # counter-clockwise from outside
    lower = np.stack([a, b, c], axis=1)[np.repeat(np.arange(rings), segments) > 0]
    upper = np.stack([a, c, d], axis=1)[np.repeat(np.arange(rings), segments) < rings - 1]
    tris = np.concatenate([lower, upper])
    return from_corners(points[tris] * radius, uv[tris], points[tris])


def from_corners(corners: Floats, uvs: Floats, normals: Floats) -> Mesh:
    """A mesh whose triangles (T,3,3) share no vertices."""
    return Mesh(corners.reshape(-1, 3).astype(np.float64),
                np.arange(corners.shape[0] * 3, dtype=np.int64).reshape(-1, 3),
                uvs.astype(np.float64), normals.astype(np.float64))


def moved(mesh: Mesh, offset: tuple[float, float, float]) -> Mesh:
    return Mesh(mesh.positions + np.array(offset), mesh.triangles, mesh.uvs, mesh.normals)
