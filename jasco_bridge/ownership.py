"""Who may change a session or cancel a job: the client that started using it.

A client is known by its host address, the same for UDP and TCP: `oscsend` and most DAW
scripts send every datagram from a new port, and `jasco-bridge request` opens a new connection
per request, so a port or a connection would make each message a stranger. The first
per-session message from a host makes that host the session's owner (and a render makes it
its jobs' owner); messages about it from any other host are refused as "not allowed" until the
owner sends `/jasco/reset` or the session is forgotten (least recently used).

On loopback this needs no configuration: everything on this machine that sends from 127.0.0.1
is one client, the producer. Another loopback address (127.0.0.2) is another client. UDP source
addresses can be forged, so ownership stops a second client's mistakes and a forger on another
address, not a forger who can send as the owner's own address: for clients on other machines
the daemon's shared token (`serve --token`) is what authenticates.

A client that gave that token (`/jasco/auth`) holds the daemon's secret: it is the daemon's
user, whatever its address, and may change any session and cancel any job (a tablet running a
controller beside the DAW that feeds the session). Without a configured token nobody is one.
"""

from __future__ import annotations

import ipaddress

from jasco_bridge.errors import RenderError, SessionError
from jasco_bridge.replies import PacketReplies, ReplyChannel, SenderUdpReply, TcpReply
from jasco_bridge.session import Session

TOKEN_HOLDER = "token holder"  # the identity of every client that gave the shared token


def client_of(channel: ReplyChannel) -> str:
    """The host a message came from (IPv4-mapped IPv6 shown as IPv4), "" when unknown."""
    # Wrappers (a controller's feedback, job replies) keep the channel they wrap.
    while not isinstance(channel, (PacketReplies, SenderUdpReply, TcpReply)):
        inner = getattr(channel, "inner", None) or getattr(channel, "channel", None)
        if inner is None:
            return ""
        channel = inner
    if isinstance(channel, PacketReplies):
        if channel.token_holder:
            return TOKEN_HOLDER
        host = channel.host
    elif isinstance(channel, SenderUdpReply):
        host = channel.sender[0]
    elif isinstance(channel, TcpReply):
        host = channel.peer.rpartition(":")[0] or channel.peer
    else:
        return ""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def claim_session(session: Session, client: str) -> None:
    """Make `client` the owner of a session nobody owns; SessionError when another owns it.
    A token holder may use any session and claims none."""
    if client == TOKEN_HOLDER:
        return
    if session.owner is None:
        session.owner = client
    elif session.owner != client:
        raise SessionError(
            f"session {session.name} belongs to another client; not allowed. Use a session of "
            "your own (/jasco/session/<name>/...), ask its client to send /jasco/reset, or send "
            "the daemon's token first (/jasco/auth)"
        )


def check_job_owner(job_owner: str | None, client: str | None, job_id: int) -> None:
    """RenderError when `client` did not queue job `job_id` (None = the daemon itself, and a
    token holder may cancel any job)."""
    if client in (None, TOKEN_HOLDER) or job_owner is None:
        return
    if client != job_owner:
        raise RenderError(f"job {job_id} was queued by another client; not allowed to cancel it")
