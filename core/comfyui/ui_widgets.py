"""The widgets ComfyUI's frontend (1.58) gives a node, and how their saved values map onto them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..jobs.workflow import SEED_NAMES
from .nodes import InputDef, NodeDef

UNDEFINED: Any = type("Undefined", (), {"__repr__": lambda self: "undefined"})()
"""JavaScript's `undefined`: a widget holding it sends no value (JSON.stringify drops it)."""

# Input types the frontend draws with a widget: its core constructors and the ones its own
# extensions register (audio, webcam, 3D).
WIDGET_TYPES = {
    "INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "FILEUPLOAD",
    "COLOR", "IMAGECOMPARE", "TREESELECT", "MULTISELECT", "CHART", "GALLERIA", "SELECTBUTTON",
    "TEXTAREA", "WEBCAM", "AUDIO_UI", "AUDIOUPLOAD", "AUDIO_RECORD", "LOAD_3D",
    "LOAD_3D_ANIMATION", "PREVIEW_3D", "PREVIEW_3D_ANIMATION",
}  # fmt: skip
# Widgets that are DOM elements without a value of their own: they always read "".
EMPTY_DOM = {"AUDIO_UI", "PREVIEW_3D", "PREVIEW_3D_ANIMATION", "LOAD_3D", "LOAD_3D_ANIMATION"}
AUDIO_UI_NODES = {"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"}
PREVIEW_3D_NODES = {"Preview3D": "PREVIEW_3D", "SaveGLB": "PREVIEW_3D"}
PREVIEW_3D_NODES["Preview3DAnimation"] = "PREVIEW_3D_ANIMATION"


@dataclass
class Widget:
    """One frontend widget: its value and whether it is sent and saved."""

    name: str
    value: Any = UNDEFINED
    in_prompt: bool = True  # False: a control, button or toggle the prompt leaves out
    saved: bool = True  # False: takes no place in widgets_values (audio player, previews)
    kind: str = "plain"  # plain, text (a textarea: keeps strings), empty (always "") or upload
    dynamic_prompts: bool = False
    folder: str = "input"  # upload: the folder annotation added to names from elsewhere
    batch: bool = False  # upload: a list of files stays a list
    initial: str = ""  # upload: what an empty value reads as

    def set(self, value: Any) -> None:
        if self.kind == "empty":
            return
        if self.kind == "text":
            value = "" if value is None else js_str(value)
        self.value = value

    def get(self) -> Any:
        if self.kind == "empty":
            return ""
        if self.kind == "upload":
            return self._upload_value()
        return self.value

    def promoted(self, name: str) -> Widget:
        """The plain copy a subgraph node shows for an inner widget (it keeps the value)."""
        return replace(self, name=name, value=self.get(), kind="plain")

    def _upload_value(self) -> Any:
        value = self.value
        if not truthy(value):
            return self.initial
        if isinstance(value, list):
            names = [annotated(v, self.folder) for v in value]
            return names if self.batch else names[0] if names else self.initial
        return annotated(value, self.folder)


def frontend_inputs(node: NodeDef) -> list[InputDef]:
    """The node's inputs as the frontend lays them out, with what its extensions add
    (upload buttons, the audio player, the 3D preview)."""
    specs = list(node.visible_inputs)
    added: list[InputDef] = []
    first_upload = next(
        (s for s in specs if s.section == "required" and s.type == "COMBO"
         and s.upload in ("image", "video", "animated_image")),
        None,
    )  # fmt: skip
    if first_upload:
        added.append(added_input("upload", "IMAGEUPLOAD", first_upload.options,
                                 image_input=first_upload.name))  # fmt: skip
    if node.name in AUDIO_UI_NODES:
        added.append(added_input("audioUI", "AUDIO_UI"))
    audio = node.input("audio")
    if audio and audio.section == "required" and audio.options.get("audio_upload") is True:
        added.append(added_input("upload", "AUDIOUPLOAD"))
    if node.name in PREVIEW_3D_NODES:
        added.append(added_input("image", PREVIEW_3D_NODES[node.name]))
    for extra in added:  # a name the node already has keeps its place, with the new kind
        specs = [extra if s.name == extra.name and s.section == "required" else s for s in specs]
    fresh = [a for a in added if a not in specs]
    if node.has_input_order:  # unlisted in input_order: they go after everything
        return specs + fresh
    required = [s for s in specs if s.section == "required"]
    return required + fresh + [s for s in specs if s.section != "required"]


def added_input(
    name: str, kind: str, options: dict[str, Any] | None = None, image_input: str = ""
) -> InputDef:
    opts = {**(options or {}), "imageInputName": image_input} if image_input else {}
    return InputDef(name=name, type=kind, section="required", options=opts)


def is_widget(spec: InputDef) -> bool:
    return (spec.widget_type or spec.type) in WIDGET_TYPES and not spec.force_input


def make_widgets(node: NodeDef, specs: list[InputDef]) -> list[Widget]:
    """The widgets the frontend creates for a node, in order, with their default values."""
    widgets: list[Widget] = []
    for spec in specs:
        if is_widget(spec):
            widgets.extend(widgets_for(spec, widgets))
    return widgets


def widgets_for(spec: InputDef, existing: list[Widget]) -> list[Widget]:
    kind = spec.widget_type or spec.type
    default = spec.default
    if kind == "INT":
        main = Widget(spec.name, 0 if default is None else default)
        return [main, control()] if spec.has_control else [main]
    if kind == "FLOAT":
        return [Widget(spec.name, 0 if default is None else default)]
    if kind == "BOOLEAN":
        return [Widget(spec.name, False if default is None else default)]
    if kind in ("STRING", "MARKDOWN", "TEXTAREA"):
        text = "" if default is None else default
        multiline = kind == "TEXTAREA" or spec.multiline
        dynamic = isinstance(spec.options.get("dynamicPrompts"), bool) and spec.dynamic_prompts
        return [Widget(spec.name, text, kind="text" if multiline else "plain",
                       dynamic_prompts=dynamic)]  # fmt: skip
    if kind == "COMBO":
        return combo_widgets(spec)
    if kind == "IMAGEUPLOAD":
        make_upload_combo(spec, existing)
        return [Widget(spec.name, "image", in_prompt=False)]
    if kind == "AUDIOUPLOAD":
        return [Widget(spec.name, "", in_prompt=False)]
    if kind == "AUDIO_UI":  # the audio player: 1.58 neither saves nor sends it (1.27 sent "")
        return [Widget(spec.name, "", saved=False, in_prompt=False, kind="empty")]
    if kind in EMPTY_DOM:
        return [Widget(spec.name, "", kind="empty")]
    return [Widget(spec.name, UNDEFINED if default is None else default)]


def combo_widgets(spec: InputDef) -> list[Widget]:
    if spec.multi_select:
        return [Widget(spec.name, [])]
    default = spec.default
    if not truthy(default):
        default = spec.choices[0] if spec.choices else "Loading..." if spec.remote else UNDEFINED
    widgets = [Widget(spec.name, default)]
    if spec.remote:  # an auto-refresh toggle always; a refresh button the prompt does send
        widgets.append(Widget("Auto-refresh after generation", False, in_prompt=False))
        if spec.remote.get("refresh_button"):
            widgets.append(Widget("refresh", "refresh"))
    if spec.control_after_generate:  # the control, then its filter list
        widgets += [control(), Widget("control_filter_list", "", in_prompt=False)]
    return widgets


def control() -> Widget:
    return Widget("control_after_generate", "randomize", in_prompt=False)


def make_upload_combo(spec: InputDef, existing: list[Widget]) -> None:
    """An upload button turns its file list into one that reads back annotated names."""
    name = spec.options.get("imageInputName")
    combo = next((w for w in existing if w.name == name), None)
    if combo is None:
        return
    combo.kind = "upload"
    combo.folder = str(spec.options.get("image_folder") or "input")
    combo.batch = bool(spec.options.get("allow_batch"))
    combo.initial = js_str(combo.value)


def apply_widgets_values(
    node: NodeDef, widgets: list[Widget], values: Any, specs: list[InputDef]
) -> None:
    """Set the saved values, in order, on the widgets that keep one."""
    if not isinstance(values, list):
        return  # some custom nodes save a dict: the frontend sets nothing from it
    values = migrate_values(node, widgets, values)
    saved = [w for w in widgets if w.saved]
    for widget, value in zip(saved, values, strict=False):
        widget.set(value)


def migrate_values(node: NodeDef, widgets: list[Widget], values: list[Any]) -> list[Any]:
    """Drop the values old frontends saved for link-only (forceInput) inputs, exactly when
    the count says they are there, pairing values with inputs one to one as the frontend does."""
    names = {w.name for w in widgets}
    by_name = {i.name: i for i in node.visible_inputs}
    declared = [by_name[n] for n in node.declared if n in by_name]
    originals = [i for i in declared if i.name in names or i.force_input]
    count = sum(2 if i.control_after_generate or i.name in SEED_NAMES else 1 for i in originals)
    if count != len(values):
        return values
    return [v for i, v in enumerate(values) if i >= len(originals) or not originals[i].force_input]


def truthy(value: Any) -> bool:
    """JavaScript truthiness."""
    if value is UNDEFINED or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0 and value == value  # NaN is falsy
    if isinstance(value, str):
        return value != ""
    return True


def js_str(value: Any) -> str:
    """String(value) as JavaScript writes it."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return ",".join("" if v is None or v is UNDEFINED else js_str(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def annotated(value: Any, folder: str) -> str:
    """A file name as the upload widget reads it: `name [output]` for files outside input/."""
    if isinstance(value, dict):
        name = str(value.get("filename") or "")
        sub = value.get("subfolder")
        path = f"{sub}/{name}" if sub else name
        kind = value.get("type")
        return path + (annotation(str(kind), folder) if kind else "")
    text = js_str(value)
    return text + annotation(text, folder)


def annotation(path: str, folder: str) -> str:
    lowered = path.lower()
    has = any(f"[{k}]" in lowered for k in ("input", "output", "temp"))
    return f" [{folder}]" if not has and folder != "input" else ""
