"""One object's texture as points in the world: every texel its UV layout covers, with the
surface point, normal and world area it stands for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Floats, Ints, Mesh
from .raster import rasterize_uv


@dataclass(frozen=True)
class Surface:
    """The N covered texels of a size x size texture of `mesh` (row 0 = top): their flat
    indices row * size + col, world positions (N,3), unit world normals (N,3), the world area
    each stands for (N,), the triangle each lies in (N,) and the surface's size."""

    mesh: Mesh
    size: int
    texels: Ints
    positions: Floats
    normals: Floats
    areas: Floats
    triangles: Ints

    extent: float  # the diagonal of the bounding box: the surface's scale, for biases
    planes: Floats  # (T,3) the mesh's unit face normals (geometric: what depth maps hold)


def surface(mesh: Mesh, size: int) -> Surface:
    texels = rasterize_uv(mesh.uvs, size)
    flat_tri = texels.tri.reshape(-1)
    index = np.flatnonzero(flat_tri >= 0)
    tri = flat_tri[index].astype(np.int64)
    bary = texels.bary.reshape(-1, 3)[index]
    corners = mesh.corners()
    positions, normals = np.zeros((len(tri), 3)), np.zeros((len(tri), 3))
    for k in range(3):  # corner by corner: (N,3,3) gathers would take 300 MB at 2048²
        positions += bary[:, k, None] * corners[tri, k]
        normals += bary[:, k, None] * mesh.normals[tri, k]
    normals /= np.maximum(np.sqrt(np.einsum("nd,nd->n", normals, normals)), 1e-12)[:, None]
    extent = float(np.linalg.norm(np.ptp(positions, axis=0))) if len(positions) else 1.0
    return Surface(mesh, size, index.astype(np.int64), positions, normals,
                   _texel_areas(mesh, corners, size)[tri], tri, extent, face_normals(corners))


def face_normals(corners: Floats) -> Floats:
    """(T,3) unit normals of triangles (T,3,3) (0 for a degenerate one)."""
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.sqrt(np.einsum("nd,nd->n", cross, cross))
    return np.asarray(cross / np.maximum(length, 1e-30)[:, None], dtype=np.float64)


def _texel_areas(mesh: Mesh, corners: Floats, size: int) -> Floats:
    """(T,) the world area one texel stands for in each triangle: its world area over the
    number of texels its UVs span (a sliver's one texel stands for all of it)."""
    world = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    e1, e2 = mesh.uvs[:, 1] - mesh.uvs[:, 0], mesh.uvs[:, 2] - mesh.uvs[:, 0]
    texels = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) * size * size
    return world / np.maximum(texels, 1.0)
