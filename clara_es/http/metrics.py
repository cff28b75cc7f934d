"""Prometheus metrics: counted as commands run, the rest read from the views at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from clara_es.http.service import Service

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry()
        self.commands = Counter(
            "clara_es_commands", "Commands received over HTTP, by type and outcome.",
            ["command", "outcome"], registry=self.registry,
        )
        self.registry.register(_Scraped(service))

    def count(self, command: str, status: int) -> None:
        self.commands.labels(command, OUTCOMES.get(status, f"http_{status}")).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


OUTCOMES = {200: "ok", 201: "ok", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
            409: "refused", 422: "invalid", 500: "error"}


class _Scraped(Collector):
    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        s = self.service
        retries = CounterMetricFamily(
            "clara_es_concurrency_retries", "Commands decided again after losing a race."
        )
        retries.add_metric([], s.app.conflicts_retried)
        yield retries
        feeds = GaugeMetricFamily("clara_es_live_feeds", "Open live (SSE) feeds.")
        feeds.add_metric([], s.changes.listeners)
        yield feeds
        try:
            lag, by_state = s.reads.lag(), s.reads.sessions_by_state()
            timers, effects = s.reads.pending_timers(), s.reads.effects()
        except Exception as exc:  # a scrape reports what it can; /readyz says what is wrong
            log.warning("metrics from the views unavailable: %s", exc)
            return
        lag_family = GaugeMetricFamily(
            "clara_es_projection_lag", "Events a view is behind the event log.", labels=["view"]
        )
        for view, behind in lag.items():
            lag_family.add_metric([view], behind)
        yield lag_family
        sessions = GaugeMetricFamily(
            "clara_es_sessions", "Sessions by connection state.", labels=["state"]
        )
        for state, n in sorted(by_state.items()):
            sessions.add_metric([state], n)
        yield sessions
        pending = GaugeMetricFamily(
            "clara_es_pending_timers", "Reconnect attempts scheduled and not yet made."
        )
        pending.add_metric([], timers)
        yield pending
        yield from _backlog(s)
        effect_family = CounterMetricFamily(
            "clara_es_effects", "Side effects by outcome (event type).", labels=["outcome"]
        )
        for outcome, n in sorted(effects.items()):
            effect_family.add_metric([outcome], n)
        yield effect_family


def _backlog(service: Service) -> Iterator[Metric]:
    try:
        due = service.reads.backlog()
    except Exception as exc:
        log.warning("due-work backlog unavailable: %s", exc)
        return
    jobs = GaugeMetricFamily(
        "clara_es_due_backlog", "Timers and effects past their due time, not being worked on."
    )
    jobs.add_metric([], due.jobs)
    yield jobs
    oldest = GaugeMetricFamily(
        "clara_es_due_oldest_overdue_seconds", "How long the most overdue waiting job is late."
    )
    oldest.add_metric([], due.oldest_overdue_s)
    yield oldest
    behind = GaugeMetricFamily(
        "clara_es_process_manager_lag", "Session facts the due-work rows are behind the log."
    )
    behind.add_metric([], due.facts_behind)
    yield behind
