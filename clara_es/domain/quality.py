"""Connection quality and the agent's audio pipeline.

A poor (or lost) reading is only a change of quality; QualityPoor is recorded when it held for
a whole window (`confirm_poor_quality`), so flapping quality never restarts the pipeline. The
process manager answers QualityPoor by asking for a pipeline restart, at most `cap` times per
poor-quality episode (quality good again starts a new episode), waiting `restart_delay` after a
failed restart; at the cap the session gives up and is cleaned up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clara_es.domain.cleanup import CleanupRules
from clara_es.domain.errors import InvalidTransition
from clara_es.domain.events import (
    AgentErrorReported,
    AgentSessionClosed,
    PipelineRestartClaimed,
    PipelineRestarted,
    PipelineRestartFailed,
    PipelineRestartRequested,
    QualityChanged,
    QualityPoor,
)
from clara_es.domain.signal import Signal
from clara_es.domain.state import BAD_QUALITY, Quality

NO_AGENT_ANSWERED = "no agent answered"
POOR_WINDOW = timedelta(seconds=3)  # the default: poor or lost this long is QualityPoor


class QualityRules(CleanupRules):
    def change_quality(self, participant: str, quality: Quality, signal: Signal) -> None:
        """The agent saw the participant's connection quality change. Repeats record nothing."""
        self._require_participant(participant)
        if self.is_final:
            self._ignore(signal, f"quality {quality} reported after the session was {self.state}")
            return
        if quality == self.quality:
            return
        self._record(
            QualityChanged, signal,
            participant=participant, quality=str(quality), previous=str(self.quality),
        )

    def confirm_poor_quality(
        self, participant: str, signal: Signal, since: datetime | None = None
    ) -> None:
        """The participant's quality stayed poor (or lost) for the whole window. A timer that
        watched the spell begun at `since` confirms nothing for a later spell."""
        self._require_participant(participant)
        if self.is_final:
            self._ignore(signal, f"poor quality confirmed after the session was {self.state}")
        elif self.quality not in BAD_QUALITY:
            self._ignore(signal, f"quality recovered to {self.quality} within the window")
        elif since is not None and since != self.poor_since:
            self._ignore(signal, f"quality recovered within the window; a later spell began "
                                 f"at {self.poor_since}")
        elif self.poor_confirmed:
            self._ignore(signal, "poor quality already confirmed for this spell")
        else:
            self._record(QualityPoor, signal, participant=participant, quality=str(self.quality))

    def poor_window_ends_at(self, window: timedelta) -> datetime | None:
        """When the current poor-or-lost spell becomes QualityPoor if it lasts: the one rule
        for the agent's monitor and the service's timer (raw quality reports over HTTP)."""
        if self.poor_since is None or self.poor_confirmed or self.is_final:
            return None
        return self.poor_since + window

    @property
    def quality_bad(self) -> bool:
        return self.quality in BAD_QUALITY

    def request_pipeline_restart(self, cap: int, signal: Signal) -> None:
        """Quality is poor: restart the agent's audio pipeline, or give up at the cap."""
        if self.cleanup_request is not None or self.is_final:
            self._ignore(signal, f"pipeline restart while the session is {self.state}")
        elif not self.quality_bad:
            self._ignore(signal, f"quality is {self.quality}: no pipeline restart needed")
        elif self.restart_request is not None:
            self._ignore(signal, f"pipeline restart {self.restart_request} has no outcome yet")
        elif self.reconnection_attempts >= cap:
            self.request_cleanup(f"{cap} pipeline restarts did not bring the participant back",
                                 signal)
        else:
            self._record(
                PipelineRestartRequested, signal,
                request_id=signal.id, restart=self.reconnection_attempts + 1, cap=cap,
            )

    def claim_pipeline_restart(self, request_id: str, agent: str, signal: Signal) -> None:
        """An agent takes the pending restart on. A second agent is refused (nothing recorded),
        so two agents never both restart; the same agent claiming again records nothing."""
        if request_id != self.restart_request:
            raise InvalidTransition(f"pipeline restart {request_id} is not pending")
        if self.is_final:
            raise InvalidTransition(f"pipeline restart {request_id}: the session is {self.state}")
        if self.restart_claimed_by == agent:
            return
        if self.restart_claimed_by is not None:
            raise InvalidTransition(
                f"pipeline restart {request_id} is already claimed by {self.restart_claimed_by}"
            )
        self._record(PipelineRestartClaimed, signal, request_id=request_id, agent=agent)

    def report_agent_error(
        self, source: str, error: str, recoverable: bool, signal: Signal
    ) -> None:
        self._record(AgentErrorReported, signal, source=source, error=error,
                     recoverable=recoverable)

    def report_agent_closed(self, reason: str, error: str, signal: Signal) -> None:
        self._record(AgentSessionClosed, signal, reason=reason, error=error)

    def time_out_pipeline_restart(self, request_id: str, signal: Signal) -> None:
        """No agent reported the restart by its deadline: it failed, and the cap goes on."""
        agent = self.restart_claimed_by if request_id == self.restart_request else None
        error = NO_AGENT_ANSWERED + (f" ({agent} claimed it, then went silent)" if agent else "")
        self.finish_pipeline_restart(request_id, error, signal)

    def finish_pipeline_restart(self, request_id: str, error: str | None, signal: Signal) -> None:
        """The agent's pipeline restarted (error None) or could not (error says why). Once the
        session is final, a restart's outcome (or its deadline, which the process manager may
        fire before it has applied the Failed) changes nothing."""
        if self.is_final:
            self._ignore(signal, f"pipeline restart {request_id} ended after the session was "
                                 f"{self.state}")
        elif request_id != self.restart_request:
            self._ignore(signal, f"pipeline restart {request_id} has no outcome pending")
        elif error is None:
            self._record(
                PipelineRestarted, signal, request_id=request_id, restart=self.reconnection_attempts
            )
        else:
            self._record(
                PipelineRestartFailed, signal,
                request_id=request_id, restart=self.reconnection_attempts, error=error,
            )

    def next_restart_at(self, failed: PipelineRestartFailed) -> datetime:
        """When to try again after a failed restart: the session's own backoff. (A restart
        that failed after quality recovered and turned bad again counts as the first.)"""
        policy = self.backoff
        n = min(max(failed.restart, 1), policy.max_attempts)
        return failed.timestamp + timedelta(milliseconds=policy.delay_ms(n, key=str(self.id)))

