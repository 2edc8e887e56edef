"""Per-scene settings: the workflow, its input values, the image source. Never secrets.

The workflow's inputs are copied into a CollectionProperty so they are saved with the
.blend file and edited with ordinary Blender fields.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import pump
from .core import core

SOURCES = [
    ("RENDER_RESULT", "Render Result", "The last render (F12)"),
    ("RENDER", "Fresh Render", "Render the scene now, then send it"),
    ("VIEWPORT", "Viewport", "A viewport render of the 3D View"),
    ("IMAGE", "Image", "An existing image"),
]


class ComfyRelayInput(bpy.types.PropertyGroup):
    """One bindable workflow input; `name` is the key "node.input" the core understands."""

    label: bpy.props.StringProperty()  # type: ignore[valid-type]
    kind: bpy.props.StringProperty()  # type: ignore[valid-type]  # image, prompt, seed, ...
    # INT, FLOAT, STRING, BOOL, or BIGINT: an int beyond Blender's 32 bits, kept as text
    value_type: bpy.props.StringProperty()  # type: ignore[valid-type]
    int_value: bpy.props.IntProperty(name="Value")  # type: ignore[valid-type]
    float_value: bpy.props.FloatProperty(name="Value")  # type: ignore[valid-type]
    string_value: bpy.props.StringProperty(name="Value")  # type: ignore[valid-type]
    bool_value: bpy.props.BoolProperty(name="Value")  # type: ignore[valid-type]
    # For image inputs: this loader receives the source image.
    receives_source: bpy.props.BoolProperty(name="Receives the source image")  # type: ignore[valid-type]

    @property
    def value(self) -> Any:
        if self.value_type == "BIGINT":
            try:
                return int(self.string_value)
            except ValueError:
                return self.string_value  # the server's validation names the bad input
        return getattr(self, f"{self.value_type.lower()}_value")


def _workflow_changed(settings: ComfyRelaySettings, context: bpy.types.Context) -> None:
    settings.load_inputs()


class ComfyRelaySettings(bpy.types.PropertyGroup):
    workflow_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Workflow",
        description="A ComfyUI workflow: API or UI format (.json), or an image saved by ComfyUI",
        subtype="FILE_PATH",
        update=_workflow_changed,
    )
    workflow_error: bpy.props.StringProperty()  # type: ignore[valid-type]
    loaded_path: bpy.props.StringProperty()  # type: ignore[valid-type]  # inputs listed from
    inputs: bpy.props.CollectionProperty(type=ComfyRelayInput)  # type: ignore[valid-type]
    random_seed: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Random Seed", description="A new seed for every run", default=False
    )
    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Source", items=SOURCES, default="RENDER_RESULT"
    )
    source_image: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Image", type=bpy.types.Image
    )
    animation: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Frame Range",
        description="Render every frame of the scene's range and send each through the workflow",
    )
    use_material: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Set as Texture",
        description="Use the result as Base Color of the active object's material",
    )

    def workflow_file(self) -> str:
        return bpy.path.abspath(self.workflow_path)

    def load_inputs(self) -> core.Workflow | None:
        """Read the workflow and list its inputs. A UI-format file or a ComfyUI image is
        converted by the session first: its inputs are listed when it is (show())."""
        if not self.workflow_path:
            self.show(None)
            return None
        try:
            pump.configure()  # the back end whose server converts
            workflow = pump.SESSION.open_workflow(self.workflow_file())
        except (core.ComfyRelayError, ValueError) as exc:
            self.show(None, str(exc))
            return None
        if workflow is not None:
            self.show(workflow)
        elif bpy.app.background:  # scripts: return with the inputs listed
            pump.drive(60, until=lambda: not pump.SESSION.converting)
        else:
            pump.wake()
        return workflow

    def show(self, workflow: core.Workflow | None, error: str = "") -> None:
        """List the workflow's inputs; a reload keeps the values already set."""
        same_file = self.loaded_path == self.workflow_path
        old = {item.name: item.value for item in self.inputs} if same_file else {}
        self.inputs.clear()
        self.loaded_path = self.workflow_path
        self.workflow_error = error
        if workflow is None:
            return
        first_image = True
        for wf_input in workflow.inputs():
            item = self.inputs.add()
            item.name = wf_input.key
            item.label = f"{wf_input.node_title} › {wf_input.name}"
            item.kind = wf_input.kind
            item.value_type = value_type(wf_input.value)
            if wf_input.kind in ("image", "video"):
                item.receives_source = first_image
                first_image = False
            set_value(item, old.get(item.name, wf_input.value))

    def bindings(self) -> core.Bindings:
        """The core's Bindings for the current fields."""
        image_node = next((i.name.split(".")[0] for i in self.inputs if i.receives_source), None)
        has_seed = any(i.kind == "seed" for i in self.inputs)
        values = {
            i.name: i.value
            for i in self.inputs
            if i.kind not in ("image", "video") and not (i.kind == "seed" and self.random_seed)
        }
        return core.Bindings(
            image_node=image_node, random_seed=self.random_seed and has_seed, values=values
        )


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT" if -(2**31) <= value < 2**31 else "BIGINT"
    if isinstance(value, float):
        return "FLOAT"
    return "STRING"


def set_value(item: ComfyRelayInput, value: Any) -> None:
    """Store a workflow value in the field of its type; a value that no longer fits is skipped."""
    try:
        if item.value_type == "INT":
            item.int_value = int(value)
        elif item.value_type == "FLOAT":
            item.float_value = float(value)
        elif item.value_type == "BOOL":
            item.bool_value = bool(value)
        else:
            item.string_value = str(value)
    except (TypeError, ValueError, OverflowError):
        pass


def settings(scene: bpy.types.Scene) -> ComfyRelaySettings:
    return scene.comfyrelay  # type: ignore[attr-defined]


CLASSES = (ComfyRelayInput, ComfyRelaySettings)


def register() -> None:
    bpy.types.Scene.comfyrelay = bpy.props.PointerProperty(  # type: ignore[attr-defined]
        type=ComfyRelaySettings
    )


def unregister() -> None:
    del bpy.types.Scene.comfyrelay  # type: ignore[attr-defined]
