"""Wall-clock phase timers and the progress line. Local; no MPI."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Timers:
    """Accumulated wall time per named phase: ``with timers("halo"): ...``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


class Progress:
    """Rank 0's progress line: tick, ticks/s, agent-ticks/s and ETA, every few seconds."""

    def __init__(self, total_ticks: int, n_agents: int, every_s: float, enabled: bool,
                 stream=sys.stderr):
        self.total = total_ticks
        self.n_agents = n_agents
        self.every = every_s
        self.enabled = enabled and total_ticks > 0
        self.stream = stream
        self.t0 = time.perf_counter()
        self.last = self.t0

    def update(self, tick: int) -> None:
        """Print a line if ``every_s`` seconds passed since the last one. Local."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < self.every and tick < self.total:
            return
        self.last = now
        elapsed = now - self.t0
        rate = tick / elapsed if elapsed > 0 else 0.0
        eta = (self.total - tick) / rate if rate > 0 else float("inf")
        self.stream.write(f"tick {tick}/{self.total} ({100.0 * tick / self.total:5.1f}%)  "
                          f"{rate:8.1f} ticks/s  {rate * self.n_agents:10.3e} agent-ticks/s  "
                          f"ETA {format_seconds(eta)}\n")
        self.stream.flush()


def format_seconds(s: float) -> str:
    """'1h02m', '3m05s' or '4.2 s'."""
    if s != s or s == float("inf"):
        return "?"
    if s >= 3600:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    if s >= 60:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{s:.1f} s"
