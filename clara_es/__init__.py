"""clara-es: LiveKit voice sessions that recover from network blinks, as event streams."""

__version__ = "0.1.0"
