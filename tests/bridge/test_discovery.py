"""Zeroconf/Bonjour: the `_osc._udp` record a reachable daemon advertises, none on loopback or
with --no-advertise, and a real browse where this machine's multicast works."""

from __future__ import annotations

import socket
import time

import pytest

from jasco_bridge import discovery
from tests.bridge.support import running_daemon


@pytest.fixture
def zeroconf():
    return pytest.importorskip("zeroconf", reason='the discovery extra: pip install ".[discovery]"')


def test_only_reachable_binds_advertise():
    assert not discovery.should_advertise("127.0.0.1")
    assert not discovery.should_advertise("127.0.1.1")
    assert not discovery.should_advertise("::1")
    assert not discovery.should_advertise("localhost")
    assert discovery.should_advertise("0.0.0.0")
    assert discovery.should_advertise("192.168.1.20")
    assert not discovery.should_advertise("192.168.1.20", enabled=False)


def test_the_record_names_the_service_its_port_and_address(zeroconf, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "studio.mac.example")
    info = discovery.service_info(9000, "192.0.2.7", tcp_port=9000)
    assert info.type == "_osc._udp.local."
    assert info.name == "jasco-bridge on studio._osc._udp.local."
    assert info.port == 9000
    assert info.parsed_addresses() == ["192.0.2.7"]
    assert info.server == "studio.local."
    properties = {k.decode(): v.decode() for k, v in info.properties.items()}
    assert properties["path"] == "/jasco/" and properties["tcp"] == "9000"
    assert properties["version"]


def test_all_interfaces_advertise_every_address_but_loopback(zeroconf):
    addresses = discovery.reachable_addresses("0.0.0.0")
    assert all(not a.startswith("127.") for a in addresses)
    assert addresses == [a for a in addresses if socket.inet_aton(a)]


def test_loopback_and_no_advertise_announce_nothing(tmp_path, zeroconf):
    with running_daemon(tmp_path) as daemon:
        assert not [line for line in daemon.announced if "Bonjour" in line]
    with running_daemon(tmp_path, host="0.0.0.0", allow=("127.0.0.1",), advertise=False) as daemon:
        assert not [line for line in daemon.announced if "Bonjour" in line]


def test_without_zeroconf_the_daemon_says_how_to_get_discovery(tmp_path, monkeypatch):
    def missing(*args):
        raise ImportError("No module named 'zeroconf'")

    monkeypatch.setattr(discovery, "advertiser_for", missing)
    with running_daemon(tmp_path, host="0.0.0.0", allow=("127.0.0.1",)) as daemon:
        [line] = [line for line in daemon.announced if "Bonjour" in line]
        assert discovery.INSTALL_HINT in line
        assert daemon.announced[-1].startswith("ready")


def _multicast_loops_back() -> str | None:
    """None when a multicast datagram sent here comes back here; else the reason it does not."""
    group, port = "239.255.77.77", 0
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        receiver.bind(("", port))
        port = receiver.getsockname()[1]
        membership = socket.inet_aton(group) + socket.inet_aton("0.0.0.0")
        receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        receiver.settimeout(1.0)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sender.sendto(b"jasco-probe", (group, port))
        data, _ = receiver.recvfrom(64)
        return None if data == b"jasco-probe" else "a different datagram came back"
    except OSError as error:
        return f"multicast does not work on this machine ({error})"
    finally:
        receiver.close()
        sender.close()


def test_a_browser_finds_the_running_daemon(tmp_path, zeroconf):
    reason = _multicast_loops_back()
    if reason is not None:
        pytest.skip(reason)
    with running_daemon(tmp_path, host="0.0.0.0", allow=("127.0.0.1",)) as daemon:
        [line] = [line for line in daemon.announced if "Bonjour" in line]
        assert line.startswith("advertised over Bonjour as 'jasco-bridge on ")
        port = daemon.server.udp_port
        found: list[str] = []

        class Listener(zeroconf.ServiceListener):
            def add_service(self, zc, type_, name):
                found.append(name)

            def update_service(self, zc, type_, name):
                pass

            def remove_service(self, zc, type_, name):
                pass

        browser_zc = zeroconf.Zeroconf()
        browser = zeroconf.ServiceBrowser(browser_zc, discovery.SERVICE_TYPE, Listener())
        try:
            ours = None
            deadline = time.monotonic() + 10
            while ours is None and time.monotonic() < deadline:
                for name in list(found):  # other _osc._udp services may share the network
                    info = browser_zc.get_service_info(discovery.SERVICE_TYPE, name, timeout=1000)
                    if info is not None and info.port == port:
                        ours = info
                time.sleep(0.05)
            assert ours is not None, f"our service was not seen within 10 s; saw {found}"
            assert ours.name.startswith("jasco-bridge on ")
            assert ours.properties[b"path"] == b"/jasco/"
        finally:
            browser.cancel()
            browser_zc.close()


def test_serve_takes_no_advertise():
    from jasco_bridge.cli import build_parser
    from jasco_bridge.config import DaemonConfig

    parser = build_parser()
    assert DaemonConfig.from_args(parser.parse_args(["serve"])).advertise is True
    assert DaemonConfig.from_args(parser.parse_args(["serve", "--no-advertise"])).advertise is False
