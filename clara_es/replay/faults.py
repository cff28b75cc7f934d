"""The seeded fault schedule of one simulated session: everything it will suffer, decided up
front from (seed, session index), so any session's run can be reproduced on its own."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

# Network drops of every length: a blip, a few seconds, longer than the whole schedule.
OUTAGE_SECONDS = (0.3, 0.8, 2.0, 5.0, 12.0, 25.0, 45.0, 90.0)


class Fault(StrEnum):
    DROP = "network drop"
    DUPLICATE = "duplicated signal"
    LATE = "late signal"
    REORDER = "reordered signals"
    AT_ONCE = "client and agent at once"
    CLEANUP_RACE = "cleanup racing a reconnect"
    CLIENT_CRASH = "client crash mid-attempt"
    WORKER_CRASH = "worker crash and restart"
    QUALITY = "poor quality spell"


@dataclass(frozen=True)
class Outage:
    starts_after: float  # seconds connected before the network drops
    seconds: float
    at_once: bool  # the agent reports the same drop concurrently
    duplicate_report: bool  # the client's disconnect arrives twice
    end_during: bool  # the user ends the session while it reconnects


@dataclass(frozen=True)
class Plan:
    index: int
    outages: list[Outage]
    connect_latency: float
    # per attempt number: what goes wrong around it
    duplicate_timer: frozenset[int] = frozenset()
    late_outcome: frozenset[int] = frozenset()
    reorder_outcome: frozenset[int] = frozenset()
    client_crash: frozenset[int] = frozenset()
    worker_crash_at: float | None = None
    quality_spell: bool = False


def session_random(seed: int, index: int) -> random.Random:
    return random.Random(f"clara-es/simulate/{seed}/{index}")


def plan_for(seed: int, index: int, steps: int) -> Plan:
    """`steps` outages for session `index`, with faults drawn from the seed."""
    rng = session_random(seed, index)

    def chance(p: float, fault: Fault) -> bool:  # fault: for the reader; counted when applied
        return rng.random() < p

    outages = []
    for _ in range(steps):
        outages.append(
            Outage(
                starts_after=rng.uniform(1.0, 20.0),
                seconds=rng.choice(OUTAGE_SECONDS),
                at_once=chance(0.25, Fault.AT_ONCE),
                duplicate_report=chance(0.2, Fault.DUPLICATE),
                end_during=chance(0.05, Fault.CLEANUP_RACE),
            )
        )

    def attempts(p: float, fault: Fault) -> frozenset[int]:
        return frozenset(n for n in range(1, 6) if chance(p, fault))

    return Plan(
        index=index,
        outages=outages,
        connect_latency=rng.uniform(0.05, 1.5),
        duplicate_timer=attempts(0.1, Fault.DUPLICATE),
        late_outcome=attempts(0.08, Fault.LATE),
        reorder_outcome=attempts(0.08, Fault.REORDER),
        client_crash=attempts(0.06, Fault.CLIENT_CRASH),
        worker_crash_at=rng.uniform(0.0, 60.0) if chance(0.03, Fault.WORKER_CRASH) else None,
        quality_spell=chance(0.3, Fault.QUALITY),
    )
