"""The exceptions raised by `midi`. Every message names the bad input and says what to do."""


class MidiError(Exception):
    """Base class of every error raised by the `midi` package."""


class MidiFileError(MidiError):
    """A MIDI file could not be read: missing, not a file, truncated or malformed."""


class TempoMapError(MidiError, ValueError):
    """A tempo, time signature or musical position is out of range."""


class ChordSymbolError(MidiError, ValueError):
    """A chord symbol or label could not be parsed."""


class VocabularyError(MidiError):
    """A checkpoint's chord vocabulary file is missing or malformed."""


class TrackSelectionError(MidiError, ValueError):
    """The requested track does not exist or holds no usable notes."""


class NoteError(MidiError, ValueError):
    """A note's pitch, times, velocity or channel is out of range."""


class LiveInputError(MidiError):
    """Live MIDI input could not be opened, or was fed something that is not a MIDI event."""


class VocabularyLookupError(VocabularyError, LookupError):
    """A label or index that the chord vocabulary does not hold."""


class RecognitionSettingsError(MidiError, ValueError):
    """A chord recognition setting is out of range or names an unknown chord quality."""


class MidiLimitError(MidiFileError):
    """A song exceeds one of the sizes in `midi.limits`; the message names the limit."""


class SongTooLongError(MidiLimitError):
    """A song lasts longer than `MAX_SONG_BEATS` beats or `MAX_SONG_SECONDS` seconds."""


class TooManyTempoChangesError(MidiLimitError):
    """A song has more than `MAX_TEMPO_CHANGES` tempo events."""


class TooManyMeterChangesError(MidiLimitError):
    """A song has more than `MAX_METER_CHANGES` time-signature events."""


class TooManyNotesError(MidiLimitError):
    """A song has more than `MAX_NOTES` notes."""
