"""The model-free ComfyUI nodes the test server executes for real, with Pillow.

IMAGE values are lists of RGB images (a batch) and MASK values lists of "L" images, as
ComfyUI's tensors would be. Schemas are the real 0.3.64 `/object_info` answers
(comfy_schemas.json), so validation errors quote the same `input_config`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps, ImageSequence

SCHEMAS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).with_name("comfy_schemas.json")).read_text()
)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")


class Folders:
    """The server's input, output and temp folders (absolute, as ComfyUI keeps them)."""

    def __init__(self, root: Path) -> None:
        root = Path(os.path.abspath(root))
        self.input, self.output, self.temp = root / "input", root / "output", root / "temp"
        for folder in (self.input, self.output, self.temp):
            folder.mkdir(parents=True, exist_ok=True)

    def by_type(self, kind: str | None) -> Path | None:
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(kind or "")

    def annotated(self, name: str) -> tuple[str, Path | None]:
        """`name [output]` style names, as folder_paths.annotated_filepath reads them."""
        for kind in ("output", "input", "temp"):
            if name.endswith(f"[{kind}]"):
                return name[: -len(kind) - 3], self.by_type(kind)
        return name, None

    def input_files(self) -> list[str]:
        """What LoadImage offers: the image files directly in the input folder."""
        return sorted(p.name for p in self.input.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


@dataclass
class NodeResult:
    outputs: tuple[Any, ...] = ()
    ui: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # progress text, sent as binary event 3 (GetImageSize does)


@dataclass
class Ctx:
    folders: Folders
    node_id: str
    float32_pixels: bool = False  # reproduce ComfyUI's float32 rounding where it shows


@dataclass(frozen=True)
class NodeDef:
    run: Callable[..., NodeResult]
    schema: dict[str, Any]
    # ComfyUI's VALIDATE_INPUTS and IS_CHANGED hooks (LoadImage's, LoadVideo's), both given
    # the input `validated` names (its combo check is then skipped, as in ComfyUI).
    validate: Callable[[Folders, Any], bool | str] | None = None
    is_changed: Callable[[Folders, Any], str] | None = None
    validated: str = "image"

    @property
    def output_node(self) -> bool:
        return bool(self.schema["output_node"])

    @property
    def return_types(self) -> list[str]:
        return list(self.schema["output"])

    def inputs(self, category: str) -> dict[str, list[Any]]:
        return dict(self.schema["input"].get(category, {}))


# ---- node implementations ----


def load_image(ctx: Ctx, image: str) -> NodeResult:
    """ComfyUI 0.3.64's LoadImage: every frame of the file (an animated PNG, WebP or GIF)
    is an image of the batch, frames of another size than the first left out; an MPO's
    frames are not a batch (only its first counts)."""
    name, folder = ctx.folders.annotated(image)
    images: list[Image.Image] = []
    masks: list[Image.Image] = []
    with Image.open((folder or ctx.folders.input) / name) as img:
        for frame in ImageSequence.Iterator(img):
            rgba = frame.convert("RGBA")
            if images and rgba.size != images[0].size:
                continue
            images.append(rgba.convert("RGB"))
            masks.append(ImageOps.invert(rgba.getchannel("A")))  # ComfyUI's mask: 1 - alpha
        if img.format == "MPO":
            images, masks = images[:1], masks[:1]
    return NodeResult((images, masks))


def load_image_valid(folders: Folders, image: Any) -> bool | str:
    name, folder = folders.annotated(image)  # a non-string raises, as in the real node
    if not ((folder or folders.input) / name).is_file():
        return f"Invalid image file: {image}"
    return True


def load_image_changed(folders: Folders, image: Any) -> str:
    """Its file's hash: re-uploading different bytes under one name re-runs the graph."""
    try:
        name, folder = folders.annotated(image)
        return hashlib.sha256(((folder or folders.input) / name).read_bytes()).hexdigest()
    except (OSError, AttributeError, TypeError):
        return "missing"


def _f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


# ComfyUI works in float32: LoadImage gives v/255, ImageInvert 1 - x, SaveImage truncates
# 255 * x to uint8. So 159 of the 256 values come out as 254 - v, not 255 - v (85 -> 169).
INVERT_LUT = [int(_f32(255.0 * _f32(1.0 - _f32(v / 255.0)))) for v in range(256)]


def load_image_mask(ctx: Ctx, image: str, channel: str) -> NodeResult:
    """ComfyUI 0.3.64's LoadImageMask: the file as RGBA, then the channel asked for as it
    is, except alpha, which is inverted (1 - alpha)."""
    name, folder = ctx.folders.annotated(image)
    with Image.open((folder or ctx.folders.input) / name) as img:
        rgba = img.convert("RGBA")
    band = rgba.getchannel("RGBA"["rgba".index(channel[0])])
    return NodeResult(([ImageOps.invert(band) if channel == "alpha" else band],))


def image_composite_masked(ctx: Ctx, destination: list[Image.Image], source: list[Image.Image],
                           x: int, y: int, resize_source: bool,
                           mask: list[Image.Image] | None = None) -> NodeResult:
    """ComfyUI 0.3.64's ImageCompositeMasked (comfy_extras/nodes_mask.py composite):
    destination × (1 − mask) + source × mask, the source placed at x, y; the mask scaled to
    the source. Offsets the test needs are 0; sizes must then agree, as they must there."""
    out = []
    for i, dest in enumerate(destination):
        src = source[min(i, len(source) - 1)]
        if resize_source:
            src = src.resize(dest.size, Image.Resampling.BILINEAR)
        alpha = Image.new("L", src.size, 255) if mask is None else mask[min(i, len(mask) - 1)]
        if alpha.size != src.size:
            alpha = alpha.resize(src.size, Image.Resampling.BILINEAR)
        placed = dest.copy()
        placed.paste(src, (x, y), alpha)
        out.append(placed)
    return NodeResult((out,))


def image_invert(ctx: Ctx, image: list[Image.Image]) -> NodeResult:
    if not ctx.float32_pixels:
        return NodeResult(([ImageOps.invert(i) for i in image],))
    return NodeResult(([i.point(INVERT_LUT * len(i.getbands())) for i in image],))


_SCALE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def _scale(img: Image.Image, method: str, width: int, height: int, crop: str) -> Image.Image:
    if width == 0 and height == 0:
        return img
    width = width or max(1, round(img.width * height / img.height))
    height = height or max(1, round(img.height * width / img.width))
    if crop == "center":
        return ImageOps.fit(img, (width, height), _SCALE[method])
    return img.resize((width, height), _SCALE[method])


def image_scale(
    ctx: Ctx, image: list[Image.Image], upscale_method: str, width: int, height: int, crop: str
) -> NodeResult:
    return NodeResult(([_scale(i, upscale_method, width, height, crop) for i in image],))


def image_scale_by(
    ctx: Ctx, image: list[Image.Image], upscale_method: str, scale_by: float
) -> NodeResult:
    return NodeResult(
        (
            [
                _scale(i, upscale_method, round(i.width * scale_by), round(i.height * scale_by), "")
                for i in image
            ],
        )
    )


def image_blur(ctx: Ctx, image: list[Image.Image], blur_radius: int, sigma: float) -> NodeResult:
    radius = min(float(blur_radius), sigma * 3)
    return NodeResult(([i.filter(ImageFilter.GaussianBlur(radius)) for i in image],))


def empty_image(ctx: Ctx, width: int, height: int, batch_size: int, color: int) -> NodeResult:
    rgb = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
    return NodeResult(([Image.new("RGB", (width, height), rgb) for _ in range(batch_size)],))


def image_to_mask(ctx: Ctx, image: list[Image.Image], channel: str) -> NodeResult:
    index = ["red", "green", "blue", "alpha"].index(channel)
    if index >= len(image[0].getbands()):
        # What torch says when ComfyUI indexes the missing alpha channel of an RGB image.
        raise IndexError(f"index {index} is out of bounds for dimension 3 with size 3")
    return NodeResult(([i.getchannel(index) for i in image],))


def mask_to_image(ctx: Ctx, mask: list[Image.Image]) -> NodeResult:
    return NodeResult(([m.convert("RGB") for m in mask],))


def get_image_size(ctx: Ctx, image: list[Image.Image]) -> NodeResult:
    width, height, batch = image[0].width, image[0].height, len(image)
    text = f"width: {width}, height: {height}\n batch size: {batch}"
    return NodeResult((width, height, batch), text=text)


def preview_any(ctx: Ctx, source: Any = None) -> NodeResult:
    if isinstance(source, str):
        value = source
    elif isinstance(source, int | float | bool):
        value = str(source)
    elif source is None:
        value = "None"
    else:
        try:
            value = json.dumps(source)
        except (TypeError, ValueError):
            value = str(source)
    return NodeResult(ui={"text": [value]})


def primitive_string(ctx: Ctx, value: str) -> NodeResult:
    return NodeResult((value,))


def save_image(ctx: Ctx, images: list[Image.Image], filename_prefix: str = "ComfyUI") -> NodeResult:
    return NodeResult(
        ui={"images": save_all(images, ctx.folders.output, filename_prefix, "output")}
    )


def preview_image(ctx: Ctx, images: list[Image.Image]) -> NodeResult:
    prefix = "ComfyUI_temp_" + "".join(random.choices("abcdefghijklmnopqrstupvxyz", k=5))
    return NodeResult(ui={"images": save_all(images, ctx.folders.temp, prefix, "temp")})


def save_test_files(
    ctx: Ctx, images: list[Image.Image], filename_prefix: str = "files"
) -> NodeResult:
    """Test-only: one PNG, one GIF and one WAV, reported under `images`, `gifs` and `audio`
    (the shapes Video Helper Suite and the audio savers use)."""
    folder, stem, counter, subfolder = save_path(ctx.folders.output, filename_prefix)
    pngs = save_all(images[:1], ctx.folders.output, filename_prefix, "output")
    gif = f"{stem}_{counter:05}_.gif"
    images[0].save(folder / gif, save_all=True, append_images=images[1:])
    wav = f"{stem}_{counter:05}_.wav"
    with wave.open(str(folder / wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 800)
    ref = {"subfolder": subfolder, "type": "output"}
    return NodeResult(
        ui={
            "images": pngs,
            "gifs": [{"filename": gif, **ref, "format": "image/gif", "frame_rate": 8.0}],
            "audio": [{"filename": wav, **ref}],
        }
    )


def save_path(output: Path, prefix: str) -> tuple[Path, str, int, str]:
    """folder_paths.get_save_image_path: the counter is one past the highest existing one."""
    subfolder = os.path.dirname(os.path.normpath(prefix))
    stem = os.path.basename(os.path.normpath(prefix))
    folder = Path(os.path.abspath(output / subfolder))
    if os.path.commonpath((str(output), str(folder))) != str(output):
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {folder}\n         output_dir: {output}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    counters = [0]
    for name in os.listdir(folder):
        head, digits = name[: len(stem) + 1], name[len(stem) + 1 :].split("_")[0]
        if head[:-1] == stem and head[-1:] == "_" and digits.isdigit():
            counters.append(int(digits))
    return folder, stem, max(counters) + 1, subfolder


def save_all(
    images: list[Image.Image], output: Path, prefix: str, kind: str
) -> list[dict[str, str]]:
    folder, stem, counter, subfolder = save_path(output, prefix)
    saved = []
    for offset, image in enumerate(images):
        name = f"{stem}_{counter + offset:05}_.png"
        image.save(folder / name, compress_level=1)
        saved.append({"filename": name, "subfolder": subfolder, "type": kind})
    return saved


_TEST_SAVE_FILES_SCHEMA: dict[str, Any] = {
    "input": {
        "required": {
            "images": ["IMAGE", {}],
            "filename_prefix": ["STRING", {"default": "files"}],
        }
    },
    "input_order": {"required": ["images", "filename_prefix"]},
    "output": [],
    "output_is_list": [],
    "output_name": [],
    "name": "TestSaveFiles",
    "display_name": "Test Save Files",
    "description": "Test-only: saves a PNG, a GIF and a WAV.",
    "python_module": "tests.servers.comfy_nodes",
    "category": "testing",
    "output_node": True,
}

NODES: dict[str, NodeDef] = {
    "LoadImage": NodeDef(load_image, SCHEMAS["LoadImage"], load_image_valid, load_image_changed),
    "LoadImageMask": NodeDef(load_image_mask, SCHEMAS["LoadImageMask"], load_image_valid,
                             load_image_changed),
    "ImageCompositeMasked": NodeDef(image_composite_masked, SCHEMAS["ImageCompositeMasked"]),
    "ImageInvert": NodeDef(image_invert, SCHEMAS["ImageInvert"]),
    "ImageScale": NodeDef(image_scale, SCHEMAS["ImageScale"]),
    "ImageScaleBy": NodeDef(image_scale_by, SCHEMAS["ImageScaleBy"]),
    "ImageBlur": NodeDef(image_blur, SCHEMAS["ImageBlur"]),
    "EmptyImage": NodeDef(empty_image, SCHEMAS["EmptyImage"]),
    "ImageToMask": NodeDef(image_to_mask, SCHEMAS["ImageToMask"]),
    "MaskToImage": NodeDef(mask_to_image, SCHEMAS["MaskToImage"]),
    "GetImageSize": NodeDef(get_image_size, SCHEMAS["GetImageSize"]),
    "PreviewAny": NodeDef(preview_any, SCHEMAS["PreviewAny"]),
    "PrimitiveString": NodeDef(primitive_string, SCHEMAS["PrimitiveString"]),
    "SaveImage": NodeDef(save_image, SCHEMAS["SaveImage"]),
    "PreviewImage": NodeDef(preview_image, SCHEMAS["PreviewImage"]),
    "TestSaveFiles": NodeDef(save_test_files, _TEST_SAVE_FILES_SCHEMA),
}


def _media_nodes() -> dict[str, NodeDef]:
    # Imported last: the video and animation nodes are built from the pieces above.
    from tests.servers.comfy_media import MEDIA_NODES

    return MEDIA_NODES


NODES.update(_media_nodes())


def _noise_nodes() -> dict[str, NodeDef]:
    from tests.servers.comfy_noise import NOISE_NODES

    return NOISE_NODES


NODES.update(_noise_nodes())
# Nodes the server describes (the real server's definitions) but cannot run without model
# weights: /object_info lists them, so hosts can show their fields (samplers, ...).
DESCRIBED_ONLY = {name: schema for name, schema in SCHEMAS.items() if name not in NODES}
