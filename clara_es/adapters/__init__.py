"""Adapters: how clara-es meets storage, LiveKit and HTTP."""
