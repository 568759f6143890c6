"""`jasco-bridge render`, `demo`, `weights` and `doctor` on real files."""

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.precision import native_bf16_flags, native_int8_flags
from jasco_bridge import protocol
from jasco_bridge.cli import main
from jasco_bridge.client import RenderSpec
from jasco_bridge.commands.render import add_arguments
from jasco_bridge.controller import ControlPanel
from jasco_bridge.osc import message
from jasco_bridge.settings import DEFAULT_START_BAR
from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, write_midi_file
from midi.tempo import TempoMap
from tests.bridge.support import run_cli, running_daemon

SR = 32000


@pytest.fixture(autouse=True)
def no_weights_anywhere(tmp_path, monkeypatch):
    """Renders run in tmp_path and find no JASCO weights unless a test passes --model."""
    monkeypatch.setenv("JASCO_BRIDGE_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf-cache"))
    monkeypatch.chdir(tmp_path)


def write_song(path: Path, bpm: float = 90.0) -> Path:
    """Four bars: C, Am, F, G as block chords (one per bar) with a bass note."""
    notes = []
    for bar, (bass, upper) in enumerate(
        [(48, (60, 64, 67)), (45, (60, 64, 69)), (41, (60, 65, 69)), (43, (59, 62, 67))]
    ):
        start = 4.0 * bar
        notes.append(Note(bass, start, start + 4.0))
        notes.extend(Note(p, start, start + 4.0) for p in upper)
    song = MidiSong(TempoMap.constant(bpm), (NoteTrack("Piano", notes, channel=0),))
    return write_midi_file(song, path)


def test_preview_render_writes_an_exact_clip_and_says_it_is_a_preview(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=90.0)
    code = main(["render", str(midi), "--prompt", "soft piano", "--bars", "2", "--start-bar", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    clip = tmp_path / "jasco-clips" / "song" / "bars002-003_soft-piano_0.wav"
    audio, rate = soundfile.read(clip)
    assert rate == SR
    assert len(audio) == round(2 * 4 * 60 / 90 * SR)  # two bars at 90 bpm, to the sample
    assert np.max(np.abs(audio)) > 0.1
    assert "PREVIEW" in out.out and str(clip) in out.out
    assert "bar 2 beat 1" in out.out and "A:min = Am" in out.out
    assert "no JASCO weights found" in out.err
    sidecar = json.loads(clip.with_suffix(".json").read_text())
    assert sidecar["preview"] is True
    assert sidecar["engine"] == "preview"
    assert [c["label"] for c in sidecar["chords"]] == ["Am", "F"]


def test_default_bars_fill_ten_seconds_at_most_four(tmp_path, capsys):
    midi = write_song(tmp_path / "slow.mid", bpm=60.0)  # 4 s bars: 2 fit
    assert main(["render", str(midi), "--prompt", "x", "--engine", "preview"]) == 0
    audio, _ = soundfile.read(tmp_path / "jasco-clips" / "slow" / "bars001-002_x_0.wav")
    assert len(audio) == 8 * SR


def test_an_existing_clip_is_not_overwritten_silently(tmp_path, capsys):
    # One rule for the CLI and the daemon: the next free name, said out loud.
    midi = write_song(tmp_path / "song.mid")
    target = tmp_path / "out.wav"
    target.write_bytes(b"keep me")
    args = ["render", str(midi), "--prompt", "x", "--bars", "1", "-o", str(target)]
    assert main(args) == 0
    assert str(tmp_path / "out-2.wav") in capsys.readouterr().out
    assert target.read_bytes() == b"keep me"
    assert soundfile.info(tmp_path / "out-2.wav").frames == round(4 * 60 / 90 * SR)


def test_a_bar_longer_than_a_window_is_refused_with_advice(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=20.0)  # one 4/4 bar lasts 12 s
    assert main(["render", str(midi), "--prompt", "x", "--bars", "2"]) == 2
    err = capsys.readouterr().err
    assert "bar 1 lasts 12.0 s, longer than JASCO's 10 s window" in err
    assert "double the tempo" in err


def test_jasco_without_weights_says_how_to_get_them(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid")
    assert main(["render", str(midi), "--prompt", "x", "--engine", "jasco"]) == 2
    err = capsys.readouterr().err
    assert "jasco-bridge weights download" in err
    assert len(err.strip().splitlines()) == 1


def test_a_malformed_midi_file_is_one_line_and_exit_2(tmp_path, capsys):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")  # header cut short
    assert main(["render", str(broken), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "broken.mid" in err


def test_render_through_the_tiny_golden_checkpoint(tmp_path, capsys, golden_dir):
    midi = write_song(tmp_path / "song.mid", bpm=120.0)
    code = main(
        [
            "render",
            str(midi),
            "--prompt",
            "jazz",
            "--engine",
            "jasco",
            "--model",
            str(golden_dir),
            "--bars",
            "2",
            "--steps",
            "2",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    clip = tmp_path / "jasco-clips" / "song" / "bars001-002_jazz_0.wav"
    assert soundfile.info(clip).frames == 4 * SR  # two bars at 120 bpm
    assert "JASCO clip" in out.out and "PREVIEW" not in out.out
    assert json.loads(clip.with_suffix(".json").read_text())["preview"] is False


def test_weights_show_without_weights_exits_1(capsys):
    assert main(["weights"]) == 1
    assert "jasco-bridge weights download" in capsys.readouterr().out


def test_doctor_reports_each_item(capsys, golden_dir):
    assert main(["doctor", "--model", str(golden_dir)]) == 0
    out = capsys.readouterr().out
    for item in ("JASCO weights", "T5 text encoder", "chord table", "device", "torch"):
        assert item in out
    assert out.splitlines()[0].startswith("OK")


def test_render_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--start-bar" in out and "PREVIEW" in out


def test_demo_runs_on_a_fresh_machine_as_a_preview(tmp_path):
    no_weights = {
        "JASCO_BRIDGE_MODELS": str(tmp_path / "no-models"),
        "HF_HUB_CACHE": str(tmp_path / "no-hf-cache"),
    }
    done = run_cli("demo", "--out-dir", str(tmp_path / "clips"), env=no_weights, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "PREVIEW" in done.stdout and "jasco-bridge weights download" in done.stderr
    (clip,) = (tmp_path / "clips" / "demo").glob("bars001-004_*_0.wav")
    assert soundfile.info(clip).frames == round(9.6 * SR)
    again = run_cli("demo", "--out-dir", str(tmp_path / "clips"), env=no_weights, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert clip.with_name(f"{clip.stem}-2.wav").exists()  # the first clip is kept
    assert soundfile.info(clip).frames == round(9.6 * SR)


def test_open_renderer_preview_plays_every_vocabulary_label():
    from jasco_bridge.engines import open_renderer

    opened = open_renderer("preview")
    assert opened.renderer.is_preview and opened.notice is None
    vocabulary = opened.vocabulary
    tones = opened.renderer.chord_tones
    assert tones[vocabulary.index_of("G7/B")] == (11, 7, 2, 5)  # bass first
    assert tones[vocabulary.no_chord_index] == ()
    assert len(tones) == vocabulary.null_index


def test_open_renderer_auto_without_weights_falls_back_with_a_notice():
    from jasco_bridge.engines import open_renderer

    opened = open_renderer("auto")
    assert opened.renderer.is_preview
    assert "PREVIEW" in opened.notice and "jasco-bridge weights download" in opened.notice


def test_open_renderer_rejects_an_unknown_kind():
    from jasco_bridge.engines import open_renderer
    from jasco_bridge.errors import RenderError

    with pytest.raises(RenderError, match="auto, jasco, preview"):
        open_renderer("fast")


def test_a_drum_stem_file_is_used_from_the_window_start(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=120.0)  # bar 2 starts at 2 s
    silent = np.zeros((44100 * 6, 2), dtype=np.float32)
    click = silent.copy()
    click[int(2.75 * 44100)] = 1.0  # off the beat, 0.75 s into bar 2
    soundfile.write(tmp_path / "silent.wav", silent, 44100)
    soundfile.write(tmp_path / "click.wav", click, 44100)
    args = ["render", str(midi), "--prompt", "x", "--start-bar", "2", "--bars", "1"]
    assert main([*args, "--drums", str(tmp_path / "click.wav"), "-o", "out-click.wav"]) == 0
    assert main([*args, "--drums", str(tmp_path / "silent.wav"), "-o", "out-silent.wav"]) == 0
    with_click, _ = soundfile.read(tmp_path / "out-click.wav")
    without, _ = soundfile.read(tmp_path / "out-silent.wav")
    difference = np.abs(with_click - without)
    assert abs(int(np.argmax(difference)) - round(0.75 * SR)) < 100


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_one_line_on_a_terminal_and_writes_lines_to_a_log():
    from jasco_bridge.commands.render import ProgressBar

    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        bar = ProgressBar("JASCO render", stream=stream, width=4)
        for step in range(1, 3):
            bar(step, 2)
    assert terminal.getvalue() == "\rJASCO render [##..] 1/2\rJASCO render [####] 2/2\n"
    assert log.getvalue().splitlines() == ["JASCO render [##..] 1/2", "JASCO render [####] 2/2"]


def write_song_with_drums(path: Path, bpm: float = 120.0) -> Path:
    """Two bars of C then F on a piano, and a kick on every beat on GM channel 10."""
    piano = [Note(p, 0.0, 4.0) for p in (48, 60, 64, 67)]
    piano += [Note(p, 4.0, 8.0) for p in (41, 60, 65, 69)]
    kicks = [Note(36, float(beat), beat + 0.25, 110, 9) for beat in range(8)]
    song = MidiSong(
        TempoMap.constant(bpm),
        (NoteTrack("Piano", piano, channel=0), NoteTrack("Drums", kicks, channel=9, is_drum=True)),
    )
    return write_midi_file(song, path)


def test_the_files_own_drum_track_is_used_and_drums_may_name_the_same_file(tmp_path, capsys):
    midi = write_song_with_drums(tmp_path / "beat.mid")
    args = ["render", str(midi), "--prompt", "x", "--bars", "2"]
    assert main(args) == 0
    assert main([*args, "--drums", str(midi)]) == 0
    out = capsys.readouterr().out
    first, second = sorted((tmp_path / "jasco-clips" / "beat").glob("*.json"))
    for sidecar in (first, second):
        document = json.loads(sidecar.read_text())
        assert document["drums_used"] is True
        assert document["drums"]["kind"] == "midi" and document["drums"]["hits"] == 8
    assert str(first.with_suffix(".wav")) in out and str(second.with_suffix(".wav")) in out
    a, _ = soundfile.read(first.with_suffix(".wav"))
    b, _ = soundfile.read(second.with_suffix(".wav"))
    assert np.array_equal(a, b)  # the same drums either way


def test_again_renders_the_same_clip_from_its_sidecar(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=120.0)
    assert main(["render", str(midi), "--prompt", "soft", "--bars", "2", "--seed", "9"]) == 0
    (first,) = (tmp_path / "jasco-clips" / "song").glob("*.wav")
    (tmp_path / "moved").mkdir()
    assert main(["render", "--again", str(first.with_suffix(".json")), "--out-dir", "moved"]) == 0
    (second,) = (tmp_path / "moved" / "song").glob("*.wav")
    assert second.name == first.name
    a, rate_a = soundfile.read(first)
    b, rate_b = soundfile.read(second)
    assert rate_a == rate_b and np.array_equal(a, b)
    again = json.loads(second.with_suffix(".json").read_text())
    assert (again["seed"], again["start_bar"], again["bars"]) == (9, 1, 2)
    assert main(["render", "--again", str(first.with_suffix(".json")), "--bars", "1"]) == 2
    assert "drop --bars" in capsys.readouterr().err


def test_render_takes_the_daemons_rate_loudness_and_variations_settings(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=120.0)
    args = ["render", str(midi), "--prompt", "x", "--bars", "1", "--seed", "4"]
    assert main([*args, "--sample-rate", "48000", "--target-lufs", "-20", "--variations", "2"]) == 0
    clips = sorted((tmp_path / "jasco-clips" / "song").glob("*.wav"))
    assert [c.name for c in clips] == ["bars001-001_x_4.wav", "bars001-001_x_5.wav"]
    for clip in clips:
        assert soundfile.info(clip).samplerate == 48000
        assert soundfile.info(clip).frames == 2 * 48000
        assert json.loads(clip.with_suffix(".json").read_text())["target_lufs"] == -20.0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--steps", "500"], "steps must be a whole number 1..200"),
        (["--seed", "-5"], "seed must be a whole number 0..2147483647"),
        (["--seed", str(2**31)], "seed must be a whole number 0..2147483647"),
    ],
)
def test_render_limits_are_the_daemons(tmp_path, capsys, option, message):
    midi = write_song(tmp_path / "song.mid")
    assert main(["render", str(midi), "--prompt", "x", *option]) == 2
    err = capsys.readouterr().err
    assert message in err and "no JASCO weights" not in err


def test_an_unwritable_out_dir_is_refused_before_rendering(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid")
    (tmp_path / "a-file").write_text("not a folder")
    assert main(["render", str(midi), "--prompt", "x", "--out-dir", "a-file/clips"]) == 2
    captured = capsys.readouterr()
    assert "cannot write clips in" in captured.err and "--out-dir" in captured.err
    assert "render [" not in captured.err  # no progress: nothing was rendered


def test_a_model_folder_that_does_not_exist_is_an_error_under_auto(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid")
    missing = tmp_path / "modles" / "jasco-400M"
    assert main(["render", str(midi), "--prompt", "x", "--model", str(missing)]) == 2
    captured = capsys.readouterr()
    assert str(missing) in captured.err and "PREVIEW" not in captured.out + captured.err


def test_bars_past_the_last_note_give_a_warning(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=120.0)  # four bars
    assert main(["render", str(midi), "--prompt", "x", "--start-bar", "6", "--bars", "1"]) == 0
    err = capsys.readouterr().err
    assert "warning: bars 6-6 start after the song's last note ends (bar 5 beat 1)" in err


def test_the_engine_notice_comes_only_after_the_arguments_are_checked(tmp_path, capsys):
    midi = write_song(tmp_path / "song.mid", bpm=20.0)
    assert main(["render", str(midi), "--prompt", "x", "--bars", "2"]) == 2
    assert "no JASCO weights found" not in capsys.readouterr().err


def test_a_render_without_a_start_bar_starts_on_the_one_default_everywhere(tmp_path, peer):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["song.mid"]).start_bar == DEFAULT_START_BAR
    assert protocol.parse_request(message("/jasco/render"))["start_bar"] == DEFAULT_START_BAR
    assert RenderSpec.from_json({}).start_bar == DEFAULT_START_BAR
    assert ControlPanel().start_bar == DEFAULT_START_BAR
    with running_daemon(tmp_path) as daemon:
        peer.send(daemon.server.udp_port, "/jasco/render")
        assert peer.expect("/jasco/ack").args[3] == DEFAULT_START_BAR


@pytest.mark.skipif(
    not (native_bf16_flags() and native_int8_flags()), reason="this CPU has no native bf16/int8"
)
def test_int8_is_asked_for_on_the_command_line_and_recorded_in_the_sidecar(tmp_path, golden_dir):
    midi = write_song(tmp_path / "song.mid")
    args = ["render", str(midi), "--prompt", "x", "--engine", "jasco", "--model", str(golden_dir)]
    args += ["--precision", "int8", "--steps", "2", "--bars", "1", "--out-dir", str(tmp_path)]
    assert main(args) == 0
    (sidecar,) = tmp_path.glob("song/*.json")
    assert json.loads(sidecar.read_text())["precision"] == "int8"
