"""Client overhead: per-job wall time of a 64×64 invert, four clients, one server, one run.

The clients take turns job by job, so drift on a shared machine hits them alike. ComfyRelay
is timed as a host sees it: from submit() to the final event coming out of poll(), both
straight to the ComfyUI and through comfy-api-proxy (the Comfy API v2) in front of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from comfyrelay import Backend, ComfyUIBackend, InputFile, Job, JobRunner, Workflow
from comfyrelay.comfyapi.api import ComfyApi
from comfyrelay.comfyapi.api_backend import ComfyApiBackend
from comfyrelay.jobs import events as ev

from tests.imaging import gradient_png
from tests.paths import WORKFLOWS
from tests.servers.api_proxy import proxy

from . import seed_flow
from .serve import server
from .table import Row, row

JOBS_PER_RUN = 10
PROXIED = "comfyrelay via comfy-api-proxy"
CLIENTS = ("comfyrelay", "seed 001", "simplified", PROXIED)
Client = Callable[[Path], list[Path]]


def comfyrelay_client(
    url: str, image: Path, backend: Backend | None = None
) -> tuple[Client, Callable[[], None]]:
    runner = JobRunner(backend or ComfyUIBackend(url))
    workflow = Workflow.load(WORKFLOWS / "invert_api.json")
    data = InputFile(image.name, image.read_bytes())

    def run(out: Path) -> list[Path]:
        runner.submit(Job(workflow, out, image=data))
        while True:
            for event in runner.poll():
                if isinstance(event, ev.JobFinished):
                    return list(event.outputs)
                if isinstance(event, ev.FINAL_EVENTS):
                    raise RuntimeError(f"ComfyRelay job ended with {event}")
            time.sleep(0.001)  # a host's timer would tick far less often

    return run, runner.close


def seed_client(url: str, image: Path) -> Client:
    graph = Workflow.load(WORKFLOWS / "invert_api.json").graph
    return lambda out: seed_flow.run(url, graph, image, out)


def simplified_client(url: str, image: Path) -> Client:
    # Imported here: only this client needs the bench extra, not the others that
    # overhead_steps.py borrows from this module.
    from comfy_api_simplified import ComfyApiWrapper

    api = ComfyApiWrapper(url)
    graph = Workflow.load(WORKFLOWS / "invert_api.json").graph

    def run(out: Path) -> list[Path]:
        uploaded = api.upload_image(image)
        graph["1"]["inputs"]["image"] = f"{uploaded['subfolder']}/{uploaded['name']}"
        saved = []
        for name, data in api.queue_and_wait_images(graph, "Save").items():
            path = out / Path(name).name
            path.write_bytes(data)
            saved.append(path)
        return saved

    return run


def timed(client: Client, out: Path) -> float:
    out.mkdir(parents=True)
    started = time.perf_counter()
    outputs = client(out)
    elapsed = time.perf_counter() - started
    if len(outputs) != 1 or not outputs[0].stat().st_size:
        raise RuntimeError(f"expected one output in {out}, got {outputs}")
    return elapsed


def inputs(workdir: Path, names: tuple[str, ...] = CLIENTS) -> dict[str, Path]:
    """The same pixels under one file name per client: ComfyUI reuses the outputs of a graph
    it ran last, so clients sending the very same graph in turn would time its cache."""
    data = gradient_png(64, 64)
    files = {name: workdir / f"in-{n}.png" for n, name in enumerate(names)}
    for path in files.values():
        path.write_bytes(data)
    return files


def medians(clients: dict[str, Client], repeats: int, workdir: Path) -> dict[str, list[float]]:
    """Per client, per repeat: the median ms of JOBS_PER_RUN jobs, the clients taking turns
    job by job after one warm-up job each (connections, imports, caches)."""
    for name, client in clients.items():
        timed(client, workdir / "warm" / name)
    found: dict[str, list[float]] = {name: [] for name in clients}
    for rep in range(repeats):
        times: dict[str, list[float]] = {name: [] for name in clients}
        for n in range(JOBS_PER_RUN):
            for name, client in clients.items():
                times[name].append(timed(client, workdir / f"{rep}-{n}" / name))
        for name, values in times.items():
            found[name].append(sorted(values)[len(values) // 2] * 1000)
    return found


def run(repeats: int, workdir: Path) -> list[Row]:
    image = inputs(workdir)
    with server("comfyui", str(workdir / "server")) as info, \
            proxy(info["url"], workdir / "proxy") as proxy_url:
        url = info["url"]
        relay, close = comfyrelay_client(url, image["comfyrelay"])
        # As a host would: live events on; the input is sent once and then found by hash.
        proxied, close_proxied = comfyrelay_client(
            proxy_url, image[PROXIED], ComfyApiBackend(ComfyApi(proxy_url)))
        clients = {"comfyrelay": relay, "seed 001": seed_client(url, image["seed 001"]),
                   "simplified": simplified_client(url, image["simplified"]), PROXIED: proxied}
        try:
            found = medians(clients, repeats, workdir)
        finally:
            close()
            close_proxied()
    return rows(found)


def rows(medians: dict[str, list[float]]) -> list[Row]:
    relay = medians["comfyrelay"]
    out = [row("overhead", f"64×64 invert per job: {name}", values, "ms")
           for name, values in medians.items()]
    for other, label in (("seed 001", "seed 001 minimal flow"),
                         ("simplified", "comfy-api-simplified 1.6.0")):
        ratios = [a / b for a, b in zip(relay, medians[other], strict=True)]
        out.append(row("overhead", f"ComfyRelay ÷ {label}", ratios, "×"))
    ratios = [a / b for a, b in zip(medians[PROXIED], relay, strict=True)]
    out.append(row("overhead", "ComfyRelay through comfy-api-proxy 0.1.6 ÷ straight to the "
                   "ComfyUI behind it", ratios, "×"))
    return out
