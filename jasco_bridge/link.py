"""Ableton Link as a transport source (PyPI `aalink`, the optional extra `link`).

A Link session gives tempo and bar phase to every peer on the network:

    link = LinkSession.join(bpm=120.0)       # joins (or starts) the Link session on the network
    transport = Transport(link=link)         # Link wins while another peer is there
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jasco_bridge.errors import ConfigError
from jasco_bridge.transport import TransportReading


class LinkSession:
    """One Link peer. Link has tempo and beat phase; with no other peer it says nothing."""

    def __init__(self, link: Any) -> None:
        self._link = link

    @classmethod
    def join(cls, bpm: float = 120.0) -> LinkSession:
        """Enable Link (call it on a running asyncio loop: aalink schedules on it)."""
        try:
            import aalink
        except ImportError:
            raise ConfigError(
                "--link needs the aalink package: pip install 'jasco-bridge[link]'"
            ) from None
        link = aalink.Link(bpm)
        link.enabled = True
        return cls(link)

    @property
    def peers(self) -> int:
        return int(self._link.num_peers)

    @property
    def tempo(self) -> float:
        return float(self._link.tempo)

    def reading(self, clock: Callable[[], float], bar_beats: float) -> TransportReading | None:
        if self.peers == 0:
            return None
        # Peers agree on the phase modulo the quantum: one bar makes Link's beat 0 a downbeat.
        self._link.quantum = bar_beats
        beat = float(self._link.beat)
        return TransportReading("link", True, beat, clock(), self.tempo)

    def close(self) -> None:
        self._link.enabled = False
