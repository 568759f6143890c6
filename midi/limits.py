"""The largest songs `midi` reads and recognises, and the checks that enforce them.

Work and memory follow these sizes (the metric grid grows with the song's length, profiles
with its notes), so a file claiming a chord 2.7e9 beats long, or a million tempo changes, is
refused at once with an error naming the limit instead of allocating for its claim. Each is
well beyond real music: three hours, a note every few milliseconds of a long piano piece.
"""

from __future__ import annotations

from midi.errors import (
    SongTooLongError,
    TooManyMeterChangesError,
    TooManyNotesError,
    TooManyTempoChangesError,
)

MAX_SONG_BEATS = 50_000
MAX_SONG_SECONDS = 3 * 60 * 60
MAX_TEMPO_CHANGES = 10_000
MAX_METER_CHANGES = 10_000
MAX_NOTES = 500_000


def check_song_beats(end_beat: float, where: str) -> None:
    if end_beat > MAX_SONG_BEATS:
        raise SongTooLongError(
            f"{where}: lasts {end_beat:.6g} beats, more than the {MAX_SONG_BEATS:,} beats "
            "(MAX_SONG_BEATS) a song may have; a note or event is placed far beyond the music "
            "(a damaged file or a stuck note): fix or trim it in your DAW and export again"
        )


def check_song_seconds(seconds: float, where: str) -> None:
    if seconds > MAX_SONG_SECONDS:
        raise SongTooLongError(
            f"{where}: lasts {seconds:.6g} seconds, more than the {MAX_SONG_SECONDS:,} seconds "
            "(MAX_SONG_SECONDS, 3 hours) a song may have; trim it or check its tempo events"
        )


def check_tempo_changes(count: int, where: str) -> None:
    if count > MAX_TEMPO_CHANGES:
        raise TooManyTempoChangesError(
            f"{where}: has more than {MAX_TEMPO_CHANGES:,} tempo changes (MAX_TEMPO_CHANGES); "
            "thin out the tempo automation before exporting"
        )


def check_meter_changes(count: int, where: str) -> None:
    if count > MAX_METER_CHANGES:
        raise TooManyMeterChangesError(
            f"{where}: has more than {MAX_METER_CHANGES:,} time-signature changes "
            "(MAX_METER_CHANGES); a real score has far fewer, so the file is damaged"
        )


def check_notes(count: int, where: str) -> None:
    if count > MAX_NOTES:
        raise TooManyNotesError(
            f"{where}: has more than {MAX_NOTES:,} notes (MAX_NOTES); split the song or export "
            "only the parts you need"
        )
