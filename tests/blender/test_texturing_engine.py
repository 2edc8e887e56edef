"""The texturing engine (blender_addon/texturing/, numpy only, no bpy): cameras, rasterising,
blending views back into a texture, occlusion, automatic cameras and sequential masks.

Views are "rendered" here by a deliberately plain per-triangle rasteriser of the test's own
(render()), so a round trip through the engine is checked against code it does not share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from blender_addon.texturing import blend, placement, projection, raster
from blender_addon.texturing.geometry import Camera, Floats, Mesh
from blender_addon.texturing.surface import Surface, surface
from tests.blender.meshes import MARGIN, cube, from_corners, moved, uv_sphere

VIEW = 256  # rendered views are VIEW x VIEW


# ---------------------------------------------------------------- the test's own renderer


def render(camera: Camera, scene: Sequence[tuple[Mesh, Floats]]) -> tuple[Floats, Floats]:
    """Each pixel's colour (H,W,C), read from its mesh's texture (S,S,C) at the UV the
    nearest triangle has under the pixel centre, and each pixel's UV (H,W,2) (nan: none).
    One triangle at a time, perspective-correct, z-buffered."""
    h, w = camera.height, camera.width
    channels = scene[0][1].shape[2]
    image, uv_out = np.zeros((h, w, channels)), np.full((h, w, 2), np.nan)
    zbuf = np.full((h, w), np.inf)
    for mesh, texture in scene:
        for t in range(len(mesh.triangles)):
            xy, z = camera.project(mesh.corners()[t])
            if (z <= 0).any():
                continue
            x0, y0 = np.maximum(np.floor(xy.min(axis=0)).astype(int), 0)
            x1, y1 = np.minimum(np.ceil(xy.max(axis=0)).astype(int), [w, h])
            if x1 <= x0 or y1 <= y0:
                continue
            px, py = np.meshgrid(np.arange(x0, x1) + 0.5, np.arange(y0, y1) + 0.5)
            (ax, ay), (bx, by), (cx, cy) = xy
            area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
            if abs(area) < 1e-12:
                continue
            l1 = ((px - ax) * (cy - ay) - (py - ay) * (cx - ax)) / area
            l2 = ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / area
            lam = np.stack([1 - l1 - l2, l1, l2], axis=-1)
            inside = (lam >= 0).all(axis=-1)
            persp = lam / z
            depth = 1.0 / persp.sum(axis=-1)
            bary = persp * depth[..., None]
            region = zbuf[y0:y1, x0:x1]
            win = inside & (depth < region)
            region[win] = depth[win]
            uv = bary @ mesh.uvs[t]
            uv_out[y0:y1, x0:x1][win] = uv[win]
            image[y0:y1, x0:x1][win] = read(texture, uv[win])
    return image, uv_out


def read(texture: Floats, uv: Floats) -> Floats:
    """Bilinear texture samples at UVs (row 0 of the texture is v = 1)."""
    size = texture.shape[0]
    return blend.sample(texture, np.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size], axis=1))


def pattern(size: int, channels: int = 3, seed: int = 0) -> Floats:
    """A smooth known texture: a few low-frequency waves per channel."""
    rng = np.random.default_rng(seed)
    v, u = np.meshgrid((np.arange(size)[::-1] + 0.5) / size, (np.arange(size) + 0.5) / size,
                       indexing="ij")
    out = np.zeros((size, size, channels))
    for c in range(channels):
        fu, fv, phase = rng.uniform(2, 5), rng.uniform(2, 5), rng.uniform(0, 2 * np.pi)
        out[..., c] = 0.5 + 0.4 * np.sin(2 * np.pi * (fu * u + fv * v) + phase)
    return out


def around(count: int, distance: float = 6.0, width: int = VIEW,
           height: int = VIEW) -> list[Camera]:
    return [Camera.look_at(d * distance, (0, 0, 0), width, height, lens_mm=35)
            for d in placement.directions(count)]


def bake(surf: Surface, cameras: Sequence[Camera], scene: Sequence[tuple[Mesh, Floats]],
         occluders: Floats) -> blend.Accumulator:
    """Render each camera's view of the scene and blend the views into surf's texture."""
    acc = blend.Accumulator(surf)
    for camera in cameras:
        image, _ = render(camera, scene)
        view = blend.view_weights(surf, camera, raster.depth_map(camera, occluders))
        acc.add(blend.sample(image, view.xy, view.taps), view.weights)
    return acc


def psnr(a: Floats, b: Floats) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def at_texels(surf: Surface, texture: Floats) -> Floats:
    return texture.reshape(-1, texture.shape[2])[surf.texels]


# ---------------------------------------------------------------- geometry and rasterising


def test_project_matches_a_hand_computation() -> None:
    """A 50 mm lens on a 36 mm sensor spanning the wider side: a point X right and Y up at
    distance Z lands lens / sensor * width * X / Z pixels right of the centre."""
    camera = Camera.look_at((0, -10, 0), (0, 0, 0), 200, 100)  # looks along +Y: right is +X
    xy, depth = camera.project(np.array([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]))
    k = 50 / 36 * 200
    assert xy[0] == pytest.approx([100 + k * 1 / 10, 50 - k * 0.5 / 10])  # row from the top
    assert xy[1] == pytest.approx([100, 50])  # the image centre, between pixels 99 and 100
    assert depth == pytest.approx([10, 10])
    portrait = Camera.look_at((0, -10, 0), (0, 0, 0), 100, 200)  # the sensor spans the height
    xy, _ = portrait.project(np.array([[1.0, 0.0, 0.5]]))
    assert xy[0] == pytest.approx([50 + k * 1 / 10, 100 - k * 0.5 / 10])


def test_a_camera_straight_above_still_has_a_frame() -> None:
    camera = Camera.look_at((0, 0, 5), (0, 0, 0), 64, 64)
    xy, depth = camera.project(np.array([[0.0, 1.0, 0.0]]))
    assert depth == pytest.approx([5])
    assert xy[0, 1] < 32  # +Y is up in the image when looking straight down


def test_rasterize_uv_covers_the_layout() -> None:
    size = 256
    texels = raster.rasterize_uv(cube().uvs, size)
    island = (1 / 3 - 2 * MARGIN) * (1 / 2 - 2 * MARGIN)
    assert np.count_nonzero(texels.tri >= 0) == pytest.approx(6 * island * size**2, rel=0.02)
    assert set(np.unique(texels.tri)) == {-1, *range(12)}
    # Row 0 is the top (v = 1): face 0 (triangles 0, 1) is at the bottom left of UV space,
    # face 3 (triangles 6, 7) above it.
    assert texels.tri[200, 50] in (0, 1) and texels.tri[60, 50] in (6, 7)
    inside = texels.tri >= 0
    assert np.allclose(texels.bary[inside].sum(axis=1), 1)
    assert (texels.bary[inside] >= -1e-9).all()


def test_a_sliver_triangle_still_gets_a_texel() -> None:
    uvs = np.array([[[0.1, 0.1], [0.9, 0.1001], [0.5, 0.1002]]])
    assert np.count_nonzero(raster.rasterize_uv(uvs, 64).tri == 0) >= 1


def test_depth_map_equals_the_analytic_depth_of_a_plane() -> None:
    corners = np.array([[[-5, -5, 0], [5, -5, 0], [5, 5, 0]], [[-5, -5, 0], [5, 5, 0], [-5, 5, 0]]],
                       dtype=np.float64)
    camera = Camera.look_at((1, -6, 4), (0, 0, 0), 160, 120)
    depth = raster.depth_map(camera, corners)
    # Each pixel centre's ray, in view space (x, y, -1) scaled by the projection, to z = 0.
    col, row = np.meshgrid(np.arange(160) + 0.5, np.arange(120) + 0.5)
    ndc_x, ndc_y = col / 160 * 2 - 1, 1 - row / 120 * 2
    view = np.stack([ndc_x / camera.projection[0, 0], ndc_y / camera.projection[1, 1],
                     -np.ones_like(ndc_x)], axis=-1)
    rotation = camera.world_to_view[:3, :3]
    ray = view @ rotation  # view -> world: the rotation's transpose
    eye = camera.eye()
    t = -eye[2] / ray[..., 2]  # depth, since the ray's view z is -1 per unit of t
    hit = eye + t[..., None] * ray
    on_plane = (t > 0) & (np.abs(hit[..., 0]) < 4.99) & (np.abs(hit[..., 1]) < 4.99)
    assert on_plane.sum() > 1000
    assert depth[on_plane] == pytest.approx(t[on_plane], rel=1e-9)
    off_plane = (t <= 0) | (np.abs(hit[..., 0]) > 5.01) | (np.abs(hit[..., 1]) > 5.01)
    assert np.isinf(depth[off_plane]).all()


def test_a_floor_passing_behind_the_camera_still_hides_what_is_below() -> None:
    """The floor's two triangles reach behind the camera: cut at its clip start, they still
    hide a plane under the floor; their barycentrics still name points on the floor."""
    floor = np.array([[[-50, -50, 0], [50, -50, 0], [50, 50, 0]],
                      [[-50, -50, 0], [50, 50, 0], [-50, 50, 0]]], dtype=np.float64)
    below = floor - [0, 0, 1]
    camera = Camera.look_at((0, 0, 1), (0, 10, 0), 64, 48)
    seen = raster.screen(camera, np.concatenate([floor, below]))
    lower = seen.tri[30:]  # the image's lower rows look down at the floor
    assert (lower >= 0).all() and (lower < 2).all()  # the floor, never what is below
    corners = floor[seen.tri[40, 32]]
    point = seen.bary[40, 32] @ corners
    assert point[2] == pytest.approx(0.0, abs=1e-9)
    assert camera.project(point[None])[1][0] == pytest.approx(seen.depth[40, 32], rel=1e-9)


def test_an_occluder_straddling_the_clip_start_occludes() -> None:
    """A wall from beside the camera to far in front hides the box behind it."""
    camera = Camera.look_at((0, -5, 0), (0, 0, 0), 64, 64)
    wall = np.array([[[-3, -5.05, -3], [3, -5.05, -3], [3, 4, 3]],
                     [[-3, -5.05, -3], [3, 4, 3], [-3, 4, 3]]], dtype=np.float64)
    box = cube().corners()
    depth = raster.depth_map(camera, wall)
    assert np.isfinite(depth[32:]).mean() > 0.9  # the wall's near part, cut, still drawn
    seen = raster.screen(camera, np.concatenate([wall, box]))
    assert not (seen.tri[48:] >= 2).any()


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.3, -0.2)], ids=["centred", "shifted"])
def test_an_oblique_plane_is_not_hidden_by_itself(shift: tuple[float, float]) -> None:
    """The occlusion test predicts the depth along each texel's plane: a wrong slope (or a
    lens shift read the wrong way) would hide a steep plane from itself."""
    plane = from_corners(np.array([[[-3, -3, 0], [3, -3, 0], [3, 3, 0]],
                                   [[-3, -3, 0], [3, 3, 0], [-3, 3, 0]]], dtype=np.float64),
                         np.array([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]],
                                  dtype=np.float64),
                         np.tile([0.0, 0.0, 1.0], (2, 3, 1)))
    surf = surface(plane, 128)
    base = Camera.look_at((1, -6, 2.5), (0, 0, 0), VIEW, VIEW, lens_mm=35)  # about 65° off
    projection = base.projection.copy()
    projection[0, 2], projection[1, 2] = shift  # Blender's shift_x, shift_y
    camera = Camera(base.world_to_view, projection, VIEW, VIEW)
    xy, z = camera.project(surf.positions)
    inside = blend.in_frame(camera, xy, z) & (xy.min(axis=1) > 2) & (xy.max(axis=1) < VIEW - 2)
    inside &= (np.abs(surf.positions[:, :2]) < 2.7).all(axis=1)  # not by the plane's edges
    view = blend.view_weights(surf, camera, raster.depth_map(camera, plane.corners()),
                              blend.Weighting(feather=0, cutoff_deg=89))
    assert inside.sum() > 1000
    assert (view.weights[inside] > 0).mean() > 0.995


def test_surface_points_lie_on_the_mesh_and_add_up_to_its_area() -> None:
    surf = surface(uv_sphere(), 256)
    radius = np.linalg.norm(surf.positions, axis=1)
    assert radius.max() <= 1 + 1e-9 and radius.min() > 0.98  # on the flat facets
    assert np.allclose(np.linalg.norm(surf.normals, axis=1), 1)
    assert surf.areas.sum() == pytest.approx(4 * np.pi, rel=0.02)
    cube_surface = surface(cube(), 256)
    assert cube_surface.areas.sum() == pytest.approx(24, rel=0.03)
    assert np.allclose(np.abs(cube_surface.positions).max(axis=1), 1)


# ---------------------------------------------------------------- blending


@pytest.mark.parametrize("mesh", [cube(), uv_sphere()], ids=["cube", "sphere"])
def test_views_blend_back_into_the_texture_they_were_rendered_from(mesh: Mesh) -> None:
    truth = pattern(128)
    surf = surface(mesh, 128)
    acc = bake(surf, around(8), [(mesh, truth)], mesh.corners())
    seen = acc.painted
    assert seen.mean() > 0.95
    assert psnr(acc.colors()[seen], at_texels(surf, truth)[seen]) >= 30
    # Texture space too: the layout's texels, seen or filled, and nothing far outside.
    texture = acc.texture()
    assert texture.dtype == np.float32 and texture.shape == (128, 128, 3)
    layout = blend.layout_mask(surf)
    assert psnr(texture[layout].astype(np.float64), truth[layout]) >= 25
    assert (texture[~blend.grow(layout, blend.GUTTER)] == 0).all()
    assert acc.filled == np.count_nonzero(~seen)


def test_twelve_cameras_work_and_leave_nothing_to_fill() -> None:
    mesh = uv_sphere()
    truth = pattern(128, seed=3)
    surf = surface(mesh, 128)
    acc = bake(surf, around(12), [(mesh, truth)], mesh.corners())
    assert acc.filled <= 0.002 * len(surf.texels)
    assert psnr(acc.colors()[acc.painted], at_texels(surf, truth)[acc.painted]) >= 30


def test_a_box_hidden_behind_another_takes_none_of_its_colour() -> None:
    back, front = cube(), moved(cube(half=0.3), (0, -3, 0))
    red, blue = np.zeros((64, 64, 3)), np.zeros((64, 64, 3))
    red[..., 0], blue[..., 2] = 1, 1
    occluders = np.concatenate([back.corners(), front.corners()])
    camera = Camera.look_at((0, -8, 0), (0, 0, 0), VIEW, VIEW, lens_mm=35)
    surf = surface(back, 128)
    acc = bake(surf, [camera], [(back, blue), (front, red)], occluders)
    colors = acc.colors()[acc.painted]
    assert len(colors) > 1000
    assert colors[:, 0].max() < 1e-9  # not a trace of red
    assert colors[:, 2].min() > 1 - 1e-9
    # The middle of the back box's front face (y = -1) is in the front box's shadow.
    facing = (surf.positions[:, 1] < -0.999) & (np.abs(surf.positions[:, [0, 2]]) < 0.2).all(1)
    assert facing.sum() > 50 and not acc.painted[facing].any()
    # Without the front box among the occluders the same texels would take red: the depth
    # test is what keeps it out.
    leaky = bake(surf, [camera], [(back, blue), (front, red)], back.corners())
    assert leaky.colors()[facing, 0].min() > 0.99


@pytest.mark.parametrize("gap", [0.05, 0.02])
def test_a_surface_just_behind_another_takes_none_of_its_colour(gap: float) -> None:
    """As the sockets behind Suzanne's eyes: a small box `gap` in front of a big one's face
    (the big box 3.5 across, a pixel there about 0.012 wide) hides part of that face, seen
    obliquely; none of the small box's colour may land on it, while the face around it
    still takes its own."""
    back, front = cube(), moved(cube(half=0.3), (0, -1.3 - gap, 0))
    red, blue = np.zeros((64, 64, 3)), np.zeros((64, 64, 3))
    red[..., 0], blue[..., 2] = 1, 1
    occluders = np.concatenate([back.corners(), front.corners()])
    cameras = [Camera.look_at(eye, (0, 0, 0), 2 * VIEW, 2 * VIEW, lens_mm=35)
               for eye in ((0, -7, 0), (5, -4, 3), (-5, -4, -2))]
    surf = surface(back, 128)
    acc = bake(surf, cameras, [(back, blue), (front, red)], occluders)
    face = surf.positions[:, 1] < -0.999
    assert acc.painted[face].mean() > 0.5
    assert acc.colors()[acc.painted, 0].max() < 1e-9


def test_texels_by_a_convex_crease_are_seen_and_read_their_own_face() -> None:
    """A cube seen corner-on at 48 pixels, each face a flat colour of its own: past an edge
    the next face lies behind a texel's plane, which the depth test lets through (before it
    left three faces only 76 % painted: every texel within a pixel of an edge failed), and
    the texel's colour is read from the pixels on its own face, so fewer texels take the next
    face's colour than a plain bilinear sample gives."""
    mesh = cube()
    size = 96
    rows, cols = np.mgrid[0:size, 0:size]
    colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], float)
    cell = np.minimum(cols * 3 // size, 2) + 3 * np.minimum((size - 1 - rows) * 2 // size, 1)
    surf = surface(mesh, size)
    face = surf.triangles // 2  # two triangles a face, each face the UV cell of its index
    camera = Camera.look_at((5, -4, 3.5), (0, 0, 0), 48, 48, lens_mm=35)
    image, _ = render(camera, [(mesh, colours[cell])])
    view = blend.view_weights(surf, camera, raster.depth_map(camera, mesh.corners()),
                              blend.Weighting(feather=0))
    seen = view.weights > blend.PAINTED
    facing = np.isin(face, [0, 3, 4])  # +x, -y and +z face the camera
    assert seen[facing].mean() > 0.8 and not seen[~facing].any()
    own = colours[face[seen]]
    read = np.abs(blend.sample(image, view.xy[seen], view.taps[seen]) - own).max(axis=1)
    plain = np.abs(blend.sample(image, view.xy[seen]) - own).max(axis=1)
    assert (read > 0.05).sum() < 0.7 * (plain > 0.05).sum()
    assert (read > 0.05).mean() < 0.15


def test_objects_are_textured_one_by_one() -> None:
    """Each object's texture comes from its own texels: views of two boxes side by side put
    each box's own colour in each texture (ObjectProjection.add, as a run adds each view)."""
    left, right = moved(cube(half=0.6), (-1.2, 0, 0)), moved(cube(half=0.6), (1.2, 0, 0))
    red, green = np.zeros((32, 32, 3)), np.zeros((32, 32, 3))
    red[..., 0], green[..., 1] = 1, 1
    occluders = np.concatenate([left.corners(), right.corners()])
    scene = [(left, red), (right, green)]
    targets = [projection.ObjectProjection(left, 64, 0),
               projection.ObjectProjection(right, 64, len(left.triangles))]
    for camera in around(6):
        image, shown = render(camera, scene)[0], projection.shown(camera, occluders)
        for target in targets:
            target.add(image, camera, shown, only_new=False)
    for target, channel in zip(targets, (0, 1), strict=True):
        acc = target.accumulator
        assert acc.painted.mean() > 0.9
        assert np.allclose(acc.colors()[acc.painted, channel], 1)
        assert np.allclose(acc.colors()[acc.painted, 1 - channel], 0)


def test_adding_a_view_samples_only_what_it_sees_with_the_same_result() -> None:
    """ObjectProjection.add samples only the texels the view weighs, with the result of
    sampling every texel."""
    mesh = uv_sphere()
    camera = around(1)[0]
    image = np.random.default_rng(1).random((VIEW, VIEW, 3))
    shown = projection.shown(camera, mesh.corners())
    target = projection.ObjectProjection(mesh, 64, 0)
    target.add(image, camera, shown, only_new=False)
    view = blend.view_weights(target.surface, camera, shown.depth)
    whole = blend.Accumulator(target.surface)
    whole.add(blend.sample(image, view.xy, view.taps), view.weights)
    assert 0.2 < target.accumulator.painted.mean() < 0.6
    assert np.allclose(whole.colors(), target.accumulator.colors())
    assert (whole.painted == target.accumulator.painted).all()


def test_unseen_texels_take_their_neighbours_and_a_gutter_surrounds_the_islands() -> None:
    surf = surface(cube(), 64)
    acc = blend.Accumulator(surf)
    colors = np.tile([0.2, 0.6, 0.9], (len(surf.texels), 1))
    weights = (surf.positions[:, 2] > 0.5).astype(np.float64)  # only the top part is seen
    acc.add(colors, weights)
    assert acc.filled == np.count_nonzero(weights == 0) > 0
    texture = acc.texture()
    layout = blend.layout_mask(surf)
    assert np.allclose(texture[layout], [0.2, 0.6, 0.9])  # filled from the painted texels
    gutter = blend.grow(layout, blend.GUTTER) & ~layout
    assert gutter.any() and np.allclose(texture[gutter], [0.2, 0.6, 0.9])
    assert (texture[~blend.grow(layout, blend.GUTTER)] == 0).all()


def test_push_pull_keeps_known_pixels_and_fills_holes_from_the_nearest() -> None:
    image = np.zeros((9, 7, 1))
    known = np.zeros((9, 7), bool)
    image[0, 0], image[8, 6] = 1.0, 3.0
    known[0, 0] = known[8, 6] = True
    out = blend.push_pull(image, known)
    assert out[0, 0, 0] == 1 and out[8, 6, 0] == 3
    assert out[1, 1, 0] == 1 and out[8, 5, 0] == 3
    assert np.isfinite(out).all() and out.min() >= 1 and out.max() <= 3


def test_weights_fall_off_with_the_angle_and_stop_at_the_cutoff() -> None:
    plane = from_corners(np.array([[[-1, -1, 0], [1, -1, 0], [1, 1, 0]]], dtype=np.float64),
                         np.array([[[0, 0], [1, 0], [1, 1]]], dtype=np.float64),
                         np.tile([0.0, 0.0, 1.0], (1, 3, 1)))
    surf = surface(plane, 32)
    weights = []
    for degrees in (0, 60, 85):
        a = math.radians(degrees)
        camera = Camera.ortho((0, math.sin(a), math.cos(a)), (0, 0, 0), 1.5, 256)
        view = blend.view_weights(surf, camera, raster.depth_map(camera, plane.corners()),
                                  blend.Weighting(feather=0))
        weights.append(np.median(view.weights[view.weights > 0]) if (view.weights > 0).any()
                       else 0.0)
    assert weights[0] == pytest.approx(1)
    assert weights[1] == pytest.approx(0.25, rel=0.01)  # cos 60° squared
    assert weights[2] == 0


# ---------------------------------------------------------------- placement and coverage


def test_directions_are_unit_and_spread_evenly() -> None:
    d = placement.directions(200)
    assert np.allclose(np.linalg.norm(d, axis=1), 1)
    assert np.abs(d.mean(axis=0)).max() < 0.01
    nearest = np.sort(d @ d.T, axis=1)[:, -2]  # cos of the angle to the nearest other
    assert np.degrees(np.arccos(nearest)).min() > 10


def test_outside_visible_leaves_out_what_is_enclosed() -> None:
    shell, inner = surface(cube(), 64), surface(cube(half=0.4), 64)
    occluders = np.concatenate([shell.mesh.corners(), inner.mesh.corners()])
    outer_seen, inner_seen = placement.outside_visible([shell, inner], occluders, n=60)
    assert placement.coverage(shell, outer_seen, np.ones(len(outer_seen), bool)) > 0.99
    assert not inner_seen.any()


def test_swaps_replace_a_camera_the_greedy_choice_made_redundant() -> None:
    """Six texels of equal area; candidates X = 0-2, Y = 3-5, Z = 0,1,3,4. Greedy takes Z
    first (four texels), then five at most; swapping Z for Y covers all six."""
    paints = np.zeros((3, 6), bool)
    paints[0, :3] = paints[1, 3:] = True
    paints[2, [0, 1, 3, 4]] = True
    areas = np.ones(6)
    greedy = placement._greedy(paints.astype(float), areas, 2)
    assert greedy[0] == 2 and paints[greedy].any(axis=0).sum() == 5
    assert sorted(placement._refined(paints, areas, greedy)) == [0, 1]


@pytest.mark.parametrize("mesh", [cube(), uv_sphere()], ids=["cube", "sphere"])
def test_six_automatic_cameras_cover_the_outside_visible_area(mesh: Mesh) -> None:
    surf = surface(mesh, 128)
    occluders = mesh.corners()
    (visible,) = placement.outside_visible([surf], occluders)
    placed = placement.auto_cameras([surf], occluders, 6, 320, 240, lens_mm=50,
                                    visible=[visible])
    assert len(placed) == 6
    seen = np.zeros(len(surf.texels), bool)
    for p in placed:
        depth = raster.depth_map(p.camera, occluders)
        seen |= blend.view_weights(surf, p.camera, depth).weights > blend.PAINTED
    covered = placement.coverage(surf, seen, visible)
    assert covered >= 0.99
    assert sum(p.added_coverage for p in placed) == pytest.approx(covered, abs=0.002)
    assert placed[0].added_coverage > 0.15  # a cube face or more
    # Every camera frames the object: its centre projects into the middle of the image.
    for p in placed:
        xy, _ = p.camera.project(np.zeros((1, 3)))
        assert xy[0] == pytest.approx([160, 120])


# ---------------------------------------------------------------- sequential mode


def test_transparent_pixels_of_a_result_paint_nothing() -> None:
    """ObjectProjection.add weighs each sample by the result's alpha."""
    mesh = cube()
    camera = Camera.look_at((0.5, -6, 1), (0, 0, 0), 64, 64)
    shown = projection.shown(camera, mesh.corners())
    picture = np.ones((64, 64, 4))
    picture[:, :32, 3] = 0.0  # the left half transparent
    target = projection.ObjectProjection(mesh, 64, 0)
    target.add(picture, camera, shown, only_new=False)
    seen = blend.view_weights(target.surface, camera, shown.depth)
    left = (seen.weights > 0) & (seen.xy[:, 0] < 31)
    right = (seen.weights > 0) & (seen.xy[:, 0] > 33)
    assert left.sum() > 100 and right.sum() > 100
    assert target.accumulator.total[left].max() == 0.0
    assert (target.accumulator.total[right] > 0).all()


def test_the_uncovered_mask_is_zero_where_earlier_views_painted() -> None:
    mesh = uv_sphere()
    surf = surface(mesh, 128)
    first = Camera.look_at((0, -6, 0), (0, 0, 0), VIEW, VIEW, lens_mm=35)
    second = Camera.look_at((6, 0, 0), (0, 0, 0), VIEW, VIEW, lens_mm=35)
    depth = raster.depth_map(second, mesh.corners())
    before = blend.uncovered_mask(surf, second, depth, np.zeros(len(surf.texels), bool))
    assert (before[np.isinf(depth)] == 0).all()  # background
    assert before[np.isfinite(depth)].mean() > 0.97  # the whole sphere, nothing painted yet
    acc = bake(surf, [first], [(mesh, pattern(128))], mesh.corners())
    mask = blend.uncovered_mask(surf, second, depth, acc.painted)
    # Per pixel, the texel under it (found by the test's own renderer) and whether painted.
    _, uv = render(second, [(mesh, pattern(128))])
    hit = np.isfinite(uv[..., 0])
    col = np.clip((uv[hit, 0] * 128).astype(int), 0, 127)
    row = np.clip(((1 - uv[hit, 1]) * 128).astype(int), 0, 127)
    painted = np.zeros(128 * 128, bool)
    painted[surf.texels] = acc.painted
    under = painted.reshape(128, 128)[row, col]
    assert (mask[hit][under] == 0).mean() > 0.99  # painted: not uncovered
    assert (mask[hit][~under] == 1).mean() > 0.95  # not painted: uncovered
    assert 0.3 < mask[hit].mean() < 0.85  # part of what the second camera sees is new
    assert (mask[~hit] == 0).all()
