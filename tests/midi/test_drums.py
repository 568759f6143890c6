import mido
import pytest

from midi.drums import GM_DRUMS, DrumHit, drum_hits, drum_sound
from midi.errors import NoteError
from midi.smf import read_midi_file


def test_gm_table_names_the_usual_kit():
    assert {GM_DRUMS[p].role for p in (35, 36)} == {"kick"}
    assert {GM_DRUMS[p].role for p in (38, 40)} == {"snare"}
    assert {GM_DRUMS[p].role for p in (42, 44, 46)} == {"hihat"}
    assert {GM_DRUMS[p].role for p in (41, 43, 45, 47, 48, 50)} == {"tom"}
    assert {GM_DRUMS[p].role for p in (49, 57)} == {"crash"}
    assert {GM_DRUMS[p].role for p in (51, 59)} == {"ride"}
    assert sorted(GM_DRUMS) == list(range(35, 82))
    assert drum_sound(20).role == "percussion"


def test_drum_hits_from_a_type_0_file_drum_channel(tmp_path):
    def hit(note, time):
        return [
            mido.Message("note_on", channel=9, note=note, velocity=100, time=time),
            mido.Message("note_off", channel=9, note=note, time=0),
        ]

    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    messages = [mido.Message("note_on", channel=0, note=60, velocity=80)]
    messages += hit(36, 0) + hit(42, 48) + hit(38, 48) + hit(42, 48)
    messages += [mido.Message("note_off", channel=0, note=60, time=48)]
    midi.tracks.append(mido.MidiTrack(messages))
    midi.save(tmp_path / "beat.mid")
    (drums,) = [t for t in read_midi_file(tmp_path / "beat.mid").tracks if t.is_drum]
    hits = drum_hits(drums)
    assert [(h.start_beat, h.role) for h in hits] == [
        (0.0, "kick"),
        (0.5, "hihat"),
        (1.0, "snare"),
        (1.5, "hihat"),
    ]
    assert hits[2].name == "Acoustic Snare"


@pytest.mark.parametrize(
    ("start_beat", "pitch", "velocity"), [(-1.0, 36, 100), (0.0, 128, 100), (0.0, 36, 0)]
)
def test_drum_hit_rejects_impossible_values(start_beat, pitch, velocity):
    with pytest.raises(NoteError):
        DrumHit(start_beat, pitch, velocity)
