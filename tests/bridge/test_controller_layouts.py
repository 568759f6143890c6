"""The shipped controller layouts, read in their real formats: an Open Stage Control session
(JSON) and a TouchOSC layout (.tosc: zlib-compressed XML). Every message a widget can send must
pass the daemon's address table, every widget that listens must listen to a reply the daemon
sends, and one press of Render (press + release, as the layout sends them) renders once."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from jasco_bridge import protocol
from jasco_bridge.errors import ProtocolError
from jasco_bridge.osc import OscMessage
from tests.bridge.support import REPO, OscPeer, running_daemon, set_up_four_bars

LAYOUTS = REPO / "jasco_bridge" / "daw" / "controllers"
OPEN_STAGE = LAYOUTS / "jasco-bridge.open-stage-control.json"
TOUCH_OSC = LAYOUTS / "jasco-bridge.tosc"
REPLIES = {reply.address: reply for reply in protocol.REPLIES}
CONTAINERS = {"root", "panel", "tab", "modal"}


@pytest.fixture
def peer() -> Iterator[OscPeer]:
    client = OscPeer()
    yield client
    client.close()


# ---------------------------------------------------------------------------- Open Stage Control


def open_stage_widgets() -> list[dict]:
    session = json.loads(OPEN_STAGE.read_text(encoding="utf-8"))
    assert session["type"] == "session" and session["createdWith"] == "Open Stage Control"
    found, todo = [], [session["content"]]
    while todo:
        widget = todo.pop()
        found.append(widget)
        todo += widget.get("widgets", []) + widget.get("tabs", [])
    return [w for w in found if w["type"] not in CONTAINERS]


def open_stage_sends(widget: dict, action: str = "all") -> list[OscMessage]:
    """What a widget sends: a button's press and release, a fader's ends, each menu value."""
    address = widget["address"]
    kind = widget["type"]
    if kind == "button":
        values = {"press": [widget["on"]], "release": [widget["off"]]}
        chosen = values["press"] + values["release"] if action == "all" else values[action]
    elif kind == "fader":
        chosen = [widget["range"]["min"], widget["range"]["max"], widget["default"]]
    elif kind == "input":
        chosen = ["lofi hip hop, warm rhodes"]
    elif kind == "dropdown":
        chosen = list(widget["values"].values())
    else:
        raise AssertionError(f"widget {widget['id']}: no rule for what a {kind} sends")
    return [OscMessage(address, (*widget["preArgs"], value)) for value in chosen]


def test_open_stage_control_sends_only_what_the_daemon_accepts():
    sending = [w for w in open_stage_widgets() if w["interaction"]]
    assert {w["id"] for w in sending} >= {
        "prompt", "presets", "start_bar", "bars", "seed", "render", "cancel", "another_take"
    }  # fmt: skip
    for widget in sending:
        for message in open_stage_sends(widget):
            try:
                protocol.parse_request(message)
            except ProtocolError as error:
                raise AssertionError(f"widget {widget['id']} sends {message}: {error}") from None
    presets = next(w for w in sending if w["id"] == "presets")["values"]
    assert len(presets) >= 4


def test_open_stage_control_shows_what_the_daemon_sends():
    showing = [w for w in open_stage_widgets() if not w["interaction"]]
    assert {w["address"] for w in showing} == {
        "/jasco/ctl/progress",
        "/jasco/ctl/state",
        "/jasco/ctl/clip",
    }
    for widget in showing:
        reply = REPLIES[widget["address"]]
        assert len(reply.args) == 1 + len(widget["preArgs"])
        if widget["type"] == "fader":
            assert (widget["range"]["min"], widget["range"]["max"]) == (0, 1)
            assert reply.args[0].kind == "float"


# ---------------------------------------------------------------------------- TouchOSC


def touch_osc_nodes() -> list[ElementTree.Element]:
    root = ElementTree.fromstring(zlib.decompress(TOUCH_OSC.read_bytes()))
    assert root.tag == "lexml" and root.get("version") == "3"
    return list(root.iter("node"))


def _property(node: ElementTree.Element, key: str) -> str | None:
    for item in node.find("properties"):
        if item.findtext("key") == key:
            return item.findtext("value")
    return None


def _osc_blocks(node: ElementTree.Element) -> list[ElementTree.Element]:
    messages = node.find("messages")
    return [] if messages is None else messages.findall("osc")


def _partial_value(partial: ElementTree.Element, x: float) -> object:
    kind, conversion = partial.findtext("type"), partial.findtext("conversion")
    if kind == "CONSTANT":
        text = partial.findtext("value") or ""
        return {"STRING": str, "FLOAT": float, "INTEGER": int}[conversion](text)
    assert kind == "VALUE", kind
    low, high = float(partial.findtext("scaleMin")), float(partial.findtext("scaleMax"))
    return low + x * (high - low) if conversion == "FLOAT" else x


def touch_osc_sends(node: ElementTree.Element, x: float, previous: float) -> list[OscMessage]:
    """The messages a control sends when its x value goes from `previous` to `x`."""
    sent = []
    for block in _osc_blocks(node):
        if block.findtext("send") != "1":
            continue
        conditions = {t.findtext("condition") for t in block.iter("trigger")}
        rises, falls = x > previous, x < previous
        if not (
            "ANY" in conditions
            or ("RISE" in conditions and rises)
            or ("FALL" in conditions and falls)
        ):
            continue
        path_parts = block.find("path").findall("partial")
        assert all(p.findtext("type") == "CONSTANT" for p in path_parts)
        address = "".join(p.findtext("value") for p in path_parts)
        args = tuple(_partial_value(p, x) for p in block.find("arguments").findall("partial"))
        sent.append(OscMessage(address, args))
    return sent


def press_and_release(node: ElementTree.Element) -> list[OscMessage]:
    return touch_osc_sends(node, 1.0, 0.0) + touch_osc_sends(node, 0.0, 1.0)


def test_touch_osc_sends_only_what_the_daemon_accepts():
    nodes = touch_osc_nodes()
    checked = set()
    for node in nodes:
        name = _property(node, "name")
        if node.get("type") == "BUTTON":
            messages = press_and_release(node)
        elif node.get("type") == "FADER":
            messages = [m for x in (0.0, 0.37, 1.0) for m in touch_osc_sends(node, x, 0.5)]
        else:
            messages = touch_osc_sends(node, 1.0, 0.0)
        for message in messages:
            try:
                protocol.parse_request(message)
            except ProtocolError as error:
                raise AssertionError(f"control {name} sends {message}: {error}") from None
            checked.add(message.address)
    assert checked >= {
        "/jasco/prompt", "/jasco/ctl/render", "/jasco/ctl/cancel", "/jasco/ctl/another_take",
        "/jasco/ctl/start_bar", "/jasco/ctl/bars", "/jasco/ctl/seed",
    }  # fmt: skip
    presets = [n for n in nodes if (_property(n, "name") or "").startswith("preset_")]
    prompts = {m.args for n in presets if n.get("type") == "BUTTON" for m in press_and_release(n)}
    assert len(prompts) >= 4  # distinct prompt presets, each sent once per press


def test_touch_osc_listens_to_what_the_daemon_sends():
    listening = {}
    for node in touch_osc_nodes():
        for block in _osc_blocks(node):
            if block.findtext("receive") == "1":
                address = "".join(
                    p.findtext("value") for p in block.find("path").findall("partial")
                )
                listening[address] = block
    assert set(listening) == {"/jasco/ctl/progress", "/jasco/ctl/state", "/jasco/ctl/clip"}
    for address, block in listening.items():
        [argument] = block.find("arguments").findall("partial")
        wanted = {"float": "FLOAT", "str": "STRING"}[REPLIES[address].args[0].kind]
        assert argument.findtext("conversion") == wanted, address


# ---------------------------------------------------------------------------- one press, one render


def render_press_from_open_stage() -> list[OscMessage]:
    widget = next(w for w in open_stage_widgets() if w["id"] == "render")
    return open_stage_sends(widget, "press") + open_stage_sends(widget, "release")


def render_press_from_touch_osc() -> list[OscMessage]:
    node = next(n for n in touch_osc_nodes() if _property(n, "name") == "render")
    return press_and_release(node)


@pytest.mark.parametrize("layout", [render_press_from_open_stage, render_press_from_touch_osc])
def test_one_press_of_render_renders_once(tmp_path: Path, peer, layout):
    press = layout()
    assert [m.args for m in press] == [(1.0,), (0.0,)] or [m.args for m in press] == [(1,), (0,)]
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        for message in press:
            peer.send(port, message.address, *message.args)
        peer.expect("/jasco/ack")
        peer.expect("/jasco/done")
        assert peer.expect("/jasco/ctl/progress", lambda m: m.args == (1.0,))
        later = peer.quiet_for(0.5)
        assert not [m for m in later if m.address in ("/jasco/ack", "/jasco/error")], later
        assert len(list((tmp_path / "clips" / "default").glob("*.wav"))) == 1
