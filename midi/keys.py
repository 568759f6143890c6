"""Key context for chord recognition: the local key of every grid unit, and the chords that
function in each key.

The same notes mean different chords in different keys: B D F Ab over an F is the leading-tone
seventh B°7 in C minor but D°7 in Eb major; C E G A is C6 in C and Am7 in G. The recogniser
therefore estimates the key around every unit (Krumhansl and Kessler's probe-tone profiles,
correlated with the pitch content of a few bars either side, the bass counted again) and asks a
little more evidence for a chord that has no function in that key.

Keys are numbered 0..11 for C major .. B major and 12..23 for C minor .. B minor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# (semitones above the tonic, quality) of the chords with a function in a major / minor key:
# the diatonic triads and sevenths, the dominant seventh, the leading-tone sevenths, and in
# minor the raised leading tone's dominant and diminished chords beside the natural ones.
_MAJOR_FUNCTIONS = frozenset(
    {
        (0, "maj"), (0, "maj7"), (2, "min"), (2, "min7"), (4, "min"), (4, "min7"),
        (5, "maj"), (5, "maj7"), (7, "maj"), (7, "7"), (9, "min"), (9, "min7"),
        (11, "dim"), (11, "hdim7"), (11, "dim7"), (2, "sus2"), (2, "sus4"), (7, "sus4"),
        (0, "sus2"), (0, "sus4"), (5, "sus2"), (7, "sus2"),
    }
)  # fmt: skip
_MINOR_FUNCTIONS = frozenset(
    {
        (0, "min"), (0, "min7"), (2, "dim"), (2, "hdim7"), (3, "maj"), (3, "maj7"),
        (3, "aug"), (5, "min"), (5, "min7"), (7, "maj"), (7, "7"), (7, "min"), (7, "min7"),
        (8, "maj"), (8, "maj7"), (10, "maj"), (10, "7"), (11, "dim"), (11, "dim7"),
        (0, "sus4"), (7, "sus4"), (0, "sus2"), (5, "maj"),
    }
)  # fmt: skip

N_KEYS = 24


def key_name(key: int) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[key % 12]} {'major' if key < 12 else 'minor'}"


def functional_chords(roots: Sequence[int], qualities: Sequence[str]) -> np.ndarray:
    """[24 keys, chords] True where the chord (root pitch class, quality name) functions in the key."""
    table = np.zeros((N_KEYS, len(roots)), dtype=bool)
    for key in range(N_KEYS):
        tonic, functions = key % 12, _MAJOR_FUNCTIONS if key < 12 else _MINOR_FUNCTIONS
        for column, (root, quality) in enumerate(zip(roots, qualities, strict=True)):
            table[key, column] = ((root - tonic) % 12, quality) in functions
    return table


def local_keys(
    chroma: np.ndarray, bass: np.ndarray, length_beats: np.ndarray, window_beats: float
) -> np.ndarray:
    """The key (0..23) around every unit: the best-correlated profile over `window_beats` on
    each side. `chroma` and `bass` are [units, 12] profiles, `length_beats` each unit's length."""
    evidence = chroma + bass
    cumulative = np.vstack([np.zeros(12), np.cumsum(evidence, axis=0)])
    starts = np.concatenate([[0.0], np.cumsum(length_beats)])
    middle = (starts[:-1] + starts[1:]) / 2.0
    low = np.searchsorted(starts, middle - window_beats, side="left")
    high = np.searchsorted(starts, middle + window_beats, side="right")
    high = np.minimum(high, len(length_beats))
    window = cumulative[high] - cumulative[low]  # [units, 12]
    profiles = np.vstack(
        [np.roll(_MAJOR_PROFILE, k) for k in range(12)]
        + [np.roll(_MINOR_PROFILE, k) for k in range(12)]
    )  # [24, 12]
    profiles = profiles - profiles.mean(axis=1, keepdims=True)
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    centred = window - window.mean(axis=1, keepdims=True)
    return np.argmax(centred @ profiles.T, axis=1)
