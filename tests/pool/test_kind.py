"""The pool kind through the registry: both hosts' session builds it from its host field
(the pool file) and shows its box, per-worker progress and the estimate, with no host
change."""

from __future__ import annotations

from pathlib import Path

from comfyrelay import KINDS, HostSession, HostSettings, RunEnded

from tests.hosted import isolated, pump_until  # noqa: F401  (isolated: autouse)
from tests.pool import helpers as h


def test_the_hosts_session_runs_a_pool_and_shows_each_worker(tmp_path: Path) -> None:
    assert "pool_file" in KINDS.kind_fields("pool")  # what both hosts show for it
    with h.servers(tmp_path, 2) as found:
        pool = h.pool_file(tmp_path / "pool.json", [
            {"kind": "comfyui", "url": s.url, "name": f"pc{n}", "seconds_per_job": 0.5}
            for n, s in enumerate(found)])
        chosen = HostSettings(backend="pool", pool_file=str(pool))
        session = HostSession()
        session.configure(chosen.backend_settings(), chosen.credentials())
        box = next(c for c in session.view.controls if c.title == "Pool")
        assert box.lines[:2] == ("pc0: idle, 0 done, 0 in flight",
                                 "pc1: idle, 0 done, 0 in flight")
        assert "Estimate per job: $0.0000" in box.lines[2]  # shown before Run
        run = session.start_run("frames")
        for job in h.jobs(tmp_path, 6):
            session.submit(run, job)
        seen: list[object] = []
        pump_until(session, lambda: session.run is None, seen)
        box = next(c for c in session.view.controls if c.title == "Pool")
        session.close()
    done = [int(line.split(", ")[1].split()[0]) for line in box.lines[:2]]
    assert sum(done) == 6 and all(n > 0 for n in done), box.lines
    ended = next(e for e in seen if isinstance(e, RunEnded))
    assert ended.record is not None and ended.record.backend == "pool"
    assert ended.record.cost == 0.0  # the run's history entry: two free servers...
    assert ended.record.estimate == 0.0  # ...beside what was expected
    assert "cost 0.00 (estimate 0.00)" in ended.record.describe()
