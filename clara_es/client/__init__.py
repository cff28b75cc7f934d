"""The Python client of clara-es: the reconnect schedule run locally, facts kept in a durable
outbox and delivered to the service whenever it answers (see session.py)."""

from clara_es.client.outbox import Outbox
from clara_es.client.session import Client
from clara_es.client.transport import HttpTransport, InProcessTransport, Refused, Unreachable

__all__ = ["Client", "HttpTransport", "InProcessTransport", "Outbox", "Refused", "Unreachable"]
