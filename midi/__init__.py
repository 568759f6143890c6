"""Musical time and symbols for jasco-bridge: tempo maps, MIDI files, chords, JASCO's vocabulary.

Plain Python plus mido and numpy: no torch, no OSC. Beats are quarter notes counted from 0;
bars are 1-based wherever a musician sees them.

Cheat sheet::

    from midi import (TempoMap, read_midi_file, choose_chord_track, recognize_chords,
                      parse_chord_symbol, ChordVocabulary, to_segments, to_lab_lines, chord_frames)

    song = read_midi_file("song.mid")              # MidiSong(tempo_map, tracks, ...)
    choice = choose_chord_track(song)              # TrackChoice(track, reason); or track="PIANO"
    chords = recognize_chords(choice.track, song.tempo_map)    # [TimedChord] in beats
    segments = to_segments(chords, song.tempo_map)              # + seconds, Harte labels
    print("\\n".join(to_lab_lines(segments)))                    # MIREX lines for mir_eval

    tempo = TempoMap.constant(92, 4, 4).with_tempo_change(64.0, 120)
    tempo.seconds_at(66.0), tempo.beat_at(40.0)    # exact inverses
    tempo.bar_window(start_bar=9, bars=4)          # (start_beat, end_beat)

    vocab = ChordVocabulary.from_pickle("chord_to_index_mapping.pkl")  # the checkpoint's table
    vocab.map_chord(parse_chord_symbol("Dbmaj9/F"))    # VocabularyMatch: given -> C#maj7
    chord_frames([(0.0, 2.4, 12), (2.4, 4.8, 5)], 0.0, fill_index=vocab.no_chord_index)
"""

from midi.chords import QUALITIES, Chord, Quality, TimedChord
from midi.drums import GM_DRUMS, DrumHit, drum_hits
from midi.errors import (
    ChordSymbolError,
    LiveInputError,
    MidiError,
    MidiFileError,
    NoteError,
    RecognitionSettingsError,
    TempoMapError,
    TrackSelectionError,
    VocabularyError,
    VocabularyLookupError,
)
from midi.frames import beat_seconds_in_window, chord_frames, melody_salience
from midi.live import LiveInput, open_live_input
from midi.notes import Note, NoteTrack, pitch_name, pitch_number
from midi.recognize import RecognitionSettings, recognize_chords
from midi.smf import MidiSong, read_midi_file, write_midi_file
from midi.symbols import parse_chord_symbol
from midi.tempo import BarBeat, TempoChange, TempoMap, TimeSignature
from midi.timeline import ChordSegment, to_lab_lines, to_segments
from midi.tracks import TrackChoice, choose_chord_track
from midi.vocabulary import ChordVocabulary, VocabularyMatch, describe_symbol

__all__ = [
    "GM_DRUMS",
    "QUALITIES",
    "BarBeat",
    "Chord",
    "ChordSegment",
    "ChordSymbolError",
    "ChordVocabulary",
    "DrumHit",
    "LiveInput",
    "LiveInputError",
    "MidiError",
    "MidiFileError",
    "MidiSong",
    "Note",
    "NoteError",
    "NoteTrack",
    "Quality",
    "RecognitionSettings",
    "RecognitionSettingsError",
    "TempoChange",
    "TempoMap",
    "TempoMapError",
    "TimeSignature",
    "TimedChord",
    "TrackChoice",
    "TrackSelectionError",
    "VocabularyError",
    "VocabularyLookupError",
    "VocabularyMatch",
    "beat_seconds_in_window",
    "choose_chord_track",
    "chord_frames",
    "describe_symbol",
    "drum_hits",
    "melody_salience",
    "open_live_input",
    "parse_chord_symbol",
    "pitch_name",
    "pitch_number",
    "read_midi_file",
    "recognize_chords",
    "to_lab_lines",
    "to_segments",
    "write_midi_file",
]
