"""A worker whose store is away backs off and logs a summary, not a line per poll."""

from __future__ import annotations

import logging

import pytest

from clara_es.process.worker import StoreOutage


def test_a_store_outage_is_logged_at_doubling_counts_and_waits_longer_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="clara_es.process.worker")
    outage = StoreOutage(poll_s=0.2)
    delays = []
    for _ in range(20):
        outage.failed(ConnectionRefusedError("connection refused\nmore detail"))
        delays.append(outage.delay())
    outage.recovered()
    outage.recovered()  # nothing more to say
    lines = [r.getMessage() for r in caplog.records]
    assert [m.split()[1] for m in lines[:-1]] == [
        "failures=1", "failures=2", "failures=4", "failures=8", "failures=16"]
    assert all("error='ConnectionRefusedError: connection refused'" in m for m in lines[:-1])
    assert lines[-1].startswith("event=store_reachable failures=20 ")
    assert delays[:4] == [0.4, 0.8, 1.6, 3.2]
    assert max(delays) == StoreOutage.MOST_S == delays[-1]
    assert not any(r.exc_info for r in caplog.records)
