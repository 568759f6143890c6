"""Chord and drum files given by path: checked, opened, described, and placed on the timeline."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile

from jasco_bridge.errors import SessionError
from jasco_bridge.sources import (
    MAX_MIDI_BYTES,
    AudioDrums,
    MidiDrums,
    checked_file,
    open_chord_file,
    open_drums,
)
from midi.drums import DrumHit
from midi.notes import Note, NoteTrack
from midi.tempo import TempoMap
from tests.bridge.support import chord_track, write_song, write_wav

AT_120_BPM = TempoMap.constant(120)


# ---------------------------------------------------------------------------- checked paths


@pytest.mark.parametrize(
    ("opener", "name"),
    [(open_chord_file, "missing.mid"), (open_drums, "missing.wav")],
)
def test_a_missing_file_is_named(tmp_path, opener, name):
    with pytest.raises(SessionError, match="does not exist") as raised:
        opener(str(tmp_path / name))
    assert name in str(raised.value)


def test_a_folder_is_not_a_file(tmp_path):
    folder = tmp_path / "stems.wav"
    folder.mkdir()
    with pytest.raises(SessionError, match="is a folder"):
        open_drums(str(folder))


def test_files_of_the_wrong_kind_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("C F G")
    with pytest.raises(SessionError, match=r"\.mid"):
        open_chord_file(str(text))
    with pytest.raises(SessionError, match=r"\.wav"):
        open_drums(str(text))
    audio = write_wav(tmp_path / "drums.wav")
    with pytest.raises(SessionError, match=r"wrong kind"):
        open_chord_file(str(audio))


def test_files_that_do_not_open_as_their_kind_are_refused(tmp_path):
    fake_wav = tmp_path / "fake.wav"
    fake_wav.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(SessionError, match="not a readable audio file"):
        open_drums(str(fake_wav))
    fake_mid = tmp_path / "fake.mid"
    fake_mid.write_bytes(b"MThd garbage")
    with pytest.raises(SessionError, match="cannot be used"):
        open_chord_file(str(fake_mid))
    with pytest.raises(SessionError, match="drum MIDI file .* cannot be used"):
        open_drums(str(fake_mid))


def test_files_over_the_size_limit_are_refused(tmp_path):
    huge = tmp_path / "huge.mid"
    with open(huge, "wb") as handle:  # sparse: costs no disk space
        handle.truncate(MAX_MIDI_BYTES + 1)
    with pytest.raises(SessionError, match="the limit is 16 MB"):
        open_chord_file(str(huge))


def test_the_size_limit_is_the_callers(tmp_path):
    small = tmp_path / "small.wav"
    small.write_bytes(bytes(3 * 2**20))
    assert checked_file(small, (".wav",), 4 * 2**20, "test") == small
    with pytest.raises(SessionError, match="test file .* is 3 MB; the limit is 2 MB"):
        checked_file(small, (".wav",), 2 * 2**20, "test")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_files_are_refused(tmp_path):
    locked = write_wav(tmp_path / "locked.wav")
    locked.chmod(0)
    with pytest.raises(SessionError, match="permission denied"):
        open_drums(str(locked))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_not_a_regular_file(tmp_path):
    pipe = tmp_path / "drums.wav"
    os.mkfifo(pipe)
    with pytest.raises(SessionError, match="not a regular file"):
        open_drums(str(pipe))


@pytest.mark.parametrize(("path", "problem"), [("drums.wav", "absolute path"), ("", "non-empty")])
def test_relative_and_empty_paths_are_refused(path, problem):
    with pytest.raises(SessionError, match=problem):
        open_drums(path)


def test_nul_bytes_and_non_text_paths_are_refused(tmp_path):
    with pytest.raises(SessionError, match="NUL"):
        open_chord_file(str(tmp_path / "a\x00.mid"))
    with pytest.raises(SessionError, match="non-empty string, got 42"):
        open_drums(42)


# ---------------------------------------------------------------------------- chord files


def test_a_chord_file_track_can_be_chosen_by_name_or_automatically(tmp_path):
    path = write_song(
        tmp_path / "two.mid",
        [chord_track("Pad", [0, 0]), chord_track("Organ", [2, 2], channel=1)],
    )
    organ = open_chord_file(str(path), track="organ")
    assert organ.path == path and organ.requested_track == "organ"
    assert "Organ" in organ.track.label
    assert {n.pitch % 12 for n in organ.track.notes} == {2, 6, 9}
    chosen = open_chord_file(str(path))
    assert chosen.requested_track is None and chosen.reason
    with pytest.raises(SessionError, match="no track named 'Bass'"):
        open_chord_file(str(path), track="Bass")


def test_a_chord_file_track_may_name_several_parts_read_as_one_harmony(tmp_path):
    # As /jasco/chords/file sends it: one string, parts separated by commas.
    path = write_song(
        tmp_path / "hands.mid",
        [chord_track("RH", [0, 5]), chord_track("LH", [0, 5], channel=1)],
    )
    both = open_chord_file(str(path), track="RH,LH")
    assert both.requested_track == "RH,LH"
    assert len(both.track.notes) == 12
    assert "'RH' + " in both.reason and "as one harmony" in both.reason
    with pytest.raises(SessionError, match="no track named 'Bass'"):
        open_chord_file(str(path), track="RH,Bass")


def test_a_chord_file_describes_itself_in_plain_json(tmp_path):
    path = write_song(tmp_path / "keys.mid", [chord_track("Keys", [0, 5])])
    chord_file = open_chord_file(str(path), track=1)  # track 0 holds the tempo
    document = json.loads(json.dumps(chord_file.describe()))
    assert document == {
        "path": str(path),
        "requested_track": 1,
        "track": chord_file.track.label,
        "parts": [chord_file.track.label],
        "reason": chord_file.reason,
    }


def test_a_combined_track_choice_names_every_part_it_combines(tmp_path):
    path = write_song(
        tmp_path / "hands.mid",
        [chord_track("RH", [0, 5]), chord_track("LH", [0, 5], channel=1)],
    )
    document = json.loads(json.dumps(open_chord_file(str(path), track="RH,LH").describe()))
    assert document["track"] == "tracks 1 'RH' + 2 'LH'"
    assert document["parts"] == ["track 1 'RH' channel 1", "track 2 'LH' channel 2"]
    assert "as one harmony" in document["reason"]


# ---------------------------------------------------------------------------- drums


def test_a_drum_stem_is_placed_on_the_timeline_from_its_start_beat(tmp_path):
    rate = 8000
    stem = np.zeros((rate, 1), dtype=np.float32)
    stem[0] = 0.5  # a click on the stem's first sample
    path = tmp_path / "drums.flac"
    soundfile.write(path, stem, rate)
    drums = open_drums(str(path), start_beat=4.0)  # bar 2 at 120 bpm = 2.0 s
    assert isinstance(drums, AudioDrums)
    assert (drums.sample_rate, drums.frames, drums.channels) == (rate, rate, 1)
    # Only the window comes back: 1.5 s from 1.5 s, the click 0.5 s in.
    audio, got_rate = drums.window_audio(AT_120_BPM, 1.5, 1.5, 32000)
    assert got_rate == rate and audio.shape == (1, round(1.5 * rate))
    assert np.flatnonzero(audio[0]).tolist() == [round(0.5 * rate)]
    # A window after the stem has ended is silence.
    later, _ = drums.window_audio(AT_120_BPM, 4.0, 1.0, 32000)
    assert not later.any()
    assert drums.describe() == {"kind": "audio", "path": str(path), "start_beat": 4.0}


def test_a_drum_stem_that_vanishes_after_it_was_opened_is_a_session_error(tmp_path):
    path = write_wav(tmp_path / "gone.wav")
    drums = open_drums(str(path))
    path.unlink()
    with pytest.raises(SessionError, match="cannot be read now"):
        drums.window_audio(AT_120_BPM, 0.0, 0.5, 32000)


def test_an_empty_drum_stem_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros((0, 1), dtype=np.float32), 8000)
    with pytest.raises(SessionError, match="holds no audio"):
        open_drums(str(path))


def test_a_drum_midi_file_becomes_a_synthesised_stem(tmp_path):
    kick = NoteTrack("Drums", [Note(36, 2.0, 2.25, 120, 9)], channel=9, is_drum=True)
    path = write_song(tmp_path / "beat.mid", [kick])
    drums = open_drums(str(path))
    assert isinstance(drums, MidiDrums)
    assert drums.hits == (DrumHit(2.0, 36, 120),)
    audio, rate = drums.window_audio(AT_120_BPM, 0.5, 1.5, 16000)  # 0.5 s .. 2.0 s
    assert rate == 16000 and audio.shape == (24000,)
    onset = int(np.flatnonzero(np.abs(audio) > 1e-3)[0])
    assert abs(onset - 8000) < 16  # beat 2 at 120 bpm = 1.0 s, 0.5 s into the window
    assert not audio[:4000].any()
    assert open_drums(str(path), start_beat=8.0).hits == (DrumHit(10.0, 36, 120),)
    assert drums.describe() == {"kind": "midi", "path": str(path), "start_beat": 0.0, "hits": 1}


def test_drum_midi_on_an_ordinary_channel_still_counts_as_drums(tmp_path):
    # DAWs often export a drum part on channel 1 with no GM percussion marking.
    notes = [Note(38, 1.0, 1.1, 100, 0), Note(36, 0.0, 0.1, 110, 0)]
    path = write_song(tmp_path / "ch1.mid", [NoteTrack("Beat", notes, channel=0)])
    assert open_drums(str(path)).hits == (DrumHit(0.0, 36, 110), DrumHit(1.0, 38, 100))


def test_a_midi_file_without_a_drum_track_is_refused_not_played_as_drums(tmp_path):
    path = write_song(tmp_path / "keys.mid", [NoteTrack("Piano", [Note(60, 0.0, 1.0)])])
    with pytest.raises(SessionError, match="no drum track .*'Piano'.*channel 10"):
        open_drums(str(path))


def test_a_drum_midi_file_without_notes_is_refused(tmp_path):
    path = write_song(tmp_path / "silent.mid", [NoteTrack("Drums", [], channel=9, is_drum=True)])
    with pytest.raises(SessionError, match="has no notes"):
        open_drums(str(path))


# ---------------------------------------------------------------------------- read roots


def test_paths_outside_the_read_roots_are_not_allowed_and_say_nothing_more(tmp_path):
    root = (tmp_path / "songs").resolve()
    root.mkdir()
    inside = write_song(root / "verse.mid", [chord_track("Keys", [0, 5])])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    write_song(outside / "secret.mid", [chord_track("Keys", [0, 5])])
    (root / "link.mid").symlink_to(outside / "secret.mid")
    assert open_chord_file(str(inside), roots=(root,)).path == inside
    answers = set()
    for probe in (
        outside / "secret.mid",  # exists
        outside / "missing.mid",  # does not
        outside,  # a folder
        root / "link.mid",  # a link inside pointing out
        root / ".." / "elsewhere" / "secret.mid",
        "/dev/zero",
    ):
        with pytest.raises(SessionError, match="not allowed") as raised:
            open_chord_file(str(probe), roots=(root,))
        answers.add(str(raised.value).replace(str(probe)[:200], "PATH"))
    assert len(answers) == 1  # the same words whatever lies there: nothing leaks
    with pytest.raises(SessionError, match="not allowed"):
        open_drums(str(outside / "secret.mid"), roots=(root,))


# ---------------------------------------------------------------------------- audio headers


def _wav_header(rate: int, channels: int, frames: int = 4) -> bytes:
    import struct

    bits = 16
    data = b"\0" * (frames * channels * bits // 8)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("rate", "channels", "cap"),
    [(2**31 - 1, 1, "MAX_AUDIO_SAMPLE_RATE"), (44100, 1000, "MAX_AUDIO_CHANNELS")],
)
def test_a_header_claiming_absurd_sizes_is_refused_before_anything_is_allocated(
    tmp_path, rate, channels, cap
):
    import resource
    import time

    path = tmp_path / "claims.wav"
    path.write_bytes(_wav_header(rate, channels))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(SessionError, match=cap):
        open_drums(str(path))
    assert time.perf_counter() - started < 5.0
    # ru_maxrss is in KiB on Linux: the 80 GiB the header asks for was never touched.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def test_a_drum_stem_with_nan_or_inf_samples_is_an_error_not_a_silent_clip(tmp_path):
    audio = np.full((44100, 1), 0.1, dtype=np.float32)
    audio[1000] = np.nan
    audio[2000] = np.inf
    path = tmp_path / "broken.wav"
    soundfile.write(path, audio, 44100, subtype="FLOAT")
    drums = open_drums(str(path))
    with pytest.raises(SessionError, match="NaN or infinite"):
        drums.window_audio(AT_120_BPM, 0.0, 1.0, 32000)


def test_a_drum_stem_swapped_for_a_link_after_its_check_is_not_read(tmp_path):
    stem = write_wav(tmp_path / "drums.wav")
    drums = open_drums(str(stem))
    secret = write_wav(tmp_path / "elsewhere.wav", seconds=2.0)
    stem.unlink()
    stem.symlink_to(secret)
    with pytest.raises(SessionError, match="now leads to another file"):
        drums.window_audio(AT_120_BPM, 0.0, 1.0, 32000)
