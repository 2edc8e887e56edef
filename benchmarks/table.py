"""What every benchmark reports: rows of figures, each the median of several runs.

Absolute times drift on shared machines, so the figures that matter are ratios and
distributions measured side by side in one run; the raw per-run values travel with each row
so the JSON shows the spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from pydantic import BaseModel


class Row(BaseModel):
    benchmark: str  # "responsiveness", "overhead", "batch", "transfer", "encode"
    case: str  # what was measured, e.g. "blender 1920×1080: everything else, p99"
    value: float  # the median of `runs`
    unit: str  # "ms", "×", "MB/s", "MB", ...
    runs: list[float]
    target: str = ""  # e.g. "< 10 ms"; empty when the row only informs
    met: bool | None = None  # None when there is no target


def row(
    benchmark: str,
    case: str,
    runs: Sequence[float],
    unit: str,
    target: str = "",
    check: Callable[[float], bool] | None = None,
) -> Row:
    value = statistics.median(runs)
    return Row(
        benchmark=benchmark,
        case=case,
        value=value,
        unit=unit,
        runs=[round(r, 4) for r in runs],
        target=target,
        met=None if check is None else check(value),
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile by nearest rank (no interpolation: a real observed slice)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def render(rows: Sequence[Row]) -> str:
    """A plain-text table, one line per row, grouped by benchmark."""
    head = ("benchmark", "case", "median", "runs", "target")
    lines = [
        (
            r.benchmark,
            r.case,
            f"{r.value:.4g} {r.unit}",
            str(len(r.runs)),
            "" if r.met is None else f"{r.target} {'met' if r.met else 'MISSED'}",
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)
