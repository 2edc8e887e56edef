"""Projecting generated views onto objects' UV textures (issue 21), in two halves. The numpy
modules here are the host-free engine and import no bpy: geometry (meshes and cameras as
arrays), raster (UV and screen-space rasterising, depth maps), surface (an object's texels in
the world), blend (per-view weights, blending, unseen-texel filling, the Uncovered mask) and
placement (evenly spread directions, outside-visible area, automatic cameras, coverage). The
bpy glue lives beside them, written by another engineer: scene.py, bake.py, views.py and
operator.py read Blender's data into these arrays and write the results back.
"""
