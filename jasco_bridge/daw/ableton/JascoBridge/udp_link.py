"""The script's one UDP socket: sends to the daemon, receives its replies and OSC triggers.

Non-blocking: `poll()` is called from Live's update tick and only takes what has already
arrived, so Live's thread never waits on the network.
"""

import socket

from . import oscwire

_MAX_DATAGRAMS_PER_POLL = 256  # a burst of progress replies never stalls one tick
_MAX_DATAGRAM_BYTES = 65536


class UdpLink:
    def __init__(self, daemon: tuple[str, int], listen: tuple[str, int]) -> None:
        self.daemon = daemon
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.listening = True
        try:
            self._sock.bind(listen)
        except OSError:
            # Another Live or script has the port: replies still come back to a free port.
            self._sock.bind((listen[0], 0))
            self.listening = False

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def send(self, address: str, *args: oscwire.Arg) -> None:
        try:
            self._sock.sendto(oscwire.encode(address, *args), self.daemon)
        except OSError:
            # A full buffer, or an ICMP error from an earlier send while the daemon was down:
            # never raise into Live's thread; the missing answer is reported by the companion.
            pass

    def poll(self) -> list[tuple[str, tuple[oscwire.Arg, ...]]]:
        """The OSC messages that have arrived since the last poll (never waits)."""
        messages = []
        for _ in range(_MAX_DATAGRAMS_PER_POLL):
            try:
                data, _sender = self._sock.recvfrom(_MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ICMP "port unreachable" from a send while the daemon was down.
                continue
            decoded = oscwire.decode(data)
            if decoded is not None:
                messages.append(decoded)
        return messages

    def close(self) -> None:
        self._sock.close()
