"""ImageAddNoise as the test server runs it: seeded noise blended into the image, so the same
seed gives the same pixels and another seed others (what "Run again" must reproduce).

The noise is the test server's own (ComfyUI's uses torch's generator): only determinism per
seed and the blend by `strength` follow the real node."""

from __future__ import annotations

import random
from typing import Any

from PIL import Image

from tests.servers.comfy_nodes import SCHEMAS, NodeDef, NodeResult


def image_add_noise(ctx: Any, image: list[Image.Image], seed: int,
                    strength: float) -> NodeResult:
    out = []
    for item in image:
        rng = random.Random(int(seed))
        noise = Image.frombytes("RGB", item.size, rng.randbytes(item.width * item.height * 3))
        out.append(Image.blend(item.convert("RGB"), noise, float(strength)))
    return NodeResult((out,))


NOISE_NODES = {"ImageAddNoise": NodeDef(image_add_noise, SCHEMAS["ImageAddNoise"])}
