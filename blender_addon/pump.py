"""The session: one job runner, the timer that pumps its events into Blender, and the state
the panel draws.

All network work happens on the core runner's thread. Everything here runs on Blender's
main thread: from a bpy.app.timers callback in the UI, or from drive() under `blender -b`,
where timers never fire and operators wait for their jobs instead.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from . import core, pixels, preferences, results
from .rendering import FrameRender

INTERVAL = 0.1  # seconds between pumps while something runs


@dataclass
class Run:
    """One press of Run: a single image, or every frame of the range."""

    workflow: core.Workflow
    bindings: core.Bindings
    out_dir: Path
    scene_name: str
    object_name: str | None  # receives the texture, when asked for
    animation: bool
    jobs: dict[str, int] = field(default_factory=dict)  # job id -> frame
    open_jobs: set[str] = field(default_factory=set)
    frames: dict[int, Path] = field(default_factory=dict)  # frame -> its result
    outputs: list[str] = field(default_factory=list)  # names of loaded images and clips
    render: FrameRender | None = None
    temp_files: list[Path] = field(default_factory=list)  # saves of ours a job may not read
    cancelled: bool = False
    failed: bool = False

    @property
    def over(self) -> bool:
        rendering = self.render is not None and not self.render.done.is_set()
        return not rendering and not self.open_jobs


@dataclass
class Session:
    runner: core.JobRunner | None = None
    runner_key: tuple[str, core.Credentials | None] = ("", None)
    machine: core.MachinePanel = field(default_factory=core.MachinePanel)  # Launch/Stop/…
    leftovers: core.MachinePanel = field(default_factory=core.MachinePanel)  # earlier sessions
    run: Run | None = None
    checking: bool = False
    # What the panel shows.
    connection: str = "Not checked"
    connected: bool | None = None
    status: str = "Idle"
    progress: float = 0.0
    node: str = ""
    step: str = ""
    error: str = ""
    error_node: str = ""
    seed: int | None = None
    last_outputs: list[str] = field(default_factory=list)
    # Main-thread time per pump, in seconds (the figure the issue asks for).
    pump_times: list[float] = field(default_factory=list)
    capture_times: list[float] = field(default_factory=list)  # saving the source image
    _timer_on: bool = False
    # Frames are submitted from the render thread: a job must be in run.jobs before the
    # pump can see its first event, so submitting and polling take turns.
    _submit_lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- the runner ----
    def ensure_runner(self) -> core.JobRunner:
        """The runner for the current preferences; rebuilt when the back end, an address or a
        credential changed. Raises ComfyRelayError when the settings are incomplete."""
        settings, credentials = preferences.backend_settings(), preferences.credentials()
        machine = settings.runcomfy_machine
        # Price and idle time apply to a live machine: changing them must not stop it.
        live = {"hourly_price", "idle_stop", "duration"}
        key = (settings.model_dump_json(exclude={"runcomfy_machine": live}), credentials)
        if self.runner is None or (key != self.runner_key and not self.busy_machine):
            old, self.runner = self.runner, None
            if old is not None:  # closing may stop its machine: never on the UI thread
                threading.Thread(target=old.close, name="comfyrelay-close", daemon=True).start()
            backend = core.make_backend(settings, credentials)
            self.runner = core.JobRunner(backend, max_in_flight=2)  # next upload overlaps a run
            self.runner_key = key
        if isinstance(self.runner.backend, core.RunComfyMachineBackend):
            backend = self.runner.backend
            backend.hourly_price, backend.idle_stop = machine.hourly_price, machine.idle_stop
            backend.duration = machine.duration  # the next launch's
        return self.runner

    def machine_backend(self) -> core.RunComfyMachineBackend | None:
        """The RunComfy machine back end when that is the one chosen."""
        backend = self.runner.backend if self.runner is not None else None
        return backend if isinstance(backend, core.RunComfyMachineBackend) else None

    @property
    def busy_machine(self) -> bool:
        """A job, a check or a machine action is under way: keep the back end as it is."""
        backend = self.machine_backend()
        return self.busy or self.machine.working or bool(backend and backend.preparing)

    def find_machines(self) -> None:
        """Look for RunComfy machines left running by earlier sessions, in the background."""
        server = core.runcomfy_server(
            preferences.credentials(), preferences.prefs().runcomfy_api_url
        )
        self.leftovers.scan(server)
        self._wake()

    @property
    def busy(self) -> bool:
        return self.run is not None or self.checking

    @property
    def waiting(self) -> bool:
        """Something the panel shows is still changing: keep the timer ticking."""
        backend = self.machine_backend()
        return (self.busy or self.machine.working or self.leftovers.working
                or bool(backend and (backend.preparing or backend.status().status not in
                                     ("none", "Stopped"))))

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close(timeout=2.0)
        self.runner = None
        self.leftovers.close()

    # ---- starting work (main thread) ----
    def check(self) -> None:
        try:
            runner = self.ensure_runner()
        except core.ComfyRelayError as exc:
            self.connected, self.connection = False, str(exc)
            return
        runner.check_connection()
        self.checking = True
        self.connection = "Checking…"
        self.connected = None
        self._wake()

    def start(self, run: Run, image: Path | None, render: FrameRender | None) -> None:
        """Submit the one job (image or none), or start the render that feeds frames in."""
        self.ensure_runner()
        self.run = run
        self.error = self.error_node = ""
        self.progress, self.node, self.step, self.seed = 0.0, "", "", None
        self.status = "Rendering…" if render else "Sending…"
        self._wake()
        try:
            if render is not None:
                run.render = render
                render.start()  # blocks until the render ends under `blender -b`
            else:
                self.submit(run, 0, image)
        except BaseException:
            self.run = None  # nothing was sent: Run must stay available
            if self.runner is not None:
                self.runner.cancel()
            raise

    def submit(self, run: Run, frame: int, image: Path | None) -> None:
        """Queue one job; called on the render thread for frames, so it touches no bpy data."""
        if run.cancelled or run.failed or self.runner is None:
            return
        data = None
        if image is not None:  # read on the runner's thread: a 4K PNG is tens of MB
            temporary = image.parent == pixels.temp_dir()  # our save, not the user's file
            data = core.InputFile.from_path(image, read_now=False, temporary=temporary)
            if temporary:
                run.temp_files.append(image)
        job = core.Job(
            workflow=run.workflow,
            out_dir=run.out_dir,
            bindings=run.bindings,
            image=data,
            label=f"frame {frame}" if run.animation else run.workflow.name,
        )
        with self._submit_lock:
            job_id = self.runner.submit(job)
            run.jobs[job_id] = frame
            run.open_jobs.add(job_id)

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancelled = True
            rendering = self.run.render is not None and not self.run.render.done.is_set()
            # Blender offers no call to stop its render job; no further frame is sent.
            self.status = "Cancelling… (Esc stops the render)" if rendering else "Cancelling…"
        if self.runner is not None:
            self.runner.cancel()

    # ---- the pump ----
    def _wake(self) -> None:
        if bpy.app.background or self._timer_on:
            return
        self._timer_on = True
        bpy.app.timers.register(_tick, first_interval=0.05, persistent=True)

    def pump(self) -> bool:
        """Apply every event that arrived; True while there is more to wait for."""
        started = time.perf_counter()
        try:
            if self.runner is not None:
                with self._submit_lock:
                    events = self.runner.poll()
                for event in _latest_preview_only(events):
                    self.handle(event)
            run = self.run
            render = run.render if run is not None else None
            if render is not None and render.ended and not render.done.is_set():
                render.finish()  # restore the scene's output settings
                if render.cancelled:  # Esc in the render window stops the whole run
                    self.cancel()
            if run is not None and run.over:
                self._end(run)
            _redraw()
        finally:
            self.pump_times.append(time.perf_counter() - started)
            del self.pump_times[:-1000]
        return self.waiting

    def drive(self, timeout: float | None = None) -> None:
        """Pump until idle: the blocking mode for `blender -b` and scripts."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pump() and self.busy:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                deadline = None  # one more round for the cancellation to land
            time.sleep(0.02)

    @property
    def max_stall(self) -> float:
        return max(self.pump_times, default=0.0)

    # ---- events (main thread) ----
    def handle(self, event: core.Event) -> None:
        if isinstance(event, core.ConnectionChecked):
            self.checking = False
            self.connected = event.ok
            self.connection = event.message
            return
        run = self.run
        if run is None or event.job_id not in run.jobs:
            return  # a job from a run that was already closed
        frame = run.jobs[event.job_id]
        where = f"Frame {frame}: " if run.animation else ""
        if isinstance(event, core.JobStarted):
            self.seed = event.seed
            self.status = f"{where}sending…"
        elif isinstance(event, core.JobQueued):
            self.status = f"{where}queued"
        elif isinstance(event, core.JobProgress):
            self._progress(run, event, where)
        elif isinstance(event, core.JobPreview):
            image = results.load_preview(event.data, event.mime, pixels.temp_dir())
            if not run.animation:
                results.show(image)
        elif isinstance(event, core.JobOutput):
            self._output(run, frame, event)
        elif isinstance(event, core.JobFailed):
            self._failed(run, event, where)
        if isinstance(event, core.FINAL_EVENTS):
            run.open_jobs.discard(event.job_id)

    def _progress(self, run: Run, event: core.JobProgress, where: str) -> None:
        done = len(run.jobs) - len(run.open_jobs)
        total = max(len(run.jobs), 1)
        self.progress = (done + event.fraction) / total if run.animation else event.fraction
        self.node = f"{event.node_title} ({event.node_id})" if event.node_id else ""
        self.step = f"step {event.value}/{event.max}" if event.max else ""
        self.status = f"{where}running"

    def _output(self, run: Run, frame: int, event: core.JobOutput) -> None:
        if event.kind == "video":
            clip = results.load_movie(event.path)
            run.outputs.append(clip.name)
        elif event.kind != "image":
            run.outputs.append(event.path.name)  # saved in the output folder; nothing to load
        elif run.animation:
            if frame not in run.frames:  # the first image of each frame makes the sequence
                numbered = f"{run.workflow.name}_{frame:04d}{event.path.suffix}"
                run.frames[frame] = event.path.replace(event.path.with_name(numbered))
        else:
            self._image_result(run, event.path)

    def _image_result(self, run: Run, path: Path) -> None:
        mode = preferences.prefs().result_mode
        first = not any(name.startswith(results.RESULT_IMAGE) for name in run.outputs)
        name = None
        if mode == "REPLACE":
            name = results.RESULT_IMAGE if first else f"{results.RESULT_IMAGE} {len(run.outputs)}"
        image = results.load_image(path, name)
        run.outputs.append(image.name)
        results.show(image)
        if first:
            self._texture(run, image)

    def _texture(self, run: Run, image: bpy.types.Image, frames: int = 0) -> None:
        obj = bpy.data.objects.get(run.object_name) if run.object_name else None
        if obj is None:
            return
        try:
            material = results.set_texture(obj, image, frames)
            self.status = f"Texture set on {material}"
        except ValueError as exc:
            self.error = str(exc)

    def _failed(self, run: Run, event: core.JobFailed, where: str) -> None:
        run.failed = True
        self.error = f"{where}{event.message}"
        self.error_node = f"{event.node_id} ({event.node_type})" if event.node_id else ""
        if run.animation and self.runner is not None:
            self.runner.cancel()  # the same workflow would fail on every other frame too

    def _end(self, run: Run) -> None:
        self.run = None
        if run.render is not None:
            run.render.cleanup()
        for path in run.temp_files:  # a cancelled job never read (and deleted) its input
            path.unlink(missing_ok=True)
        if run.animation and run.frames:
            first = run.frames[min(run.frames)]
            image = results.load_sequence(first, f"ComfyRelay {run.workflow.name}")
            run.outputs.insert(0, image.name)
            results.show(image)
            self._texture(run, image, frames=len(run.frames))
        self.last_outputs = run.outputs
        count = f"{len(run.frames)} of {len(run.jobs)} frames" if run.animation else ""
        if run.failed:
            self.status = f"Failed{' after ' + count if count else ''}"
        elif run.cancelled:
            self.status = f"Cancelled{' after ' + count if count else ''}"
        else:
            self.status = f"Done: {count or ', '.join(run.outputs) or 'no outputs'}"
            self.progress = 1.0


def _latest_preview_only(events: list[core.Event]) -> list[core.Event]:
    """Drop previews superseded within the same batch: loading each would only cost time."""
    last = max((i for i, e in enumerate(events) if isinstance(e, core.JobPreview)), default=-1)
    return [e for i, e in enumerate(events) if not isinstance(e, core.JobPreview) or i == last]


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "IMAGE_EDITOR"}:
                area.tag_redraw()


SESSION = Session()


def _tick() -> float | None:
    """The bpy.app.timers callback: pump, and keep ticking only while something runs."""
    again = SESSION.pump()
    SESSION._timer_on = again
    if not again:
        return None
    return INTERVAL if SESSION.busy else 1.0  # a running machine's time left, once a second


def shutdown() -> None:
    """On unregister: stop the timer and the runner, end any run."""
    with contextlib.suppress(ValueError):
        if bpy.app.timers.is_registered(_tick):
            bpy.app.timers.unregister(_tick)
    SESSION._timer_on = False
    SESSION.cancel()
    if SESSION.run is not None and SESSION.run.render is not None:
        SESSION.run.render.finish()
    SESSION.run = None
    SESSION.checking = False
    SESSION.close()
