"""Refusals of the domain. Each one means: nothing was appended."""


class DomainError(Exception):
    """A command the session refuses."""


class InvalidTransition(DomainError):
    """The command is not allowed in the session's current state."""


class SessionNotFound(DomainError):
    """No stream exists for that session id."""


class ConcurrencyConflict(DomainError):
    """Other writers kept winning; the command gave up after its retries."""
