"""`serve --midi-in PORT`: chord notes played on a live MIDI input, recorded into the default session.

The port's backend calls us on its own thread; each message is handed to the event loop, where
a `ClockedRecorder` (midi/live.py) turns it into notes at the beat of the sequencer's MIDI clock
and each completed note is added to the default session's chord notes, as
`/jasco/chords/note` would add it. See docs/osc.md, "Live MIDI input".
"""

from __future__ import annotations

import asyncio
import logging

import mido

from jasco_bridge.errors import BridgeError
from jasco_bridge.session import SessionStore
from midi.errors import MidiError
from midi.live import ClockedRecorder, open_live_input

logger = logging.getLogger(__name__)


class LiveChordRecording:
    """Records from one MIDI input port until `close()`."""

    def __init__(self, sessions: SessionStore, loop: asyncio.AbstractEventLoop) -> None:
        self._sessions = sessions
        self._loop = loop
        self.recorder = ClockedRecorder()
        self._port: mido.ports.BaseInput | None = None

    def open(self, port_name: str) -> str:
        """Open the port (LiveInputError names the available ones); returns its full name."""
        self._port = open_live_input(port_name, callback=self._from_backend_thread)
        return self._port.name

    def _from_backend_thread(self, message: mido.Message) -> None:
        try:
            self._loop.call_soon_threadsafe(self.receive, message)
        except RuntimeError:  # the loop closed while the port was still delivering
            pass

    def receive(self, message: mido.Message) -> None:
        """One MIDI message, on the event loop."""
        for note in self.recorder.feed(message):
            try:
                told = self._sessions.get().add_chord_note(
                    note.start_beat, note.duration_beats, note.pitch, note.velocity
                )
            except (BridgeError, MidiError) as exc:
                logger.warning("live MIDI note not recorded: %s", exc)
                continue
            for text in told:  # e.g. the chord symbols sent before were dropped
                logger.info("live MIDI: %s", text)

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None
