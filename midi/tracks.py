"""Which track carries the chords: the user's choice, or the best harmony track by content.

    >>> choice = choose_chord_track(song)                       # doctest: +SKIP
    >>> choice.reason                                           # doctest: +SKIP
    "track 3 'PIANO': 2 or more notes sound together 84% of the time, 3 or more pitch classes
    16%, average pitch D4 (most polyphonic of 3 tracks; its name suggests chords)"
    >>> choose_chord_track(song, "piano").track.index           # doctest: +SKIP
    3

The automatic choice never takes a drum track. It scores what a track plays, so unnamed tracks
are judged as well as named ones: chords mean several notes at once (polyphony), several pitch
classes at once, for much of the song, usually below the melody. A track name such as "Piano" or
"Pad" adds a little, "Lead" or "Bass" takes a little away; content decides when names are absent.

Harmony often lives in several parts: a piano written as two hands, a pad over a bass track, a
choir in four voices. The best part is then joined by the parts that belong to its harmony (a
part below it, another part playing chords, a part of the same instrument; every voice when no
part plays chords alone), and their union is recognised, its bass from the lowest. Drums, lead
melodies (a single line in the melody's register, or a name such as Lead or Vocal) and parts
heard in under a tenth of the song stay out. The reason says what was combined, why, and what
was left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

from midi.errors import TrackSelectionError
from midi.notes import NoteTrack, pitch_name
from midi.smf import MidiSong

CHORD_NAME_HINTS = ("chord", "piano", "pad", "keys", "comp", "harm", "accomp", "guitar", "organ")
NON_CHORD_NAME_HINTS = ("melody", "vocal", "voice", "lead", "bass", "drum", "solo", "perc")
_NAME_WEIGHT = 0.25
# A track sounding for less than this share of the song's span counts proportionally less.
_FULL_COVERAGE = 0.25
_REGISTER_CENTRE = 72  # C5: chord parts usually sit below it, melodies around or above it
LEAD_NAME_HINTS = ("melody", "vocal", "lead", "solo", "vox")
# Choir voices: a single line, yet part of the harmony.
VOICE_NAMES = frozenset({"soprano", "alto", "tenor", "bass", "baritone", "choir", "satb"})
# A part playing two notes at once about this often (on average with 3 pitch classes) plays chords.
_CHORDAL_POLYPHONY = 0.35
_MIN_PARTNER_COVERAGE = 0.1
# A partner this much lower on average is the part below (bass, left hand), not a doubling.
_LOWER_BY_SEMITONES = 3.0
# Words naming a hand, a voice number or a staff, not the instrument.
_PART_WORDS = frozenset({"right", "left", "hand", "upper", "lower", "staff", "part", "track"})


@dataclass(frozen=True)
class TrackProfile:
    """What a track plays, as the fractions that decide whether it carries the harmony.

    Fractions are of the time during which the track sounds at all.
    """

    track: NoteTrack
    two_notes_fraction: float  # time with 2 or more notes sounding
    three_classes_fraction: float  # time with 3 or more distinct pitch classes sounding
    coverage: float  # sounding time / span from the song start to the last note end
    mean_pitch: float

    @property
    def polyphony(self) -> float:
        return (self.two_notes_fraction + self.three_classes_fraction) / 2.0

    @property
    def name_bonus(self) -> float:
        words = re.sub(r"[^a-z]+", " ", self.track.name.lower())
        bonus = 0.0
        if any(hint in words for hint in CHORD_NAME_HINTS):
            bonus += _NAME_WEIGHT
        if any(hint in words for hint in NON_CHORD_NAME_HINTS):
            bonus -= _NAME_WEIGHT
        return bonus

    @property
    def score(self) -> float:
        coverage_factor = min(1.0, self.coverage / _FULL_COVERAGE)
        register = max(-0.1, min(0.1, (_REGISTER_CENTRE - self.mean_pitch) / 120.0))
        return self.polyphony * coverage_factor + register + self.name_bonus

    def describe(self) -> str:
        return (
            f"2 or more notes sound together {self.two_notes_fraction:.0%} of the time, "
            f"3 or more pitch classes {self.three_classes_fraction:.0%}, "
            f"average pitch {pitch_name(round(self.mean_pitch))}"
        )


def profile_track(track: NoteTrack, song_end_beat: float | None = None) -> TrackProfile:
    """Measure a track's polyphony, coverage and register by sweeping its note starts and ends."""
    if not track.notes:
        raise TrackSelectionError(f"{track.label} has no notes to profile")
    events = sorted(
        [(note.start_beat, 1, note.pitch) for note in track.notes]
        + [(note.end_beat, -1, note.pitch) for note in track.notes],
        key=lambda event: (event[0], event[1]),
    )
    sounding: Counter[int] = Counter()
    sounding_time = two_notes = three_classes = 0.0
    previous = events[0][0]
    for beat, change, pitch in events:
        if beat > previous and sounding:
            span = beat - previous
            sounding_time += span
            if sum(sounding.values()) >= 2:
                two_notes += span
            if len({p % 12 for p in sounding}) >= 3:
                three_classes += span
        previous = beat
        sounding[pitch] += change
        if not sounding[pitch]:
            del sounding[pitch]
    song_end = max(song_end_beat or 0.0, track.end_beat)
    return TrackProfile(
        track=track,
        two_notes_fraction=two_notes / sounding_time,
        three_classes_fraction=three_classes / sounding_time,
        coverage=sounding_time / song_end,
        mean_pitch=sum(note.pitch for note in track.notes) / len(track.notes),
    )


@dataclass(frozen=True)
class TrackChoice:
    """The notes chords will be read from, which parts they came from, and why.

    `track` is what to recognise: the one chosen part, or the union of the `parts` combined as
    one harmony (bass from the lowest of them, as the recogniser takes the lowest sounding note).
    """

    track: NoteTrack
    reason: str
    parts: tuple[NoteTrack, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.parts) or (self.track,))

    @property
    def label(self) -> str:
        """``track 3 'PIANO'``, or ``tracks 1 'RH' + 2 'LH'`` for a combination."""
        if len(self.parts) == 1:
            return self.parts[0].label
        return "tracks " + " + ".join(_short(part) for part in self.parts)


TrackRequest = str | int | Sequence[str | int] | None


def choose_chord_track(song: MidiSong, track: TrackRequest = None) -> TrackChoice:
    """The user's `track`, else the part (or combination of parts) that carries the harmony.

    `track` is a name (case-insensitive) or a 0-based file track index, or several of them (a
    sequence, or one string separated by commas such as ``"RH,LH"`` or ``"1,2"``), whose notes
    are then recognised together. Raises `TrackSelectionError` listing the song's tracks when an
    asked-for track does not exist or is a drum track, and when the song has no pitched notes.
    """
    if track is None:
        return _choose_automatically(song)
    requests = _requests(song, track)
    parts: list[NoteTrack] = []
    hows: list[str] = []
    for request in requests:
        part, how = _requested_part(song, request)
        if part not in parts:
            parts.append(part)
            hows.append(how)
    if len(parts) == 1:
        return TrackChoice(parts[0], f"{parts[0].label}: chosen by request ({hows[0]})")
    choice = combined(parts)
    return TrackChoice(
        choice,
        f"{_labels(parts)}: chosen by request ({', '.join(hows)}), recognised as one harmony",
        tuple(parts),
    )


def combined(parts: Sequence[NoteTrack]) -> NoteTrack:
    """The union of several parts' notes as one track (no file index or single channel)."""
    channels = {part.channel for part in parts}
    return NoteTrack(
        " + ".join(part.name or _short(part) for part in parts),
        [note for part in parts for note in part.notes],
        None,
        channels.pop() if len(channels) == 1 else None,
    )


def _requests(song: MidiSong, track: object) -> list[str | int]:
    """The parts asked for, one per item; a name holding commas that matches no track whole is
    several names ("RH,LH")."""
    given = list(track) if isinstance(track, Sequence) and not isinstance(track, str) else [track]
    items: list[str | int] = []
    for item in given:
        if isinstance(item, bool) or not isinstance(item, (str, Integral)):
            raise TrackSelectionError(
                f"track must be a name or a 0-based track number, got {item!r}; {_listing(song)}"
            )
        if isinstance(item, str) and "," in item and not _matches(song, item.strip()):
            items.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            items.append(item)
    if not items:
        raise TrackSelectionError(
            f"track must name at least one part, got {track!r}; {_listing(song)}"
        )
    return items


def _matches(song: MidiSong, wanted: str | int) -> list[NoteTrack]:
    if isinstance(wanted, Integral) or wanted.isdigit():
        return [t for t in song.tracks if t.index == int(wanted)]
    exact = [t for t in song.tracks if t.name.strip().lower() == wanted.lower()]
    return exact or [t for t in song.tracks if wanted.lower() in t.name.lower()]


def _requested_part(song: MidiSong, request: str | int) -> tuple[NoteTrack, str]:
    wanted = request.strip() if isinstance(request, str) else request
    if isinstance(wanted, Integral) or wanted.isdigit():
        how = f"track {int(wanted)}"
    else:
        how = f"track named {wanted!r}"
    matches = _matches(song, wanted)
    pitched = [t for t in matches if not t.is_drum]
    if not matches:
        raise TrackSelectionError(f"{song.name}: no {how}; {_listing(song)}")
    if not pitched:
        raise TrackSelectionError(
            f"{song.name}: {how} is a drum track, which has no chords; {_listing(song)}"
        )
    if len(pitched) > 1:
        raise TrackSelectionError(
            f"{song.name}: {how} matches {len(pitched)} parts "
            f"({', '.join(_short(t) for t in pitched)}); name one of them"
        )
    return pitched[0], how


def _choose_automatically(song: MidiSong) -> TrackChoice:
    candidates = [t for t in song.tracks if not t.is_drum and t.notes]
    if not candidates:
        what = "only drum tracks" if song.tracks else "no notes at all"
        raise TrackSelectionError(
            f"{song.name}: has {what}, so there are no chords to read; "
            "use a MIDI file with a chord or piano part, or send chords as symbols"
        )
    end = song.end_beat
    profiles = [profile_track(t, end) for t in candidates]
    best = max(profiles, key=lambda p: p.score)
    partners = _harmony_partners(best, profiles)
    if partners:
        return _combination(best, partners, profiles)
    if len(profiles) == 1:
        context = "the only pitched track"
    else:
        most_polyphonic = max(profiles, key=lambda p: p.polyphony) is best
        ranking = "most polyphonic" if most_polyphonic else "best chord score"
        context = f"{ranking} of {len(profiles)} tracks"
    if best.name_bonus > 0:
        context += "; its name suggests chords"
    return TrackChoice(best.track, f"{best.track.label}: {best.describe()} ({context})")


def _harmony_partners(
    best: TrackProfile, profiles: Sequence[TrackProfile]
) -> list[tuple[TrackProfile, str]]:
    """The other parts that belong to `best`'s harmony, each with the reason it does.

    A part joins when it plays below the chosen part (a bass, a left hand), when it plays chords
    itself (a second chord instrument, the other hand), or when it shares the chosen part's
    instrument name (a piano or choir split by hand or voice). When no part plays chords alone
    (a choir, a string section), every voice joins. Lead melodies (a single line above the
    chosen part, or a name such as Lead or Vocal) and parts heard in under a tenth of the song
    stay out.
    """
    chordal = best.polyphony >= _CHORDAL_POLYPHONY
    family = _name_words(best.track)
    partners = []
    for profile in profiles:
        if profile is best or profile.coverage < _MIN_PARTNER_COVERAGE or _is_lead(profile):
            continue
        if not chordal:
            partners.append((profile, "a voice"))
        elif profile.mean_pitch < best.mean_pitch - _LOWER_BY_SEMITONES:
            partners.append((profile, "the part below it"))
        elif profile.polyphony >= _CHORDAL_POLYPHONY:
            partners.append((profile, "also plays chords"))
        elif family & _name_words(profile.track):
            partners.append((profile, "the same instrument"))
    return partners


def _combination(
    best: TrackProfile,
    partners: Sequence[tuple[TrackProfile, str]],
    profiles: Sequence[TrackProfile],
) -> TrackChoice:
    chosen = [best, *(profile for profile, _ in partners)]
    parts = sorted((p.track for p in chosen), key=lambda t: (t.index is None, t.index or 0))
    union = combined(parts)
    lowest = min(chosen, key=lambda p: p.mean_pitch)
    together = profile_track(union)
    if best.polyphony >= _CHORDAL_POLYPHONY:
        why = f"{_short(best.track)} plays chords ({best.describe()}); " + "; ".join(
            f"{_short(p.track)}: {what}" for p, what in partners
        )
    else:
        why = (
            f"no part plays chords alone, the {len(chosen)} voices together sound 3 or more "
            f"pitch classes {together.three_classes_fraction:.0%} of the time"
        )
    left_out = [p for p in profiles if p not in chosen]
    reason = f"{_labels(parts)} as one harmony: {why}; bass from the lowest, {_short(lowest.track)}"
    if left_out:
        reason += "; left out: " + ", ".join(
            f"{_short(p.track)} ({_left_out_because(p)})" for p in left_out
        )
    return TrackChoice(union, reason, tuple(parts))


def _is_lead(profile: TrackProfile) -> bool:
    """Named as a melody, or a single line in the melody's register that is not a choir voice."""
    words = re.sub(r"[^a-z]+", " ", profile.track.name.lower())
    if any(hint in words for hint in LEAD_NAME_HINTS):
        return True
    single_high_line = (
        profile.polyphony < _CHORDAL_POLYPHONY / 2 and profile.mean_pitch >= _REGISTER_CENTRE
    )
    return single_high_line and not _name_words(profile.track) & VOICE_NAMES


def _left_out_because(profile: TrackProfile) -> str:
    if profile.coverage < _MIN_PARTNER_COVERAGE:
        return "heard in under a tenth of the song"
    return "a lead melody" if _is_lead(profile) else "a single line above the chords"


def _name_words(track: NoteTrack) -> set[str]:
    """The words of a track's name that say which instrument it is (not which hand or part)."""
    words = set(re.sub(r"[^a-z]+", " ", track.name.lower()).split())
    return {w for w in words if len(w) > 2 and w not in _PART_WORDS}


def _labels(parts: Sequence[NoteTrack]) -> str:
    return "tracks " + " + ".join(_short(part) for part in parts)


def _short(track: NoteTrack) -> str:
    name = f"'{track.name}'" if track.name else "(unnamed)"
    index = "?" if track.index is None else str(track.index)
    drums = " drums" if track.is_drum else ""
    return f"{index} {name}{drums}"


def _listing(song: MidiSong) -> str:
    if not song.tracks:
        return "the file has no tracks with notes"
    return "tracks with notes: " + ", ".join(_short(t) for t in song.tracks)
