"""`comfyrelay machines|workflows|deployments|comfy-api` and the hosted options of `run`.

Tokens are read from the environment or the credentials file, never from arguments (they
would show in `ps` and the shell history).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..comfyapi.api_backend import DEFAULT_API as COMFY_API
from ..comfyapi.kind import ComfyApiSettings, comfy_api_backend
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend
from ..jobs.workflow import Workflow
from ..kinds import DEFAULT_KIND, KINDS, BackendSettings, load_credentials, make_backend
from ..runcomfy import account
from ..runcomfy import api as runcomfy
from ..runcomfy.ledger import Ledger
from ..runcomfy.machine import MachineOptions, RunComfyMachineBackend, describe, find_running
from ..runcomfy.serverless import RunComfyServerless
from . import signals


def register(subparsers: Any) -> None:
    """Add the hosted commands to the `comfyrelay` parser's subcommands."""
    machines = subparsers.add_parser("machines", help="RunComfy machines (they cost money)")
    acts = machines.add_subparsers(dest="action", required=True)
    listing = acts.add_parser("list", help="running machines, with time left")
    listing.add_argument("--json", action="store_true")
    launch = acts.add_parser("launch", help="launch a machine (or reuse a running one)")
    launch.add_argument(
        "--workflow-version", required=True, help="version_id (see comfyrelay workflows)"
    )
    launch.add_argument("--server-type", default="medium", choices=runcomfy.SERVER_TYPES)
    launch.add_argument("--minutes", type=int, default=60, help="running time before it stops")
    launch.add_argument("--wait", action="store_true", help="wait until it is Ready")
    status = acts.add_parser("status", help="one machine's status")
    status.add_argument("server_id")
    extend = acts.add_parser("extend", help="add running time to a machine")
    extend.add_argument("server_id")
    extend.add_argument("--minutes", type=int, default=30)
    stop = acts.add_parser("stop", help="stop a machine now (billing ends)")
    stop.add_argument("server_id", nargs="?")
    stop.add_argument("--all", action="store_true", help="every machine in the ledger")
    workflows = subparsers.add_parser("workflows", help="your RunComfy workflows and version ids")
    deployments = subparsers.add_parser("deployments", help="RunComfy Serverless deployments")
    dacts = deployments.add_subparsers(dest="action", required=True)
    dlist = dacts.add_parser("list")
    dlist.add_argument("--json", action="store_true")
    show = dacts.add_parser("show", help="a deployment and the inputs its workflow offers")
    show.add_argument("deployment_id")
    show.add_argument("--json", action="store_true")
    for parser in (listing, launch, status, extend, stop, workflows, dlist, show):
        add_api_url(parser, runcomfy.DEFAULT_API)
    machines.set_defaults(func=cmd_machines)
    workflows.set_defaults(func=cmd_workflows)
    deployments.set_defaults(func=cmd_deployments)
    comfy_api = subparsers.add_parser(
        "comfy-api", help="the Comfy API v2: Comfy Cloud, a deployment or comfy-api-proxy"
    )
    capi = comfy_api.add_subparsers(dest="action", required=True)
    ccheck = capi.add_parser("check", help="reach the server and check the API key")
    ccheck.add_argument("--api-url", default=COMFY_API,
                        help=f"API base URL (default {COMFY_API}; e.g. http://127.0.0.1:8189 "
                        "for a local comfy-api-proxy)")
    comfy_api.set_defaults(func=cmd_comfy_api)


def add_api_url(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--api-url", default=default,
        help=f"hosted API base URL (default {default or 'the service default'}; RunComfy also "
        "has https://beta-api.runcomfy.net; comfy-api: a deployment's or a local "
        "comfy-api-proxy's URL)",
    )


def add_backend_arguments(run: argparse.ArgumentParser) -> None:
    """Options of `comfyrelay run` that choose and configure the back end: `--backend` and
    every kind's own options (core/kinds.py)."""
    group = run.add_argument_group("back end (credentials come from the environment)")
    group.add_argument("--backend", choices=KINDS.names(), default=DEFAULT_KIND)
    for option in KINDS.cli_options():
        option.add_to(group)


def settings_from_args(args: argparse.Namespace) -> BackendSettings:
    name = getattr(args, "backend", DEFAULT_KIND)
    several = len(getattr(args, "server", None) or []) > 1
    if name == DEFAULT_KIND and (getattr(args, "pools", None) or several):
        name = "pool"  # --pool, or several --server: one job list over them all
    kind = KINDS.get(name)
    return BackendSettings(kind.name, kind.from_args(args))


def backend_from_args(args: argparse.Namespace) -> Backend:
    return make_backend(settings_from_args(args), load_credentials())


# ---- commands ----
def _server(args: argparse.Namespace) -> runcomfy.RunComfyServer:
    return account.machine_api(load_credentials(), args.api_url or "")


def cmd_machines(args: argparse.Namespace) -> int:
    server = _server(args)
    ledger = Ledger()
    try:
        return {"list": _list, "launch": _launch, "status": _status, "extend": _extend,
                "stop": _stop}[args.action](args, server, ledger)
    finally:
        server.close()


def _list(args: argparse.Namespace, server: runcomfy.RunComfyServer, ledger: Ledger) -> int:
    found = find_running(server, ledger)
    if args.json:
        print(json.dumps([
            {**r.machine.model_dump(), "time_left": r.time_left(), "in_ledger": r.in_ledger}
            for r in found
        ], indent=2))
        return 0
    if not found:
        print("No RunComfy machines are running.")
    for r in found:
        origin = "" if r.in_ledger else "  (not launched by ComfyRelay)"
        print(f"{r.machine.server_id}  {r.machine.current_status:<10} "
              f"{r.machine.server_type:<11} {describe(r.time_left())} left{origin}")
    return 0


def _machine_backend(
    server: runcomfy.RunComfyServer, ledger: Ledger, *, server_id: str = "", **options: Any
) -> RunComfyMachineBackend:
    # The CLI manages machines explicitly: no idle stop, nothing stopped on exit.
    chosen = MachineOptions(idle_stop=None, stop_on_close=False, **options)
    return RunComfyMachineBackend(server, chosen, server_id=server_id, ledger=ledger)


def _launch(args: argparse.Namespace, server: runcomfy.RunComfyServer, ledger: Ledger) -> int:
    backend = _machine_backend(server, ledger, workflow_version_id=args.workflow_version,
                               server_type=args.server_type, duration=args.minutes * 60)
    try:
        backend.launch_or_reuse()
        verb = "Launched" if backend.launched_here else "Reusing running"
        print(f"{verb} machine {backend.server_id}", file=sys.stderr)
        if args.wait:
            backend.ensure_ready()
            print(f"Ready; {describe(backend.time_left())} left.", file=sys.stderr)
        print(backend.server_id)
    except signals.Signalled:
        # Stopping the wait does not stop the machine, which bills from Ready: say so.
        note = signals.machine_note(backend) or (
            "The launch may have reached RunComfy: see `comfyrelay machines list`.")
        signals.write(sys.stderr, note + "\n")
        raise
    finally:
        backend.close()  # stop_on_close is off: only the watchdog ends
    return 0


def _status(args: argparse.Namespace, server: runcomfy.RunComfyServer, ledger: Ledger) -> int:
    machine = server.machine(args.server_id)
    if machine is None:
        print(f"RunComfy does not know machine {args.server_id} (stopped, or just launched).")
        return 1
    entry = ledger.get(args.server_id)
    stop = machine.stop_epoch() or (entry.expected_stop if entry else None)
    left = None if stop is None else max(0.0, stop - time.time())
    print(f"{machine.server_id}  {machine.current_status}  {machine.server_type}  "
          f"{describe(left)} left")
    return 0


def _extend(args: argparse.Namespace, server: runcomfy.RunComfyServer, ledger: Ledger) -> int:
    backend = _machine_backend(server, ledger, server_id=args.server_id)
    if backend.refresh() is None:
        raise ComfyRelayError(f"RunComfy does not know machine {args.server_id}.")
    left = backend.extend(args.minutes * 60)
    print(f"Extended {args.server_id} by {args.minutes} min; {describe(left)} left.")
    return 0


def _stop(args: argparse.Namespace, server: runcomfy.RunComfyServer, ledger: Ledger) -> int:
    ids = [e.server_id for e in ledger.entries()] if args.all else [args.server_id]
    if not all(ids) or not ids:
        raise ComfyRelayError("Name the machine to stop (its server_id), or use --all.")
    for server_id in ids:
        entry = ledger.get(server_id)
        # A machine launched a moment ago may still answer 404: keep asking for a minute.
        until = entry.launched_at + 60.0 if entry else 0.0
        stopped = server.stop(server_id, not_found_until=until)
        ledger.remove(server_id)
        print(f"{server_id}: {'stopped' if stopped else 'was already stopped'}")
    return 0


def cmd_workflows(args: argparse.Namespace) -> int:
    server = _server(args)
    try:
        for wf in server.workflows():
            print(f"{wf.version_id}  {wf.workflow_name or wf.workflow_id}")
    finally:
        server.close()
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    creds = load_credentials()
    account.require_tokens(creds)
    client = RunComfyServerless(account.tokens(creds), api_url=args.api_url)
    try:
        if args.action == "list":
            found = client.deployments(payload=False)
            if args.json:
                print(json.dumps([d.model_dump() for d in found], indent=2, default=str))
            for d in [] if args.json else found:
                print(f"{d.id}  {d.name:<30} {','.join(d.hardware):<12} {d.status}")
            return 0
        d = client.deployment(args.deployment_id)
        if args.json:
            print(json.dumps(d.model_dump(), indent=2, default=str))
            return 0
        print(f"{d.id}  {d.name}  {','.join(d.hardware)}  instances {d.min_instances}-"
              f"{d.max_instances}  {d.status}")
        graph = d.payload.workflow_api_json if d.payload else None
        for item in Workflow(graph, d.name).inputs() if graph else []:
            print(f"  {item.key:<24} {item.kind:<8} {item.node_title} = "
                  f"{json.dumps(item.value)[:60]}")
        return 0
    finally:
        client.close()


def cmd_comfy_api(args: argparse.Namespace) -> int:
    backend = comfy_api_backend(ComfyApiSettings(api_url=args.api_url), load_credentials())
    try:
        print(backend.check())
    finally:
        backend.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The hosted commands alone (the full `comfyrelay` command includes them)."""
    parser = argparse.ArgumentParser(prog="comfyrelay")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ComfyRelayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
