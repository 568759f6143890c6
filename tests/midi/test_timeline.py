from dataclasses import dataclass

import mir_eval
import pytest

from midi.errors import TempoMapError
from midi.tempo import TempoMap
from midi.timeline import ChordSegment, to_lab_lines, to_segments


@dataclass(frozen=True)
class FakeChord:
    """Stands in for midi.chords.Chord: the timeline only reads `.harte`."""

    harte: str


@dataclass(frozen=True)
class Timed:
    start_beat: float
    end_beat: float
    chord: FakeChord | None


def test_segments_carry_seconds_from_the_tempo_map():
    tempo_map = TempoMap.constant(120).with_tempo_change(4.0, 60)
    segments = to_segments(
        [Timed(4.0, 6.0, FakeChord("G:7")), Timed(0.0, 4.0, FakeChord("C:maj"))], tempo_map
    )
    assert [(s.start_seconds, s.end_seconds, s.label) for s in segments] == [
        (0.0, 2.0, "C:maj"),
        (2.0, 4.0, "G:7"),
    ]
    assert segments[1].duration_beats == 2.0


def test_a_chord_starting_early_cuts_the_previous_one_short():
    segments = to_segments(
        [Timed(0.0, 8.0, FakeChord("C:maj")), Timed(4.0, 8.0, FakeChord("F:maj"))],
        TempoMap.constant(120),
    )
    assert [(s.start_beat, s.end_beat) for s in segments] == [(0.0, 4.0), (4.0, 8.0)]


def test_lab_lines_are_contiguous_from_zero_with_no_chord_gaps():
    tempo_map = TempoMap.constant(100)
    timed = [
        Timed(1.0, 3.0, FakeChord("C:maj")),
        Timed(3.0, 5.0, None),
        Timed(6.0, 7.0, FakeChord("A:min7/b3")),
    ]
    lines = to_lab_lines(to_segments(timed, tempo_map), end_seconds=6.0)
    assert lines == [
        "0.000000\t0.600000\tN",
        "0.600000\t1.800000\tC:maj",
        "1.800000\t3.000000\tN",
        "3.000000\t3.600000\tN",
        "3.600000\t4.200000\tA:min7/b3",
        "4.200000\t6.000000\tN",
    ]


def test_lab_output_is_read_by_mir_eval(tmp_path):
    tempo_map = TempoMap.constant(97).with_tempo_change(7.0, 131)
    timed = [
        Timed(i * 1.5, i * 1.5 + 1.5, FakeChord(["C:maj", "E:min", "F:maj7"][i % 3]))
        for i in range(20)
    ]
    path = tmp_path / "song.lab"
    path.write_text("\n".join(to_lab_lines(to_segments(timed, tempo_map))) + "\n")
    intervals, labels = mir_eval.io.load_labeled_intervals(str(path))
    mir_eval.chord.validate(labels, labels)
    assert intervals[0][0] == 0.0
    assert (intervals[1:, 0] == intervals[:-1, 1]).all()
    assert intervals[-1][1] == pytest.approx(tempo_map.seconds_at(30.0), abs=1e-6)


def test_overlapping_segments_are_refused_by_lab_output():
    a = ChordSegment(0.0, 4.0, 0.0, 2.0, FakeChord("C:maj"))
    b = ChordSegment(2.0, 6.0, 1.0, 3.0, FakeChord("G:maj"))
    with pytest.raises(TempoMapError, match="overlap"):
        to_lab_lines([a, b])


def test_segment_must_end_after_it_starts():
    with pytest.raises(TempoMapError, match="no later than it starts"):
        ChordSegment(4.0, 4.0, 2.0, 2.0, None)
