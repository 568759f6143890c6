"""The control surface object Live talks to (the plain MIDI Remote Script interface).

Live calls `update_display` about ten times a second on its main thread: that tick polls the
socket. `build_midi_map` asks Live to forward the trigger control changes, which then arrive
in `receive_midi`. Nothing here blocks.
"""

from . import settings
from .companion import Companion
from .live_adapter import LiveAdapter
from .udp_link import UdpLink

_CONTROL_CHANGE = 0xB0
_ACTIONS = {
    settings.RENDER_CC: "render",
    settings.CANCEL_CC: "cancel",
    settings.ANOTHER_TAKE_CC: "another_take",
}


class JascoSurface:
    def __init__(self, c_instance: object) -> None:
        self._live = LiveAdapter(c_instance)
        self._link = UdpLink(
            (settings.DAEMON_HOST, settings.DAEMON_PORT),
            (settings.LISTEN_HOST, settings.LISTEN_PORT),
        )
        self.companion = Companion(self._live, self._link)
        if not self._link.listening:
            self._live.log(
                f"port {settings.LISTEN_PORT} is taken; OSC triggers are off "
                "(MIDI triggers still work)"
            )
        self.companion.hello()

    # -- called by Live

    def update_display(self) -> None:
        self.companion.tick()

    def build_midi_map(self, midi_map_handle: object) -> None:
        for cc in _ACTIONS:
            self._live.forward_control_change(midi_map_handle, settings.TRIGGER_CHANNEL, cc)

    def receive_midi(self, midi_bytes: tuple) -> None:
        if len(midi_bytes) != 3 or midi_bytes[0] != _CONTROL_CHANGE | settings.TRIGGER_CHANNEL:
            return
        action = _ACTIONS.get(midi_bytes[1])
        if action is not None and midi_bytes[2] > 0:  # 0 is the button's release
            self.companion.trigger(action)

    def disconnect(self) -> None:
        self._link.close()

    def refresh_state(self) -> None:
        pass  # nothing is shown on a controller, so nothing to resend

    def connect_script_instances(self, instanciated_scripts: object) -> None:
        pass  # works alone

    def can_lock_to_devices(self) -> bool:
        return False

    def suggest_input_port(self) -> str:
        return ""

    def suggest_output_port(self) -> str:
        return ""
