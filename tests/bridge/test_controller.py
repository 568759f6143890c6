"""Controller addresses: buttons act on press and ignore release, faders snap, feedback a
controller can show. Real daemon, real UDP over loopback."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from jasco_bridge import controller
from jasco_bridge.osc import OscMessage
from tests.bridge.support import WAIT_SECONDS, OscPeer, running_daemon, set_up_four_bars


@pytest.fixture
def peer() -> Iterator[OscPeer]:
    client = OscPeer()
    yield client
    client.close()


def test_snapping_rounds_halves_up_and_guidance_to_quarters():
    assert [controller.snap_whole(v) for v in (0.49, 0.5, 8.7, -0.6, 3.0)] == [0, 1, 9, -1, 3]
    assert [controller.snap_quarter(v) for v in (1.2, 1.37, 2.6, 0.0)] == [1.25, 1.25, 2.5, 0.0]
    assert controller.is_press(1.0) and controller.is_press(0.3) and not controller.is_press(0.0)


def test_feedback_turns_job_replies_into_fader_and_label_messages():
    done = OscMessage(
        "/jasco/done", (3, "/c/default/bars001-004_x_1_j3.wav", 0.0, 16.0, 0.0, 8.0, "/c/x.json")
    )
    shown = {m.address: m.args for m in controller.feedback_for(done)}
    assert shown == {
        "/jasco/ctl/progress": (1.0,),
        "/jasco/ctl/state": ("done: bars001-004_x_1_j3.wav",),
        "/jasco/ctl/clip": ("bars001-004_x_1_j3.wav",),
    }
    step = controller.feedback_for(OscMessage("/jasco/progress", (3, 0.4)))
    assert [(m.address, m.args) for m in step] == [
        ("/jasco/ctl/progress", (0.4,)),
        ("/jasco/ctl/state", ("rendering job 3: 40%",)),
    ]
    assert controller.feedback_for(OscMessage("/jasco/pong", ())) == []


def test_one_press_and_release_renders_once_with_feedback(tmp_path: Path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)
        peer.send(port, "/jasco/ctl/start_bar", 2.8)  # snaps to bar 3
        assert "from bar 3" in peer.expect("/jasco/ctl/state").args[0]
        peer.send(port, "/jasco/ctl/bars", 1.6)  # snaps to 2 bars
        assert peer.expect("/jasco/ctl/state").args[0].startswith("bars 3-4")
        peer.send(port, "/jasco/ctl/render", 1.0)
        peer.send(port, "/jasco/ctl/render", 0.0)
        ack = peer.expect("/jasco/ack")
        done = peer.expect("/jasco/done")
        assert done.args[0] == ack.args[0] and done.args[2] == 8.0 and done.args[3] == 8.0
        assert peer.expect("/jasco/ctl/progress", lambda m: m.args == (1.0,))
        name = Path(done.args[1]).name
        assert peer.expect("/jasco/ctl/clip").args == (name,)
        later = peer.quiet_for(0.5)
        assert not [m for m in later if m.address in ("/jasco/ack", "/jasco/error")], later
        assert len(list((tmp_path / "clips" / "default").glob("*.wav"))) == 1


def test_faders_set_seed_steps_and_guidance_on_the_session(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/ctl/seed", 41.6)
        peer.send(port, "/jasco/ctl/steps", 7.2)
        peer.send(port, "/jasco/ctl/guidance", 2.6)
        text = peer.expect("/jasco/ctl/state", lambda m: "guidance 2.5" in m.args[0]).args[0]
        assert "seed 42" in text and "7 steps" in text
        settings = daemon.call_in_loop(lambda: daemon.server.sessions.get().settings)
        assert (settings.seed, settings.steps, settings.cfg_all) == (42, 7, 2.5)
        peer.send(port, "/jasco/ctl/seed", -1.0)
        assert (
            "seed random"
            in peer.expect("/jasco/ctl/state", lambda m: "random" in m.args[0]).args[0]
        )


def test_another_take_uses_a_fresh_seed_and_cancel_stops_the_last_press(tmp_path, peer):
    with running_daemon(tmp_path, gated=True) as daemon:
        port = daemon.server.udp_port
        set_up_four_bars(peer, port)  # seed 1234
        peer.send(port, "/jasco/ctl/render")
        first = peer.expect("/jasco/ack")
        assert first.args[1] == 1234
        assert daemon.renderer.started.wait(WAIT_SECONDS)
        peer.send(port, "/jasco/ctl/cancel", 1.0)
        peer.send(port, "/jasco/ctl/cancel", 0.0)
        assert peer.expect("/jasco/cancelled").args == (first.args[0],)
        assert peer.expect("/jasco/ctl/state", lambda m: "cancelled" in m.args[0])
        peer.send(port, "/jasco/ctl/another_take", 1.0)
        take = peer.expect("/jasco/ack")
        assert take.args[0] != first.args[0]
        settings = daemon.call_in_loop(lambda: daemon.server.sessions.get().settings)
        assert settings.seed == 1234  # the session keeps its seed; only this take is random
        daemon.renderer.gate.set()
        assert peer.expect("/jasco/done").args[0] == take.args[0]


def test_a_refused_controller_render_shows_the_reason_as_state(tmp_path, peer):
    with running_daemon(tmp_path) as daemon:
        port = daemon.server.udp_port
        peer.send(port, "/jasco/tempo", 20.0)  # a 4/4 bar lasts 12 s, longer than a window
        peer.send(port, "/jasco/ctl/bars", 16.0)
        peer.send(port, "/jasco/ctl/render", 1.0)
        state = peer.expect("/jasco/ctl/state", lambda m: m.args[0].startswith("error:"))
        assert "longer than JASCO's 10 s window" in state.args[0]
