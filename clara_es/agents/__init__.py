"""clara-es inside a livekit-agents worker (the `clara-es[agents]` extra): see attach.py."""

try:
    import livekit.agents  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extra
    raise ImportError(
        "clara_es.agents needs livekit-agents: pip install 'clara-es[agents]'"
    ) from exc

from clara_es.agents.attach import Attachment, attach, restart_audio_path
from clara_es.agents.links import HttpLink, Request, SessionLink, StoreLink

__all__ = [
    "Attachment",
    "HttpLink",
    "Request",
    "SessionLink",
    "StoreLink",
    "attach",
    "restart_audio_path",
]
