"""The `comfyrelay` command: run a workflow, check a server, list a workflow's inputs.

The hosted commands (machines, workflows, deployments) and `run --backend` live in hosted.py;
the back-end options of `run` come from the kinds (core/kinds.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..comfyui.convert import server_converter
from ..comfyui.fields import check_values, server_defs, typed_inputs
from ..comfyui.kind import DEFAULT_URL, TOKEN, URL_ENV
from ..comfyui.nodes import NodeDefs, node_defs
from ..config import Credentials
from ..errors import PLAIN_CANCEL, ComfyRelayError
from ..jobs import events as ev
from ..jobs import loaders
from ..jobs.backend_api import Backend
from ..jobs.job import InputFile, Job, MediaInput
from ..jobs.runner import JobRunner
from ..jobs.workflow import Bindings, Workflow, WorkflowInput
from ..kinds import KINDS, BackendSettings, load_credentials, make_backend
from ..version import __version__
from . import batch, signals
from . import hosted as cli_hosted

DEFAULT_OUT = Path("comfyrelay-output")  # `run` without --out: ./comfyrelay-output/<workflow>/
# How long `run` waits for the server to confirm a cancel before it exits anyway, saying the
# job may go on (ComfyUI's own cancel waits up to 10 s for the server to let go).
CANCEL_WAIT = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every command, not only `run`: a long conversion or a machine's launch --wait stops on
    # SIGTERM or SIGHUP too, with a message and the signal's exit code, not a traceback.
    with signals.Guard():
        try:
            return int(args.func(args))
        except ComfyRelayError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except signals.Stop as stop:
            signals.write(sys.stderr, f"Stopped ({stop.why}).\n")
            return stop.exit_code


def version_text() -> str:
    """The installed package's version and the core's, which the add-on zips vendor. They
    differ only when the install is stale (pyproject.toml changed since `pip install`)."""
    try:
        package = importlib.metadata.version("comfyrelay")
    except importlib.metadata.PackageNotFoundError:  # run from a vendored copy or a checkout
        package = "(not installed)"
    return (f"comfyrelay {package} (core {__version__}, as vendored into the Blender and "
            "Krita add-on zips)")


class VersionAction(argparse.Action):
    """`--version`: argparse's own action would re-wrap the line to the terminal's width."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, default=argparse.SUPPRESS,
                         help="print the package's version and the add-ons' core version")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    labels = ", ".join(KINDS.labels().values())
    envs = ", ".join(c.env for c in KINDS.credentials())
    parser = argparse.ArgumentParser(
        prog="comfyrelay",
        description=f"Run ComfyUI workflows on any back end: {labels}. Tokens come from the "
        f"environment ({envs}) or the credentials file, never from arguments.",
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a workflow and save its outputs")
    run.add_argument(
        "workflow", type=Path, help="workflow .json (API or UI format) or a ComfyUI PNG/WebP"
    )
    run.add_argument("--image", dest="images", action="append", default=[],
                     metavar="[NODE=]PATH",
                     help="image, video or sound for a loader (node by id or title; PATH "
                     "alone: the only loader of its kind); repeat for several loaders")
    run.add_argument("--image-node", help="id or title of the loader that gets --image PATH")
    run.add_argument("--mask", dest="masks", action="append", default=[],
                     metavar="[NODE=]PATH",
                     help="a mask, white = change, for a LoadImageMask or LoadImage (PATH alone: "
                     "the only LoadImageMask); sent in the form the loader reads")
    add_binding_arguments(run)
    run.add_argument("--out", type=Path,
                     help=f"folder for the outputs (default: ./{DEFAULT_OUT}/<workflow name>/)")
    cli_hosted.add_backend_arguments(run)
    run.set_defaults(func=cmd_run)

    check = commands.add_parser("check", help="check that a ComfyUI server answers")
    add_server_argument(check)
    check.set_defaults(func=cmd_check)

    inputs = commands.add_parser("inputs", help="list the inputs a workflow lets you set")
    inputs.add_argument("workflow", type=Path)
    add_optional_server_argument(inputs)
    inputs.add_argument("--json", action="store_true", help="machine-readable output")
    inputs.set_defaults(func=cmd_inputs)

    convert = commands.add_parser(
        "convert", help="write the API-format graph of a workflow (UI .json, PNG or WebP)"
    )
    convert.add_argument("workflow", type=Path)
    add_optional_server_argument(convert)
    convert.add_argument("-o", "--out", type=Path, help="output .json (default: stdout)")
    convert.set_defaults(func=cmd_convert)
    batch_cmd = commands.add_parser(
        "batch", help="each image through the workflow, results named after their input")
    batch_cmd.add_argument("workflow", type=Path, help="workflow .json (API or UI format)")
    batch_cmd.add_argument("--images", required=True, metavar="DIR_OR_GLOB",
                           help="a folder of images, or a glob (quoted): each is one job")
    batch_cmd.add_argument("--image-node", help="id or title of the loader the images go to")
    add_binding_arguments(batch_cmd)
    batch_cmd.add_argument("--out", type=Path, required=True, help="folder for the results")
    cli_hosted.add_backend_arguments(batch_cmd)
    batch_cmd.set_defaults(func=cmd_batch)
    cli_hosted.register(commands)
    return parser


def add_binding_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that set a workflow's values, shared by `run` and `batch`."""
    parser.add_argument("--output", dest="outputs", action="append", default=[],
                     metavar="NODE",
                     help="an output node whose files to save (repeatable; default: every "
                     "saved file, or the previews when the workflow saves none)")
    parser.add_argument("--prompt", help="text for the positive prompt")
    parser.add_argument("--seed", type=int, help="seed for every sampler")
    parser.add_argument("--random-seed", action="store_true", help="a new random seed")
    parser.add_argument("--denoise", type=float, help="denoise strength 0..1")
    parser.add_argument(
        "--set",
        dest="values",
        action="append",
        default=[],
        metavar="NODE.INPUT=V",
        help="set any input (node by id or title); V is JSON or plain text",
    )


def add_server_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"ComfyUI URL (default: ${URL_ENV} or {DEFAULT_URL})",
    )


def add_optional_server_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get(URL_ENV),
        help="ComfyUI URL whose node definitions convert UI-format workflows "
        f"(default: ${URL_ENV})",
    )


def load_workflow(path: Path, server: str | None) -> Workflow:
    """Any workflow file; UI-format ones are converted with the server's node definitions."""
    if not server:
        return Workflow.load(path)
    token = load_credentials()[TOKEN.name] or None
    return Workflow.load(path, server_converter(server, token=token))


def cmd_convert(args: argparse.Namespace) -> int:
    workflow = load_workflow(args.workflow, args.server)
    text = json.dumps(workflow.graph, indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ComfyRelayError(f"Cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"Wrote {args.out} ({len(workflow.graph)} nodes)", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    backend = make_backend(BackendSettings.of("comfyui", url=args.server), load_credentials())
    try:
        print(backend.check())
    finally:
        backend.close()
    return 0


def cmd_inputs(args: argparse.Namespace) -> int:
    workflow = load_workflow(args.workflow, args.server)
    found = typed_inputs(workflow, inputs_defs(args.server))
    if args.json:
        # Typed fields appear where the server defines them; the plain ones always do. A
        # loader's own input also says what it reads and what binds it by default.
        kinds = {(x.node_id): x for x in loaders.workflow_loaders(workflow)}
        print(json.dumps([
            i.model_dump(exclude_none=True) | {"key": i.key} | _loader_json(workflow, kinds, i)
            for i in found], indent=2))
        return 0
    for item in found:
        print(
            f"{item.key:<24} {item.kind:<8} {item.node_title} ({item.class_type}) = "
            f"{json.dumps(item.value)[:60]}{field_note(item)}"
        )
    listed = loaders.workflow_loaders(workflow)
    if listed:
        print("\nLoaders (bind one with --image NODE=PATH, or --mask NODE=PATH):")
    for loader in listed:
        print(f"  {loader.describe():<40} {default_binding(workflow, loader)}")
    return 0


def _loader_json(workflow: Workflow, listed: dict[str, loaders.Loader],
                 item: WorkflowInput) -> dict[str, Any]:
    loader = listed.get(item.node_id)
    if loader is None or item.kind not in ("image", "video", "audio"):
        return {}
    return {"loader": {"kind": loader.kind, "role": str(loader.role),
                       "default": default_binding(workflow, loader)}}


def default_binding(workflow: Workflow, loader: loaders.Loader) -> str:
    """What a loader gets when the command line names none: `--image PATH` (or `--mask
    PATH`) when it is the only loader of its kind, else the file it names now."""
    same = [other for other in loaders.workflow_loaders(workflow) if other.kind == loader.kind]
    keeps = f"keeps {loader.file!r}" if loader.file else "has no file"
    if len(same) == 1:
        flag = "--mask" if loader.kind == "mask" else "--image"
        return f"{flag} PATH binds it; without it, it {keeps}"
    return f"{keeps} unless bound"


def inputs_defs(server: str | None) -> NodeDefs | None:
    """The server's node definitions for `inputs`; without them the inputs are listed plain."""
    if not server:
        return None
    token = load_credentials()[TOKEN.name] or None
    try:
        return node_defs.get(server, token=token)
    except ComfyRelayError as exc:
        print(f"note: {exc} Listing the inputs without the server's types.", file=sys.stderr)
        return None


def field_note(item: WorkflowInput) -> str:
    """"  [1..10000]" or "  [one of 42]": what the server accepts, in the plain listing."""
    if item.choices is not None:
        return f"  [one of {len(item.choices)}]"
    if item.min is not None or item.max is not None:
        low = "" if item.min is None else item.min
        high = "" if item.max is None else item.max
        return f"  [{low}..{high}]"
    return ""


def first_server(args: argparse.Namespace) -> str:
    """`--server` is the comfyui kind's option (repeatable: a pool); UI-format files are
    converted with the first one's node definitions."""
    given = args.server[0] if args.server else None
    return given or os.environ.get(URL_ENV, DEFAULT_URL)


def cmd_run(args: argparse.Namespace) -> int:
    server = first_server(args)
    out_dir = args.out
    if out_dir is None:
        # A folder per workflow, so runs of different workflows do not mix their files.
        out_dir = DEFAULT_OUT / (args.workflow.stem or "workflow")
    workflow = load_workflow(args.workflow, server)
    job = Job(workflow=workflow, out_dir=out_dir, bindings=bindings_from_args(args),
              media=media_from_args(args, workflow))
    loaders.check(job)  # fail before connecting
    choice, credentials = cli_hosted.settings_from_args(args), load_credentials()
    if args.estimate:
        return print_estimate(choice, credentials, 1, workflow.name)
    guess = batch.before_run(choice, credentials, 1, workflow.name, sys.stderr)
    if args.out is None:  # said once the run is known to go ahead
        print(f"Saving to {out_dir}{os.sep} (no --out given)", file=sys.stderr)
    backend = make_backend(choice, credentials)
    try:
        check_against_server(backend, job)
    except BaseException:
        backend.close()
        raise
    code = run_job(backend, job)
    if guess is not None:
        print(batch.cost_line(guess, backend), file=sys.stderr)
    return code


def print_estimate(choice: BackendSettings, credentials: Credentials, jobs: int,
                   workflow: str) -> int:
    """`--estimate`: the time and cost, nothing sent. Unknown prices are named, not guessed."""
    if choice.kind != batch.POOL:
        raise ComfyRelayError("--estimate needs a pool: --pool POOL.json or several --server.")
    guess = batch.pool_estimate(choice, credentials, jobs, workflow)
    print("\n".join(guess.lines()))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    workflow = load_workflow(args.workflow, first_server(args))
    bindings = bindings_from_args(args)
    jobs = [(str(path), Job(workflow=workflow, out_dir=args.out, bindings=bindings,
                            media=(MediaInput(args.image_node, _input_file(path)),)))
            for path in batch.find_inputs(args.images)]
    loaders.check(jobs[0][1])  # fail before connecting
    choice, credentials = cli_hosted.settings_from_args(args), load_credentials()
    if args.estimate:
        return print_estimate(choice, credentials, len(jobs), workflow.name)
    guess = batch.before_run(choice, credentials, len(jobs), workflow.name, sys.stderr)
    backend = make_backend(choice, credentials)
    try:
        check_against_server(backend, jobs[0][1])
    except BaseException:
        backend.close()
        raise
    outcome = batch.run_jobs(backend, jobs, batch.named_after(args.out))
    return batch.summary(outcome, guess, backend, sys.stderr)


def check_against_server(backend: Backend, job: Job) -> None:
    """Refuse values the back end's ComfyUI would refuse, before queueing. Without its node
    definitions (no ComfyUI yet, or unreachable) the run goes on and reports for itself."""
    defs = server_defs(backend.comfyui_server())
    if defs is not None:
        bound = loaders.assign(job.workflow, job.all_media())
        check_values(job.workflow, job.bindings, defs, bound=set(bound))


def run_job(backend: Backend, job: Job, err: TextIO | None = None) -> int:
    """Run one job to its end, reporting on stderr and printing saved paths on stdout.

    Ctrl-C, SIGTERM and SIGHUP cancel the job on the server and exit 130, 143 or 129 (see
    signals); a second one while cancelling leaves at once, saying the job may go on there.
    """
    runner = JobRunner(backend)
    bar = ProgressLine(err or sys.stderr)  # looked up now: stderr may be redirected since import
    final: ev.Event | None = None
    stopped: signals.Signalled | None = None
    with signals.Guard() as guard:
        try:
            try:
                runner.submit(job)
                final = wait(runner, bar, guard)
            except signals.Signalled as stop:
                stopped = stop
                runner.cancel()  # first: after SIGHUP the terminal may refuse the note below
                bar.note(signals.cancelling_note(stop))
                final = wait(runner, bar, guard, CANCEL_WAIT)
                if final is None and runner.busy:
                    bar.note(f"The server did not confirm the cancel within {CANCEL_WAIT:.0f} s; "
                             "its job may go on there.")
            guard.closing()
            runner.close()  # a RunComfy machine launched here is stopped now
        except signals.Stop as stop:  # a signal while cancelling or closing: leave now
            if final is None:
                bar.note(f"Stopped waiting ({stop.why}): the job may go on on the server"
                         " (and bill, on a hosted service).")
            left = signals.machine_note(backend)
            if left:
                bar.note(left)
            return stop.exit_code
    # A machine still billing is always named; a stopped one only after a signal, which asks
    # what was left behind.
    left = signals.machine_note(backend, say_stopped=stopped is not None)
    if isinstance(final, ev.JobFinished):
        bar.note(f"Done: {len(final.outputs)} file(s) in {job.out_dir}")
        code = 0
    elif isinstance(final, ev.JobFailed):
        bar.note(f"error: {final.message}")
        code = 1
    else:
        # A hosted job's cancel may not be final (RunComfy: "may still finish and be billed").
        if isinstance(final, ev.JobCancelled):
            bar.note(final.message)
        elif stopped is None:
            bar.note(PLAIN_CANCEL)
        code = stopped.exit_code if stopped is not None else 130
    if left:
        bar.note(left)
    return code


def wait(runner: JobRunner, bar: ProgressLine, guard: signals.Guard,
         timeout: float | None = None) -> ev.Event | None:
    """Report events until the job ends (or `timeout` seconds pass); return its final event.
    A signal is raised between two batches of events, never half-way through one."""
    deadline = None if timeout is None else time.monotonic() + timeout
    final = None
    with guard.polled():
        while runner.busy:
            guard.check()
            if deadline is not None and time.monotonic() > deadline:
                return None
            for event in runner.wait_idle(timeout=0.1):
                if isinstance(event, ev.FINAL_EVENTS):
                    final = event
                elif isinstance(event, ev.JobOutput):
                    bar.clear()
                    signals.write(sys.stdout, f"{event.path}\n")
                elif isinstance(event, ev.JobProgress):
                    bar.show(event)
                elif isinstance(event, ev.JobQueued):
                    bar.note("Queued on the server.")
            bar.tick()
    # A signal that came with the last events is not raised: the job has ended, and its
    # final event must not be lost; a signal from now on leaves at once (guard.closing()).
    return final


def media_from_args(args: argparse.Namespace, workflow: Workflow) -> tuple[MediaInput, ...]:
    """--image and --mask as media inputs: NODE=PATH, or PATH for the only loader."""
    given = [(text, False) for text in args.images] + [(text, True) for text in args.masks]
    media = []
    for text, mask in given:
        node, path = _node_and_path(text, workflow)
        if node is None and not mask:
            node = args.image_node
        media.append(MediaInput(node, _input_file(path), mask))
    return tuple(media)


def _node_and_path(text: str, workflow: Workflow) -> tuple[str | None, Path]:
    """NODE=PATH when the text before "=" names a node of the workflow; else a path."""
    node, eq, rest = text.partition("=")
    if eq and not Path(text).exists():
        workflow.node_id(node)  # the error lists the nodes there are
        return node, Path(rest)
    return None, Path(text)


def _input_file(path: Path) -> InputFile:
    try:
        return InputFile.from_path(path)
    except OSError as exc:
        raise ComfyRelayError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def bindings_from_args(args: argparse.Namespace) -> Bindings:
    values = dict(parse_assignment(text) for text in args.values)
    return Bindings(
        image_node=args.image_node,
        prompt=args.prompt,
        seed=args.seed,
        random_seed=args.random_seed,
        denoise=args.denoise,
        values=values,
        outputs=list(args.outputs),
    )


def parse_assignment(text: str) -> tuple[str, Any]:
    key, eq, raw = text.partition("=")
    if not eq or "." not in key:
        raise ComfyRelayError(f"--set {text!r}: write NODE.INPUT=VALUE, e.g. --set 3.steps=20.")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # plain text needs no quotes
    return key.strip(), value


class ProgressLine:
    """On a terminal, one line per job that updates in place: a bar, the percentage, the time
    since the job was sent, the node and its step. When stderr is a file or a pipe, a plain
    line each time another node starts, which logs read better."""

    REDRAW = 1.0  # seconds: the elapsed time moves on a terminal even without new progress

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""
        self.started = time.monotonic()
        self.progress: ev.JobProgress | None = None  # what the terminal line shows
        self.drawn_at = 0.0  # monotonic time of the last drawing; 0: the line is not drawn
        self.width = 0  # characters drawn, to blank them

    def show(self, event: ev.JobProgress) -> None:
        step = f" {event.value}/{event.max}" if event.max else ""
        what = f"{event.node_title or event.node_id}{step}"
        if self.tty:
            self.progress = event
            self._draw()
        elif what.split(" ")[0] != self.last.split(" ")[0]:
            signals.write(self.stream, f"{event.fraction:4.0%} {what}\n")
        self.last = what

    def tick(self) -> None:
        """Redraw the terminal line if its elapsed time is stale (called while waiting)."""
        if self.tty and self.progress is not None and (
            time.monotonic() - self.drawn_at >= self.REDRAW
        ):
            self._draw()

    def _draw(self) -> None:
        event = self.progress
        assert event is not None
        step = f" {event.value}/{event.max}" if event.max else ""
        what = f"{event.node_title or event.node_id}{step}" if (
            event.node_title or event.node_id) else event.message
        filled = int(event.fraction * 20)
        text = (f"[{'#' * filled}{'.' * (20 - filled)}] {event.fraction:4.0%} "
                f"{elapsed(time.monotonic() - self.started)}  {what}")
        # One character short of the width: a full line would wrap on some terminals, and
        # the next \r would then redraw on a new line.
        text = text[: self._columns() - 1]
        # Spaces, not an erase-line escape: Windows consoles show escapes as text.
        signals.write(self.stream, "\r" + text.ljust(self.width))
        self.width = len(text)
        self.drawn_at = time.monotonic()

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            return shutil.get_terminal_size().columns

    def clear(self) -> None:
        if self.tty and self.width:
            signals.write(self.stream, "\r" + " " * self.width + "\r")
            self.width = 0
            self.drawn_at = 0.0  # redrawn at the next tick, below what is written now

    def note(self, text: str) -> None:
        self.clear()
        signals.write(self.stream, text + "\n")


def elapsed(seconds: float) -> str:
    """"0:07", "12:30", "1:02:03"."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


if __name__ == "__main__":
    sys.exit(main())
