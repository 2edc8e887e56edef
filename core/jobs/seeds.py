"""The seed control a host offers next to a seed field: fixed, random or increment.

The rule runs before each run and the field then shows the seed that run used, so the field,
the result and its history entry always agree (ComfyUI's frontend changes the field after a
run instead, so its field shows the next seed, not the one behind the image on screen).
"""

from __future__ import annotations

import random
from typing import Literal

from .workflow import MAX_SEED

SeedControl = Literal["fixed", "random", "increment"]
SEED_CONTROLS: tuple[SeedControl, ...] = ("fixed", "random", "increment")
RANDOM_SEEDS = 2**32  # as Bindings.resolve(): random seeds stay below this


def seed_for_run(
    seed: int,
    control: SeedControl,
    *,
    maximum: int | float | None = None,
    rng: random.Random | None = None,
) -> int:
    """The seed the next run uses, from the field's `seed`: fixed keeps it, random picks a
    new one each run, increment adds 1 per run (back to 0 past the top). `maximum` is the
    server's max for the input, if known; seeds never exceed MAX_SEED (the JS frontend's)."""
    top = MAX_SEED if maximum is None else int(min(maximum, MAX_SEED))
    if control == "random":
        return (rng or random).randint(0, min(top, RANDOM_SEEDS - 1))
    if control == "increment":
        return seed + 1 if 0 <= seed < top else 0
    return seed
