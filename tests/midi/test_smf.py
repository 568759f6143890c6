from pathlib import Path

import mido
import pytest

from midi.errors import MidiFileError
from midi.notes import Note, NoteTrack
from midi.smf import MidiSong, read_midi_file, write_midi_file
from midi.tempo import TempoChange, TempoMap, TimeSignature


def save(
    tmp_path: Path,
    tracks: list[list[mido.Message | mido.MetaMessage]],
    *,
    ppq=480,
    type=1,
    name="song.mid",
):
    midi = mido.MidiFile(type=type, ticks_per_beat=ppq)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    path = tmp_path / name
    midi.save(path)
    return path


def on(note, time=0, channel=0, velocity=90):
    return mido.Message("note_on", note=note, velocity=velocity, time=time, channel=channel)


def off(note, time=0, channel=0):
    return mido.Message("note_off", note=note, time=time, channel=channel)


def tempo(bpm, time=0):
    return mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=time)


def meter(numerator, denominator, time=0):
    return mido.MetaMessage(
        "time_signature", numerator=numerator, denominator=denominator, time=time
    )


def name(text):
    return mido.MetaMessage("track_name", name=text)


@pytest.mark.parametrize("ppq", [96, 480, 960, 30000])
def test_ticks_become_exact_beats_at_any_ppq(tmp_path, ppq):
    path = save(
        tmp_path,
        [
            [tempo(90)],
            [name("keys"), on(60, ppq // 2), off(60, 3 * ppq), on(64), off(64, ppq // 4)],
        ],
        ppq=ppq,
    )
    song = read_midi_file(path)
    assert song.ticks_per_beat == ppq
    (track,) = song.tracks
    assert [(n.pitch, n.start_beat, n.end_beat) for n in track.notes] == [
        (60, 0.5, 3.5),
        (64, 3.5, 3.75),
    ]
    assert song.tempo_map.bpm_at(0.0) == pytest.approx(90.0)
    assert song.path == path


def test_tempo_and_meter_events_on_a_later_track_count(tmp_path):
    path = save(
        tmp_path,
        [
            [name("melody"), on(72), off(72, 480 * 16)],
            [name("conductor"), tempo(100), meter(3, 4), tempo(50, 480 * 6), meter(6, 8, 480 * 3)],
        ],
    )
    tempo_map = read_midi_file(path).tempo_map
    assert tempo_map.tempos == (TempoChange(0.0, 100.0), TempoChange(6.0, 50.0))
    assert tempo_map.meters == (TimeSignature(0.0, 3, 4), TimeSignature(9.0, 6, 8))
    assert tempo_map.seconds_at(8.0) == pytest.approx(6 * 0.6 + 2 * 1.2)


def test_file_without_tempo_or_meter_is_120_bpm_in_4_4(tmp_path):
    tempo_map = read_midi_file(save(tmp_path, [[on(60), off(60, 480)]])).tempo_map
    assert tempo_map.seconds_at(1.0) == 0.5
    assert tempo_map.beats_per_bar_at(0.0) == 4.0


def test_running_status_is_read(tmp_path):
    # MThd: type 0, one track, 96 ppq. The track writes note-on 0x90 once and then leans on
    # running status for two more note-ons (velocity 0 = note-off).
    body = bytes(
        [0x00, 0x90, 60, 100]  # t=0   note-on C4
        + [0x60, 60, 0]  # t=96  (running status) C4 velocity 0 -> off
        + [0x00, 64, 80]  # t=96  (running status) E4 on
        + [0x30, 64, 0]  # t=144 E4 off
        + [0x00, 0xFF, 0x2F, 0x00]  # end of track
    )
    data = b"MThd" + bytes([0, 0, 0, 6, 0, 0, 0, 1, 0, 96]) + b"MTrk" + len(body).to_bytes(4, "big")
    path = tmp_path / "running.mid"
    path.write_bytes(data + body)
    (track,) = read_midi_file(path).tracks
    assert [(n.pitch, n.start_beat, n.end_beat, n.velocity) for n in track.notes] == [
        (60, 0.0, 1.0, 100),
        (64, 1.0, 1.5, 80),
    ]


def test_type_0_file_is_split_by_channel_with_drums_apart(tmp_path):
    path = save(
        tmp_path,
        [
            [
                name("Band"),
                on(36, channel=9),
                on(48, channel=1),
                on(60, channel=0),
                off(36, 120, channel=9),
                off(60, 360, channel=0),
                off(48, 0, channel=1),
            ]
        ],
        type=0,
    )
    song = read_midi_file(path)
    by_channel = {track.channel: track for track in song.tracks}
    assert sorted(by_channel) == [0, 1, 9]
    assert [n.pitch for n in by_channel[0].notes] == [60]
    assert [n.pitch for n in by_channel[1].notes] == [48]
    drums = by_channel[9]
    assert drums.is_drum and not by_channel[0].is_drum
    assert [n.pitch for n in drums.notes] == [36]
    assert drums.name == "Band ch 10 drums"
    assert all(track.index == 0 for track in song.tracks)


def test_two_tracks_on_one_channel_stay_apart(tmp_path):
    melody = [on(76), off(76, 480), on(74), off(74, 480)]
    chords = [on(48), on(52), on(55), off(48, 960), off(52), off(55)]
    song = read_midi_file(save(tmp_path, [[tempo(120)], melody, chords]))
    assert [(t.index, t.channel, len(t)) for t in song.tracks] == [(1, 0, 2), (2, 0, 3)]


def test_velocity_zero_overlaps_and_unclosed_notes(tmp_path):
    messages = [
        on(60),  # first C4
        on(60, 240),  # second C4 while the first still sounds
        on(60, 240, velocity=0),  # ends the first (first in, first out)
        off(60, 240),  # ends the second
        on(67, 0),  # never ended: lasts to the end of the track
        mido.MetaMessage("end_of_track", time=960),
    ]
    (track,) = read_midi_file(save(tmp_path, [messages])).tracks
    assert [(n.pitch, n.start_beat, n.end_beat) for n in track.notes] == [
        (60, 0.0, 1.0),
        (60, 0.5, 1.5),
        (67, 1.5, 3.5),
    ]


def test_write_then_read_round_trips(tmp_path):
    tempo_map = TempoMap.constant(97.5, 3, 4).with_tempo_change(6.0, 140)
    tracks = (
        NoteTrack("pad", (Note(48, 0.0, 3.0, 80, 2), Note(55, 0.0, 3.0, 81, 2)), 1, 2),
        NoteTrack("kit", (Note(36, 0.0, 0.25, 120, 9), Note(38, 1.0, 1.25, 110, 9)), 2, 9, True),
    )
    path = write_midi_file(MidiSong(tempo_map, tracks, 960), tmp_path / "out.mid")
    song = read_midi_file(path)
    assert song.tracks == tracks
    assert song.tempo_map.meters == tempo_map.meters
    for written, read in zip(tempo_map.tempos, song.tempo_map.tempos, strict=True):
        assert read.beat == written.beat
        assert read.bpm == pytest.approx(written.bpm, rel=1e-5)


def test_chords_dev_songs_read_with_expected_tracks(chords_dev_dir):
    song = read_midi_file(chords_dev_dir / "pop909_128.mid")
    assert [(t.index, t.name) for t in song.tracks] == [(1, "MELODY"), (2, "BRIDGE"), (3, "PIANO")]
    assert song.duration_seconds > 200


# --- malformed input ------------------------------------------------------------------------


def header(type=1, tracks=1, ppq=480) -> bytes:
    return (
        b"MThd"
        + (6).to_bytes(4, "big")
        + type.to_bytes(2, "big")
        + tracks.to_bytes(2, "big")
        + ppq.to_bytes(2, "big")
    )


def track_chunk(body: bytes) -> bytes:
    return b"MTrk" + len(body).to_bytes(4, "big") + body


END = bytes([0x00, 0xFF, 0x2F, 0x00])
NOTE = bytes([0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"This is a text file, not MIDI at all.", "not a readable Standard MIDI File"),
        (header() + track_chunk(NOTE + END)[:-6], "truncated"),
        (header(ppq=0) + track_chunk(NOTE + END), "0 ticks per beat"),
        (header(ppq=0xE728) + track_chunk(NOTE + END), "SMPTE"),
        (header(type=2) + track_chunk(NOTE + END), "type-2"),
        (header() + track_chunk(bytes([0x00, 0xFF, 0x51, 0x03, 0, 0, 0]) + NOTE + END), "0 micro"),
        # 0x000100 = 256 microseconds per beat = 234375 bpm
        (header() + track_chunk(bytes([0x00, 0xFF, 0x51, 0x03, 0, 1, 0]) + NOTE + END), "bpm"),
    ],
)
def test_malformed_files_raise_midi_file_error_naming_the_file(tmp_path, data, problem):
    path = tmp_path / "broken.mid"
    path.write_bytes(data)
    with pytest.raises(MidiFileError, match=problem) as caught:
        read_midi_file(path)
    assert str(path) in str(caught.value)


def test_missing_path_and_folder_raise_midi_file_error(tmp_path):
    with pytest.raises(MidiFileError, match=r"nope\.mid: no such file"):
        read_midi_file(tmp_path / "nope.mid")
    with pytest.raises(MidiFileError, match=r"is a folder"):
        read_midi_file(tmp_path)


def test_file_without_notes_reads_as_a_song_without_tracks(tmp_path):
    song = read_midi_file(save(tmp_path, [[tempo(100), meter(4, 4)]]))
    assert song.tracks == ()
    assert song.end_beat == 0.0


def test_meter_change_off_a_bar_line_in_a_file_starts_a_new_bar(tmp_path):
    # A 3/4 event two beats into bar 2 of a 4/4 song: bar 2 is cut to 2 beats, bar 3 starts there.
    path = save(tmp_path, [[meter(4, 4), meter(3, 4, 480 * 6), on(60), off(60, 480 * 12)]])
    tempo_map = read_midi_file(path).tempo_map
    assert tempo_map.downbeats(0.0, 12.0) == (0.0, 4.0, 6.0, 9.0)
    assert str(tempo_map) == "120 bpm 4/4; 3/4 from bar 3"


def test_a_drum_track_of_a_type_1_file_is_marked_as_drums(tmp_path):
    kit = [name("Kit"), on(36, channel=9), off(36, 240, channel=9)]
    keys = [name("Keys"), on(60, channel=0), off(60, 480, channel=0)]
    song = read_midi_file(save(tmp_path, [[tempo(120)], keys, kit]))
    assert [(t.name, t.is_drum) for t in song.tracks] == [("Keys", False), ("Kit", True)]
