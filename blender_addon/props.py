"""Per-scene settings: the workflow, its input values, the image source, the run history.
Never secrets.

The workflow's inputs are copied into a CollectionProperty so they are saved with the
.blend file and edited with ordinary Blender fields; each keeps the server's typing of its
input (choices, range, tooltip) as JSON, and the history is JSON in a string property.
"""

from __future__ import annotations

import functools
from typing import Any

import bpy

from . import pump
from .core import core

INT_MAX = 2**31 - 1  # the largest value of a Blender IntProperty
NOT_IN_APP = -1  # the app_order of an input the app does not show
SOURCES = [
    ("RENDER_RESULT", "Render Result", "The last render (F12)"),
    ("RENDER", "Fresh Render", "Render the scene now, then send it"),
    ("VIEWPORT", "Viewport", "A viewport render of the 3D View"),
    ("IMAGE", "Image", "An existing image"),
]
# Every source a loader can get (docs/WIRE.md "Render passes" says what each pass looks like).
MEDIA_SOURCES = [
    *SOURCES,
    ("DEPTH", "Depth", "Depth pass: near white, far black, background black"),
    ("NORMAL", "Normal", "Camera-space normals (NormalBae colours, or OpenGL)"),
    ("MIST", "Mist", "Mist pass, near white (the World's mist range)"),
    ("LINEART", "Line Art", "Freestyle lines, white on black"),
    ("OBJECT_MASK", "Object Mask", "The selected objects' silhouette, white"),
    ("ALPHA", "Alpha", "Coverage from a transparent film, white = something rendered"),
    ("PROJECTED", "Projected So Far", "Texture from Cameras: the objects textured by the "
     "earlier views, seen from this view's camera (black where nothing is painted yet)"),
    ("UNCOVERED", "Uncovered", "Texture from Cameras: white where this view sees what no "
     "earlier view painted (a mask)"),
    ("FRAME_RANGE", "Frame Range", "Every frame of the scene's range (one video for a video "
     "loader)"),
    ("KEEP", "Keep", "Send nothing: the workflow's own file"),
]
# The source a loader starts with, from what the core reads it wants.
ROLE_SOURCES = {"depth": "DEPTH", "normal": "NORMAL", "mask": "OBJECT_MASK",
                "lineart": "LINEART", "canny": "LINEART", "video": "FRAME_RANGE",
                "audio": "KEEP"}
CAMERA_MODES = [
    ("SELECTED", "Selected", "Project from the selected cameras"),
    ("AUTO", "Automatic", "Place cameras around the objects, each covering the most new area"),
]
NORMAL_CONVENTIONS = [
    ("NORMALBAE", "NormalBae", "ControlNet 1.1 normalbae: red = left, green = up, "
     "blue = toward the camera"),
    ("OPENGL", "OpenGL", "Red = right, green = up, blue = toward the camera"),
]


_CHOICES: dict[str, list[tuple[str, str, str]]] = {}  # Blender keeps no reference to items


@functools.lru_cache(maxsize=1024)
def parsed_input(typed: str) -> core.WorkflowInput:
    """An input's JSON, parsed once: every redraw asks for each input several times."""
    return core.WorkflowInput.model_validate_json(typed)


@functools.lru_cache(maxsize=1024)
def value_problem(typed: str, value: Any) -> str | None:
    """core.field_problem, once per input and value (a value missing from a long list of
    choices costs a closest-match search)."""
    return core.field_problem(parsed_input(typed), value)


def _choice_items(item: ComfyRelayInput, context: bpy.types.Context | None) -> list[Any]:
    """The server's options for this input, and the workflow's value if the server lacks it."""
    typed = item.input
    values = [str(c) for c in typed.choices or []]
    if str(typed.value) not in values:
        values.insert(0, str(typed.value))
    tip = typed.tooltip or ""
    _CHOICES[item.typed] = [(v, v, tip) for v in values]
    return _CHOICES[item.typed]


def _app_changed(item: ComfyRelayInput, context: bpy.types.Context) -> None:
    """Save the app view beside the workflow's path, in the user's config; an input just
    chosen goes last."""
    scene = context.scene if context else None
    if scene is None:
        return
    s = settings(scene)
    if item.in_app and item.app_order < 0:  # just chosen: it goes last
        item["app_order"] = max((i.app_order for i in s.inputs), default=-1) + 1
    elif not item.in_app:
        item["app_order"] = NOT_IN_APP
    s.save_app()


_listing = False  # show() is filling the fields: their checks wait for the end of it


def _value_changed(item: ComfyRelayInput, context: bpy.types.Context) -> None:
    """A field was edited: the status line names the values the server would refuse."""
    scene = context.scene if context else None
    if scene is not None and not _listing:
        settings(scene).flag_values()


class ComfyRelayInput(bpy.types.PropertyGroup):
    """One bindable workflow input; `name` is the key "node.input" the core understands."""

    label: bpy.props.StringProperty()  # type: ignore[valid-type]  # in words ("Steps")
    tip: bpy.props.StringProperty()  # type: ignore[valid-type]  # "3.steps · KSampler", on hover
    kind: bpy.props.StringProperty()  # type: ignore[valid-type]  # image, prompt, seed, ...
    # INT, FLOAT, STRING, BOOL, or BIGINT: an int beyond Blender's 32 bits, kept as text
    value_type: bpy.props.StringProperty()  # type: ignore[valid-type]
    int_value: bpy.props.IntProperty(name="Value", update=_value_changed)  # type: ignore[valid-type]
    float_value: bpy.props.FloatProperty(name="Value", update=_value_changed)  # type: ignore[valid-type]
    string_value: bpy.props.StringProperty(name="Value", update=_value_changed)  # type: ignore[valid-type]
    bool_value: bpy.props.BoolProperty(name="Value", update=_value_changed)  # type: ignore[valid-type]
    typed: bpy.props.StringProperty()  # type: ignore[valid-type]  # the WorkflowInput, as JSON
    choice: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Value", items=_choice_items, update=_value_changed)
    control: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Seed Control", items=[(c, c.capitalize(), f"{c.capitalize()} seed each run")
                                    for c in core.SEED_CONTROLS],
    )
    in_app: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="In the App", description="Show this input at the top, in the workflow's app view",
        update=_app_changed,
    )
    app_label: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Label", description="Its label in the app view", update=_app_changed
    )
    app_order: bpy.props.IntProperty(default=NOT_IN_APP)  # type: ignore[valid-type]  # its place

    @property
    def shown_label(self) -> str:
        return self.app_label or self.label

    @property
    def problem(self) -> str | None:
        """Why the server would refuse the value (only typed inputs are judged)."""
        if not self.typed or self.kind in ("image", "video"):
            return None
        return value_problem(self.typed, self.value)

    @property
    def input(self) -> core.WorkflowInput:
        """The core's description of this input (typed when the server was asked)."""
        return parsed_input(self.typed)

    @property
    def field(self) -> str:
        """The property that holds the value."""
        if self.typed and self.input.choices is not None:
            return "choice"
        return "string_value" if self.value_type == "BIGINT" else f"{self.value_type.lower()}_value"

    @property
    def value(self) -> Any:
        if self.field == "choice":
            return self.choice
        if self.value_type == "BIGINT":
            try:
                return int(self.string_value)
            except ValueError:
                return self.string_value  # the server's validation names the bad input
        return getattr(self, f"{self.value_type.lower()}_value")


def _legacy_source(settings: ComfyRelaySettings, context: bpy.types.Context) -> None:
    """`source`, `source_image` and `animation` predate per-loader sources: with one loader
    they set its entry, so scripts written for them keep working."""
    if len(settings.media) != 1:
        return
    entry = settings.media[0]
    entry.source = "FRAME_RANGE" if settings.animation else settings.source
    entry.image = settings.source_image


class ComfyRelayMedia(bpy.types.PropertyGroup):
    """What one loader of the workflow gets; `node` is its id, `title` its title."""

    node: bpy.props.StringProperty(name="Node")  # type: ignore[valid-type]
    title: bpy.props.StringProperty(name="Title")  # type: ignore[valid-type]
    role: bpy.props.StringProperty()  # type: ignore[valid-type]  # core.Role, for the tooltip
    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Source", items=MEDIA_SOURCES, default="RENDER_RESULT"
    )
    image: bpy.props.PointerProperty(name="Image", type=bpy.types.Image)  # type: ignore[valid-type]


def _outputs_changed(item: Any, context: bpy.types.Context) -> None:
    """The output nodes picked are kept with the workflow's app view."""
    if context and context.scene is not None:
        settings(context.scene).save_app(inputs_changed=False)


class ComfyRelayOutput(bpy.types.PropertyGroup):
    """One output node of the workflow; `wanted`: its files come back (none picked: every
    saved file, or the previews when the workflow saves none)."""

    node: bpy.props.StringProperty(name="Node")  # type: ignore[valid-type]
    title: bpy.props.StringProperty(name="Title")  # type: ignore[valid-type]
    wanted: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Results from this node",
        description="Bring back only the files of the output nodes ticked here",
        update=_outputs_changed,
    )


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
    media: bpy.props.CollectionProperty(type=ComfyRelayMedia)  # type: ignore[valid-type]
    outputs: bpy.props.CollectionProperty(type=ComfyRelayOutput)  # type: ignore[valid-type]
    normal_convention: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Normals", items=NORMAL_CONVENTIONS, default="NORMALBAE"
    )
    # One loader's source, as before per-loader sources (kept for scripts): see _legacy_source.
    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Source", items=SOURCES, default="RENDER_RESULT", update=_legacy_source
    )
    source_image: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Image", type=bpy.types.Image, update=_legacy_source
    )
    animation: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Frame Range",
        description="Render every frame of the scene's range and send each through the workflow",
        update=_legacy_source,
    )
    use_material: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Set as Texture",
        description="Use the result as Base Color of the active object's material",
    )
    # Texture from Cameras (comfyrelay.project_texture): the panel's choices.
    texture_cameras: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Cameras", items=CAMERA_MODES, default="AUTO"
    )
    texture_camera_count: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Cameras", description="How many cameras to place around the objects",
        default=6, min=1, max=64,
    )
    texture_size: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Texture Size", description="Width and height of the baked texture, in pixels",
        default=1024, min=64, max=8192,
    )
    texture_sequential: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Sequential",
        description="One view at a time, each given what the earlier ones painted (Projected "
        "So Far, Uncovered) and painting only what they left; on whenever a loader takes "
        "one of those",
    )
    customize: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Customize", description="Choose the inputs shown at the top, their order and labels"
    )
    show_all: bpy.props.BoolProperty(name="All Inputs")  # type: ignore[valid-type]
    show_details: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Details", description="What the server lacks, and what ComfyRelay does instead")
    show_history: bpy.props.BoolProperty(name="History")  # type: ignore[valid-type]
    history: bpy.props.StringProperty()  # type: ignore[valid-type]  # RunHistory as JSON

    def workflow_file(self) -> str:
        return bpy.path.abspath(self.workflow_path)

    def load_inputs(self, refresh: bool = False) -> core.Workflow | None:
        """Read the workflow and list its inputs. A UI-format file or a ComfyUI image is
        converted by the session first: its inputs are listed when it is (show())."""
        if not self.workflow_path:
            self.show(None)
            pump.SESSION.close_workflow()
            return None
        try:
            pump.configure()  # the back end whose server converts
            workflow = pump.SESSION.open_workflow(self.workflow_file(), refresh=refresh)
        except (core.ComfyRelayError, ValueError) as exc:
            self.show(None, str(exc))
            return None
        if workflow is not None:
            self.show(workflow)  # plain fields now; typed ones when the server answers
        if bpy.app.background:  # scripts: return with the inputs listed and typed
            pump.drive(60, until=lambda: not pump.SESSION.converting)
        else:
            pump.wake()
        return workflow

    def show(self, workflow: core.Workflow | None, error: str = "",
             inputs: tuple[core.WorkflowInput, ...] | None = None) -> None:
        """List the workflow's inputs (`inputs`: typed by the server), with its app view (the
        default app until the user customises it), labelled in words; a reload keeps the
        values already set. The values the server would refuse go to the status line."""
        global _listing
        same_file = self.loaded_path == self.workflow_path
        old = {item.name: (item.value, item.control) for item in self.inputs} if same_file else {}
        if not same_file:
            pump.SHOWN.clear()
        self.inputs.clear()
        self._show_media(workflow, same_file)
        self.loaded_path = self.workflow_path
        self.workflow_error = error
        if workflow is None:
            return
        app = core.load_app(self.workflow_file())
        self._show_outputs(workflow, app.outputs)
        found = list(inputs if inputs is not None else workflow.inputs())
        layout = core.arrange(found, app, workflow)
        chosen = {e.input.key: n for n, e in enumerate(layout.shown)}
        labels = {f.key: f.label for f in app.fields}
        _listing = True
        try:
            order = {item.key: n for n, item in enumerate(found)}  # the workflow's order
            for entry in sorted([*layout.shown, *layout.others],
                                key=lambda e: order[e.input.key]):
                self._add_input(entry, old, chosen, entry.word, labels.get(entry.input.key, ""))
        finally:
            _listing = False
        self.flag_values()

    def _add_input(self, entry: core.LabelledInput, old: dict[str, Any],
                   chosen: dict[str, int], word: str, app_label: str) -> None:
        wf_input = entry.input
        item = self.inputs.add()
        item.name = wf_input.key
        item.label, item.tip = word, entry.tip
        item.kind = wf_input.kind
        item.value_type = value_type(wf_input.value)
        item.typed = wf_input.model_dump_json()
        value, control = old.get(item.name, (wf_input.value, "fixed"))
        set_value(item, value)
        item.control = control
        item["app_order"], item["app_label"] = chosen.get(item.name, NOT_IN_APP), app_label
        item["in_app"] = item.name in chosen

    def flag_values(self) -> None:
        """Hand the session the values the server would refuse, by their labels: the status
        line names them and Run waits until they are fixed."""
        if self.workflow_path and self.loaded_path == self.workflow_path:
            pump.SESSION.flag_values(core.flags(self.layout(), self.bindings().values))

    def layout(self) -> core.AppLayout:
        """The fields as the core's AppLayout (the app's in its order, then the others): the
        core names the flagged values as it does for Krita."""
        typed = [i for i in self.inputs if i.typed]
        shown = sorted((i for i in typed if i.in_app), key=lambda i: i.app_order)
        return core.AppLayout(
            [core.LabelledInput(i.input, i.shown_label) for i in shown],
            [core.LabelledInput(i.input, i.label) for i in typed if not i.in_app])

    def _show_outputs(self, workflow: core.Workflow, picked: list[str]) -> None:
        self.outputs.clear()
        for node in workflow.output_nodes():
            entry = self.outputs.add()
            entry.name = entry.node = node
            entry.title = workflow.title(node)
            entry["wanted"] = node in picked  # no update: nothing changed

    def _show_media(self, workflow: core.Workflow | None, same_file: bool) -> None:
        """One entry per loader; a reload of the same file keeps each loader's source."""
        old = {m.node: (m.source, m.image) for m in self.media} if same_file else {}
        self.media.clear()
        for loader in core.workflow_loaders(workflow) if workflow is not None else []:
            entry = self.media.add()
            entry.name = entry.node = loader.node_id
            entry.title, entry.role = loader.title, str(loader.role)
            source = _default(loader)
            if source == "RENDER_RESULT" and self.animation:  # set by a script before
                source = "FRAME_RANGE"
            elif source == "RENDER_RESULT":
                source = self.source
            entry.source, entry.image = old.get(loader.node_id, (source, self.source_image))

    def save_app(self, inputs_changed: bool = True) -> None:
        """The app view as the fields say: chosen inputs in their saved order, new ones last.
        Once the user changed which inputs it shows, it is theirs (customised), also empty."""
        if not self.workflow_path:
            return
        outputs = [o.node for o in self.outputs if o.wanted]
        saved = core.load_app(self.workflow_file())
        if inputs_changed or saved.custom:
            picked = sorted((i for i in self.inputs if i.in_app), key=lambda i: i.app_order)
            saved = core.AppView(
                fields=[core.AppField(key=i.name, label=i.app_label) for i in picked],
                custom=True)
        core.save_app(self.workflow_file(), saved.with_outputs(outputs))

    def move_in_app(self, key: str, offset: int) -> None:
        """Move an app input up (-1) or down (+1) among the chosen ones, and save."""
        picked = sorted((i for i in self.inputs if i.in_app), key=lambda i: i.app_order)
        keys = [i.name for i in picked]
        if key in keys:
            at = keys.index(key)
            to = max(0, min(len(keys) - 1, at + offset))
            picked.insert(to, picked.pop(at))
        for n, item in enumerate(picked):
            item["app_order"] = n
        self.save_app()

    def next_seeds(self) -> None:
        """Apply each seed's control before a run: the field then shows the seed used."""
        for item in self.inputs:
            if item.control != "fixed" and isinstance(item.value, int):
                top = item.input.max if item.typed and item.input.max is not None else INT_MAX
                if item.value_type == "INT":  # Blender's int fields hold 32 bits
                    top = min(top, INT_MAX)
                set_value(item, core.seed_for_run(item.value, item.control, maximum=top))

    def bindings(self) -> core.Bindings:
        """The core's Bindings for the current fields."""
        image_node = next((m.node for m in self.media if m.source != "KEEP"), None)
        values = {i.name: i.value for i in self.inputs if i.kind not in ("image", "video")}
        outputs = [o.node for o in self.outputs if o.wanted]
        return core.Bindings(image_node=image_node, values=values, outputs=outputs)

    def apply(self, bindings: core.Bindings) -> None:
        """Fill the fields with a run's values (Use these settings); seeds become fixed."""
        for item in self.inputs:
            if item.name in bindings.values:
                set_value(item, bindings.values[item.name])
                item.control = "fixed"


def _default(loader: core.Loader) -> str:
    if loader.kind == "video":
        return "FRAME_RANGE"
    return ROLE_SOURCES.get(str(loader.role), "RENDER_RESULT")


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT" if -INT_MAX - 1 <= value <= INT_MAX else "BIGINT"
    if isinstance(value, float):
        return "FLOAT"
    return "STRING"


def set_value(item: ComfyRelayInput, value: Any) -> None:
    """Store a workflow value in the field of its type; a value that no longer fits is skipped."""
    try:
        if item.field == "choice":
            item.choice = str(value)
        elif item.value_type == "INT":
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


CLASSES = (ComfyRelayInput, ComfyRelayMedia, ComfyRelayOutput, ComfyRelaySettings)


def register() -> None:
    bpy.types.Scene.comfyrelay = bpy.props.PointerProperty(  # type: ignore[attr-defined]
        type=ComfyRelaySettings
    )


def unregister() -> None:
    del bpy.types.Scene.comfyrelay  # type: ignore[attr-defined]
