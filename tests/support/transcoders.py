"""eventsourcing's stock JSON transcoder and clara-es's orjson one, with the same transcodings."""

from __future__ import annotations

from eventsourcing.persistence import JSONTranscoder

from clara_es.adapters.transcoder import OrjsonTranscoder
from clara_es.application import VoiceSessions


def transcoders() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    app = VoiceSessions({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    stock, fast = JSONTranscoder(), OrjsonTranscoder()
    app.register_transcodings(stock)
    app.register_transcodings(fast)
    return stock, fast
