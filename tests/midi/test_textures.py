"""Harmony spread over several parts and full textures, from real MIDI files written here:
two-hand piano, a four-part choir, an Alberti bass, a suspension, a voicing the key decides."""

from __future__ import annotations

from tests.midi.test_recognize import block, recognise_file, summary, write_song


def labels(timed) -> list[str]:
    return [label for _, _, label in summary(timed)]


def test_two_hand_piano_is_read_from_both_hands(tmp_path):
    # Left hand: the root, then its octave; right hand: third and fifth (or seventh).
    # Neither hand alone spells these chords: E G over nothing reads as E minor.
    progression = [(36, (64, 67), "C:maj"), (33, (60, 64), "A:min"),
                   (29, (60, 69), "F:maj"), (31, (65, 71), "G:7")]  # fmt: skip
    left, right = [], []
    for bar, (root, upper, _) in enumerate(progression):
        start = 4.0 * bar
        left += [(root, start, 2.0), (root + 12, start + 2.0, 2.0)]
        right += block(upper, start) + [(upper[0] + 12, start + 1.0, 1.0)]
    path = write_song(tmp_path / "hands.mid", {"Piano RH": right, "Piano LH": left})
    timed, _ = recognise_file(path)
    assert labels(timed) == [label for _, _, label in progression]
    right_hand_alone, _ = recognise_file(path, "Piano RH")
    assert labels(right_hand_alone) != labels(timed)


def test_a_four_part_choir_is_one_harmony_changing_on_the_beat(tmp_path):
    # I IV V I ii V I in C, one chord a beat, close to a hymn: each voice a single line.
    chords = [((48, 55, 64, 72), "C:maj"), ((53, 57, 65, 72), "F:maj"),
              ((55, 55, 62, 71), "G:maj"), ((48, 55, 64, 72), "C:maj"),
              ((50, 57, 65, 74), "D:min"), ((43, 59, 62, 67), "G:maj"),
              ((48, 55, 64, 72), "C:maj"), ((48, 55, 64, 72), "C:maj")]  # fmt: skip
    voices = {name: [] for name in ("Soprano", "Alto", "Tenor", "Bass")}
    for beat, (pitches, _) in enumerate(chords * 2):
        for name, pitch in zip(("Bass", "Tenor", "Alto", "Soprano"), pitches, strict=True):
            voices[name].append((pitch, float(beat), 1.0))
    timed, _ = recognise_file(write_song(tmp_path / "satb.mid", voices))
    expected = []
    for _, label in chords * 2:
        if not expected or expected[-1] != label:
            expected.append(label)
    assert labels(timed) == expected


def test_an_alberti_bass_is_integrated_over_the_bar(tmp_path):
    # Low - high - middle - high in eighths, the classical left hand, under a melody.
    shapes = [((48, 55, 52), "C:maj"), ((41, 48, 45), "F:maj"),
              ((43, 53, 47), "G:7"), ((48, 55, 52), "C:maj")]  # fmt: skip
    left, right = [], []
    for bar, ((low, high, middle), _) in enumerate(shapes):
        for i, pitch in enumerate((low, high, middle, high) * 2):
            left.append((pitch, 4.0 * bar + 0.5 * i, 0.5))
    right = [(76, 0.0, 2.0), (79, 2.0, 2.0), (77, 4.0, 2.0), (81, 6.0, 2.0),
             (74, 8.0, 2.0), (79, 10.0, 2.0), (72, 12.0, 4.0)]  # fmt: skip
    timed, _ = recognise_file(write_song(tmp_path / "alberti.mid", {"Left": left, "Melody": right}))
    assert labels(timed) == [label for _, label in shapes]


def test_a_suspension_resolving_stays_in_its_chord(tmp_path):
    # G7 for a bar, then C with the F held over the bar line (4-3 suspension) resolving to E.
    notes = block((43, 59, 62, 65), 0.0)
    notes += block((36, 55, 60), 4.0)
    notes += [(65, 2.0, 3.0), (64, 5.0, 3.0)]
    timed, _ = recognise_file(write_song(tmp_path / "suspension.mid", {"Piano": notes}))
    assert summary(timed) == [(0.0, 4.0, "G:7"), (4.0, 8.0, "C:maj")]


def test_the_key_decides_an_ambiguous_diminished_seventh(tmp_path):
    # The same four notes, F Ab B D with F in the bass, are the leading-tone seventh of C minor
    # (B dim7 over its fifth) after C minor chords, and of Eb major (D dim7 over its third)
    # after Eb major chords.
    def song(name, tonic_chords):
        notes = []
        for bar, pitches in enumerate(tonic_chords):
            notes += block(pitches, 4.0 * bar)
        notes += block((41, 56, 59, 62), 4.0 * len(tonic_chords))
        notes += block(tonic_chords[0], 4.0 * (len(tonic_chords) + 1))
        return recognise_file(write_song(tmp_path / f"{name}.mid", {"Piano": notes}))[0]

    minor = song("c_minor", [(36, 60, 63, 67), (41, 60, 65, 68), (43, 59, 62, 67)] * 2)
    major = song("eb_major", [(39, 63, 67, 70), (44, 60, 63, 68), (46, 62, 65, 70)] * 2)
    assert labels(minor)[-2] == "B:dim7/b5"
    assert labels(major)[-2] == "D:dim7/b3"
