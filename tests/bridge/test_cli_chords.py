"""`jasco-bridge chords`: real MIDI files in, table / lab / json out, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import mido
import mir_eval
import pytest

from jasco_bridge.cli import main
from tests.bridge.support import REPO, run_cli
from tests.midi.test_limits import huge_chord

PPQ = 480
# Bars of 4/4 at 120 bpm (2 s each): C, G7/B (inverted), F, Gsus4.
PROGRESSION = [
    (36, 60, 64, 67),
    (47, 55, 62, 65),
    (41, 60, 65, 69),
    (43, 60, 62, 67),
]


def write_song(path: Path, with_melody: bool = True) -> Path:
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
        ]
    )
    midi.tracks.append(conductor)
    parts = {"CHORDS": [(p, 4 * bar, 4) for bar, ps in enumerate(PROGRESSION) for p in ps]}
    if with_melody:
        parts["MELODY"] = [(72 + (i % 5), i, 1) for i in range(16)]
    for channel, (name, notes) in enumerate(parts.items()):
        events = []
        for pitch, start, length in notes:
            events.append(
                (start * PPQ, 1, mido.Message("note_on", note=pitch, velocity=80, channel=channel))
            )
            events.append(
                ((start + length) * PPQ, 0, mido.Message("note_off", note=pitch, channel=channel))
            )
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        now = 0
        for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


@pytest.fixture
def song(tmp_path) -> Path:
    return write_song(tmp_path / "song.mid")


def test_lab_output_is_pure_mirex_that_mir_eval_reads(song, tmp_path, capsys):
    assert main(["chords", str(song), "--format", "lab"]) == 0
    captured = capsys.readouterr()
    lab = tmp_path / "song.lab"
    lab.write_text(captured.out)
    intervals, labels = mir_eval.io.load_labeled_intervals(str(lab))
    assert labels == ["C:maj", "G:7/3", "F:maj", "G:sus4"]
    assert intervals.tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [6.0, 8.0]]
    mir_eval.chord.validate(labels, labels)
    # The track choice is explained, on stderr only.
    assert "'CHORDS'" in captured.err


def test_table_shows_positions_labels_and_jasco_labels(song, capsys):
    assert main(["chords", str(song)]) == 0
    out = capsys.readouterr().out
    assert "'CHORDS'" in out  # which track, and why
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("bar:beat"))
    rows = [line.split() for line in lines[header + 1 : header + 5]]
    assert [row[:4] for row in rows] == [
        ["1:1", "0.000", "C:maj", "C"],
        ["2:1", "2.000", "G:7/3", "G7/B"],
        ["3:1", "4.000", "F:maj", "F"],
        ["4:1", "6.000", "G:sus4", "Gsus4"],
    ]
    # JASCO's vocabulary has no sus chords: the nearest label is marked as such.
    assert rows[3][4:6] == ["G", "~"]


def test_json_document_holds_track_tempo_and_segments(song, capsys):
    assert main(["chords", str(song), "--track", "chords", "--format", "json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["track"]["name"] == "CHORDS"
    assert "chosen by request" in document["track"]["reason"]
    assert document["tempo_map"]["tempos"] == [{"beat": 0.0, "bpm": 120.0}]
    assert document["tempo_map"]["meters"] == [{"beat": 0.0, "numerator": 4, "denominator": 4}]
    first, second = document["segments"][:2]
    assert first == {
        "start": "1:1",
        "end": "2:1",
        "start_beat": 0.0,
        "end_beat": 4.0,
        "start_seconds": 0.0,
        "end_seconds": 2.0,
        "harte": "C:maj",
        "symbol": "C",
        "jasco_label": "C",
        "jasco_index": first["jasco_index"],
        "exact": True,
    }
    assert second["harte"] == "G:7/3"
    assert document["segments"][3]["exact"] is False  # G:sus4 -> nearest label
    assert "CHORDS" in captured.err


def test_model_folder_supplies_the_chord_table(song, tmp_path, chord_pkl, capsys):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(chord_pkl, model / "chord_to_index_mapping.pkl")
    assert main(["chords", str(song), "--format", "json", "--model", str(model)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["vocabulary"] == str(model / "chord_to_index_mapping.pkl")


def test_symbols_are_explained_with_their_jasco_label(capsys):
    assert main(["chords", "--symbol", "Cmaj9", "--symbol", "A:min7/b3", "--symbol", "N.C."]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:4]}
    assert rows["Cmaj9"][1:3] == ["Cmaj9", "C:maj9"]
    assert "Cmaj7" in rows["Cmaj9"]
    assert rows["N.C."][-2:] == ["N", "0"]
    assert "~ Cmaj9: the vocabulary has no Cmaj9" in out


def test_symbols_as_json(capsys):
    assert main(["chords", "--symbol", "Bb/D", "--format", "json"]) == 0
    (described,) = json.loads(capsys.readouterr().out)["symbols"]
    assert (described["harte"], described["label"], described["exact"]) == (
        "Bb:maj/3",
        "Bb/D",
        True,
    )


def test_a_bad_symbol_is_reported_beside_the_good_ones(capsys):
    assert main(["chords", "--symbol", "Am7", "--symbol", "H7", "--symbol", "F/A"]) == 2
    captured = capsys.readouterr()
    explained = [line.split()[0] for line in captured.out.splitlines()[1:]]
    assert explained == ["Am7", "F/A"]
    assert "'H7': unknown root 'H'" in captured.err
    assert "Traceback" not in captured.err


def test_a_bad_symbol_in_json_is_listed_under_errors(capsys):
    assert main(["chords", "--symbol", "Cmaj7", "--symbol", "Q", "--format", "json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert [d["input"] for d in document["symbols"]] == ["Cmaj7"]
    assert document["errors"][0]["input"] == "Q"


def _truncated(tmp_path: Path) -> Path:
    whole = write_song(tmp_path / "whole.mid").read_bytes()
    path = tmp_path / "truncated.mid"
    path.write_bytes(whole[: len(whole) - 40])
    return path


def _drums_only(tmp_path: Path) -> Path:
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    midi.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=36, velocity=100, channel=9, time=0),
                mido.Message("note_off", note=36, channel=9, time=PPQ),
            ]
        )
    )
    path = tmp_path / "drums.mid"
    midi.save(path)
    return path


def _no_notes(tmp_path: Path) -> Path:
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)]))
    path = tmp_path / "silent.mid"
    midi.save(path)
    return path


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda tmp: [str(tmp / "missing.mid")], "missing.mid: no such file"),
        (lambda tmp: [str(tmp)], "is a folder"),
        (lambda tmp: [str(_truncated(tmp))], "truncated.mid"),
        (lambda tmp: [str(_drums_only(tmp))], "drums.mid"),
        (lambda tmp: [str(_no_notes(tmp))], "silent.mid"),
        (
            lambda tmp: [str(write_song(tmp / "s.mid")), "--track", "BASS"],
            "s.mid: no track named 'BASS'",
        ),
        (lambda tmp: [str(write_song(tmp / "s.mid")), "--track", "7"], "s.mid: no track 7"),
        (
            lambda tmp: [str(write_song(tmp / "s.mid")), "--track", "1", "--track", "9"],
            "s.mid: no track 9",
        ),
        (lambda tmp: [str(huge_chord(tmp / "huge.mid"))], "huge.mid: track 0: lasts"),
        (lambda tmp: ["--symbol", "Hmaj7"], "'Hmaj7'"),
        (lambda tmp: [str(write_song(tmp / "s.mid")), "--symbol", "C"], "not both"),
        (lambda tmp: [], "give a MIDI file or --symbol"),
        (lambda tmp: ["--symbol", "C", "--format", "lab"], "--format lab"),
        (
            lambda tmp: [str(write_song(tmp / "s.mid")), "--model", str(tmp)],
            "chord_to_index_mapping.pkl",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, capsys, make_args, expected):
    assert main(["chords", *make_args(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("jasco-bridge chords: error: ")
    assert expected in lines[0]


def test_the_installed_entry_point_runs_as_a_real_process(song, tmp_path):
    done = run_cli("chords", str(song), "--format", "lab")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "0.000000\t2.000000\tC:maj"
    broken = run_cli("chords", str(tmp_path / "nope.mid"))
    assert broken.returncode == 2
    assert "nope.mid" in broken.stderr
    assert "Traceback" not in broken.stderr


@pytest.mark.parametrize("asked", [["--track", "1", "--track", "MELODY"], ["--track", "1,2"]])
def test_several_tracks_are_read_as_one_harmony(song, capsys, asked):
    assert main(["chords", str(song), *asked, "--format", "json"]) == 0
    captured = capsys.readouterr()
    track = json.loads(captured.out)["track"]
    assert [part["index"] for part in track["parts"]] == [1, 2]
    assert track["label"] == "tracks 1 'CHORDS' + 2 'MELODY'"
    assert "as one harmony" in captured.err


def test_a_reader_closing_the_pipe_ends_the_command_quietly():
    # `jasco-bridge chords ... | head -1`: far more output than a pipe buffer holds.
    symbols = [arg for _ in range(3000) for arg in ("--symbol", "Dbmaj9/F")]
    process = subprocess.Popen(
        [sys.executable, "-m", "jasco_bridge", "chords", *symbols],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout.readline().startswith(b"symbol")
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 128 + signal.SIGPIPE
    assert stderr == ""


def test_commands_that_only_load_weights_silence_the_hub_progress_bars(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # so teardown restores the original
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    assert main(["chords", "--symbol", "C"]) == 0
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
