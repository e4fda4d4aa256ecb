"""A number of seconds as a person reads it: the cost tables' measured times and preflight's estimate."""

from __future__ import annotations

import math
from collections.abc import Sequence

# Each ladder: (below this many seconds, the unit shown, digits). A measured cost keeps its digits and stops at
# hours (tempered.costs); an estimate is rough, so it rounds harder and goes on to days (tempered.preflight).
MEASURED = ((120, "s", 1), (7200, "min", 1), (math.inf, "h", 2))
ESTIMATED = ((120, "s", 0), (3600, "min", 0), (48 * 3600, "h", 1), (math.inf, "days", 1))
_SECONDS_PER = {"s": 1, "min": 60, "h": 3600, "days": 86400}


def duration(seconds: float, ladder: Sequence[tuple[float, str, int]] = MEASURED) -> str:
    """'42.2 s', '60.0 min', '2.50 h' (MEASURED); '42 s', '3.5 days' (ESTIMATED). NaN takes the last unit."""
    _, unit, digits = next((step for step in ladder if seconds < step[0]), ladder[-1])
    return f"{seconds / _SECONDS_PER[unit]:.{digits}f} {unit}"
