"""The model-free ComfyUI nodes the test server executes for real, with Pillow.

IMAGE values are lists of RGB images (a batch), MASK values lists of "L" images, as ComfyUI's
tensors would be. Schemas follow /object_info's shape.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

INT_MAX = 16384


@dataclass
class NodeClass:
    required: dict[str, list[Any]]
    outputs: tuple[str, ...] = ()
    output_node: bool = False
    category: str = "image"
    optional: dict[str, list[Any]] = field(default_factory=dict)

    def schema(self, name: str) -> dict[str, Any]:
        return {
            "input": {"required": self.required, "optional": self.optional, "hidden": {}},
            "input_order": {"required": list(self.required)},
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.outputs),
            "name": name,
            "display_name": name,
            "description": "",
            "python_module": "nodes",
            "category": self.category,
            "output_node": self.output_node,
        }


def int_spec(default: int, lo: int, hi: int) -> list[Any]:
    return ["INT", {"default": default, "min": lo, "max": hi}]


NODES: dict[str, NodeClass] = {
    "LoadImage": NodeClass({"image": [[], {"image_upload": True}]}, ("IMAGE", "MASK")),
    "ImageInvert": NodeClass({"image": ["IMAGE"]}, ("IMAGE",)),
    "ImageScale": NodeClass(
        {
            "image": ["IMAGE"],
            "upscale_method": [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]],
            "width": int_spec(512, 0, INT_MAX),
            "height": int_spec(512, 0, INT_MAX),
            "crop": [["disabled", "center"]],
        },
        ("IMAGE",),
    ),
    "ImageBlur": NodeClass(
        {
            "image": ["IMAGE"],
            "blur_radius": int_spec(1, 1, 31),
            "sigma": ["FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0}],
        },
        ("IMAGE",),
    ),
    "EmptyImage": NodeClass(
        {
            "width": int_spec(512, 1, INT_MAX),
            "height": int_spec(512, 1, INT_MAX),
            "batch_size": int_spec(1, 1, 4096),
            "color": int_spec(0, 0, 0xFFFFFF),
        },
        ("IMAGE",),
    ),
    "ImageToMask": NodeClass(
        {"image": ["IMAGE"], "channel": [["red", "green", "blue", "alpha"]]},
        ("MASK",),
        category="mask",
    ),
    "MaskToImage": NodeClass({"mask": ["MASK"]}, ("IMAGE",), category="mask"),
    "SaveImage": NodeClass(
        {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
        output_node=True,
    ),
    "PreviewImage": NodeClass({"images": ["IMAGE"]}, output_node=True),
}

_SCALE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class Folders:
    """The server's input, output and temp folders."""

    def __init__(self, root: Path) -> None:
        self.input = root / "input"
        self.output = root / "output"
        self.temp = root / "temp"
        for folder in (self.input, self.output, self.temp):
            folder.mkdir(parents=True, exist_ok=True)

    def by_type(self, kind: str) -> Path | None:
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(kind)


def execute(
    class_type: str, inputs: dict[str, Any], folders: Folders
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Run one node: its outputs, and its UI output (what `executed` and history report)."""
    run = globals()[f"_{class_type}"]
    return run(folders, **inputs)


def _LoadImage(folders: Folders, image: str, **_: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    with Image.open(folders.input / image) as img:
        rgba = img.convert("RGBA")
    mask = ImageOps.invert(rgba.getchannel("A"))
    return ([rgba.convert("RGB")], [mask]), {}


def _ImageInvert(
    folders: Folders, image: list[Image.Image]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return ([ImageOps.invert(i) for i in image],), {}


def _ImageScale(
    folders: Folders,
    image: list[Image.Image],
    upscale_method: str,
    width: int,
    height: int,
    crop: str,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    def scale(img: Image.Image) -> Image.Image:
        w = width or round(img.width * height / img.height)
        h = height or round(img.height * width / img.width)
        if crop == "center":
            return ImageOps.fit(img, (w, h), _SCALE[upscale_method])
        return img.resize((w, h), _SCALE[upscale_method])

    return ([scale(i) for i in image],), {}


def _ImageBlur(
    folders: Folders, image: list[Image.Image], blur_radius: int, sigma: float
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return ([i.filter(ImageFilter.GaussianBlur(min(blur_radius, sigma * 3))) for i in image],), {}


def _EmptyImage(
    folders: Folders, width: int, height: int, batch_size: int, color: int
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    rgb = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
    return ([Image.new("RGB", (width, height), rgb) for _ in range(batch_size)],), {}


def _ImageToMask(
    folders: Folders, image: list[Image.Image], channel: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    index = ["red", "green", "blue", "alpha"].index(channel)
    if index >= len(image[0].getbands()):
        # What torch says when ComfyUI indexes the missing alpha channel of an RGB image.
        raise IndexError(f"index {index} is out of bounds for dimension 0 with size 3")
    return ([i.getchannel(index) for i in image],), {}


def _MaskToImage(
    folders: Folders, mask: list[Image.Image]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return ([m.convert("RGB") for m in mask],), {}


def _SaveImage(
    folders: Folders, images: list[Image.Image], filename_prefix: str = "ComfyUI"
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (), {"images": save_all(images, folders.output, filename_prefix, "output")}


def _PreviewImage(
    folders: Folders, images: list[Image.Image]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    prefix = "ComfyUI_temp_" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=5))
    return (), {"images": save_all(images, folders.temp, prefix, "temp")}


def save_all(
    images: list[Image.Image], folder: Path, prefix: str, kind: str
) -> list[dict[str, str]]:
    """Save like ComfyUI: `<prefix>_00001_.png`, the counter past any existing file."""
    subfolder, _, stem = prefix.replace("\\", "/").rpartition("/")
    target = folder / subfolder
    target.mkdir(parents=True, exist_ok=True)
    counter = 1 + sum(1 for p in target.glob(f"{stem}_*_.png"))
    saved = []
    for image in images:
        name = f"{stem}_{counter:05}_.png"
        image.save(target / name, compress_level=1)
        saved.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return saved
