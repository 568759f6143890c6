"""Zeroconf/Bonjour: advertise the daemon as an `_osc._udp` service so controllers list it.

TouchOSC, Open Stage Control and other OSC apps browse for `_osc._udp` services and show them
by name; picking one fills in the host and port. Advertising only makes sense when the daemon
listens on an address other devices can reach, so a loopback bind (the default) advertises
nothing. python `zeroconf` is an optional extra (`pip install "jasco-bridge[discovery]"`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from jasco_bridge import __version__
from jasco_bridge.errors import ConfigError

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_osc._udp.local."
INSTALL_HINT = 'pip install "jasco-bridge[discovery]"'
_ANY = ("0.0.0.0", "", "::")
# Probing and announcing take under a second on a quiet machine; zeroconf's own blocking call
# gives up after 0.7 s, which a busy machine overruns although the record would register.
_REGISTER_TIMEOUT_SECONDS = 15.0


def should_advertise(host: str, enabled: bool = True) -> bool:
    """Advertise unless turned off or bound to loopback (nobody else could connect)."""
    if not enabled:
        return False
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: it resolves to something reachable, or binding failed


def reachable_addresses(host: str) -> list[str]:
    """The IPv4 addresses to put in the record: the bound one, or every non-loopback one."""
    if host not in _ANY:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            return [socket.gethostbyname(host)]
    import ifaddr  # zeroconf's own dependency

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return found


def service_name(machine: str | None = None) -> str:
    """`jasco-bridge on <machine>`: what a controller shows in its list."""
    machine = machine or socket.gethostname().split(".")[0] or "this computer"
    return f"jasco-bridge on {re.sub(r'[^A-Za-z0-9 _-]', '-', machine)}"[:63]


def service_info(port: int, host: str, tcp_port: int | None = None, name: str | None = None) -> Any:
    """The `zeroconf.ServiceInfo` record the daemon registers."""
    from zeroconf import ServiceInfo

    addresses = reachable_addresses(host)
    if not addresses:
        raise ConfigError(f"no network address to advertise for --host {host}")
    instance = name or service_name()
    properties = {"path": "/jasco/", "version": __version__}
    if tcp_port is not None:
        properties["tcp"] = str(tcp_port)
    server = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "jasco-bridge"
    return ServiceInfo(
        SERVICE_TYPE,
        f"{instance}.{SERVICE_TYPE}",
        port=port,
        parsed_addresses=addresses,
        properties=properties,
        server=f"{server}.local.",
    )


@dataclass
class Advertiser:
    """Registers one record; `start` and `close` block for a moment (call them off the loop)."""

    info: Any
    interfaces: list[str] | None = None
    _zeroconf: Any = field(default=None, repr=False)

    def start(self) -> None:
        from zeroconf import InterfaceChoice, Zeroconf

        self._zeroconf = Zeroconf(interfaces=self.interfaces or InterfaceChoice.All)
        try:
            registering = asyncio.run_coroutine_threadsafe(self._register(), self._zeroconf.loop)
            try:
                registering.result(timeout=_REGISTER_TIMEOUT_SECONDS)
            except concurrent.futures.TimeoutError:
                registering.cancel()
                raise TimeoutError(
                    f"the record was not registered within {_REGISTER_TIMEOUT_SECONDS:g} s"
                ) from None
        except Exception:
            self._zeroconf.close()
            self._zeroconf = None
            raise

    async def _register(self) -> None:
        announced = await self._zeroconf.async_register_service(self.info)
        await announced

    def close(self) -> None:
        if self._zeroconf is None:
            return
        try:
            self._zeroconf.unregister_service(self.info)
        finally:
            self._zeroconf.close()
            self._zeroconf = None


def advertiser_for(host: str, port: int, tcp_port: int | None) -> Advertiser:
    """The advertiser for a daemon bound to `host`; raises ImportError without zeroconf."""
    info = service_info(port, host, tcp_port)
    interfaces = None if host in _ANY else info.parsed_addresses()
    return Advertiser(info, interfaces)
