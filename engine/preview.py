"""The preview renderer: a small deterministic synthesiser behind the `Renderer` protocol.

It plays the same `GenerationRequest` that JASCO would get, without any weights, so the whole
loop (DAW -> bridge -> clip) can be heard and tested on a fresh machine:

* chords: a soft pad of detuned harmonic voices, voice-led in the middle register, one voicing
  per run of equal chord frames (frame k covers k / frame_rate_hz seconds onwards); indices with
  no pitch classes (N, UNK, the null index) are silence;
* bass: the chord's bass pitch class (the first one in `chord_tones`) on every beat of
  `request.beat_seconds`, louder on `request.downbeat_seconds`;
* drums: the request's drum stem mixed in quieter, or, without a stem, a kick/snare/hat pattern
  on the beat grid;
* melody: a sine lead following the top bin of `melody_salience` (bin k = MIDI 43 + k).

Tuning is equal temperament with A4 = 440 Hz. The seed changes the voicing register, detuning
and brightness a little, never the harmony or the timing. The output is mono float32, peak
normalised to -1 dBFS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import ConditioningError, GenerationCancelled
from engine.request import (
    CancelFn,
    GenerationRequest,
    GenerationResult,
    LongRequest,
    ProgressFn,
    WindowFn,
)
from engine.resample import resample

MELODY_LOWEST_MIDI = 43  # salience bin 0; bin k = MIDI 43 + k
PEAK_AMPLITUDE = 10 ** (-1 / 20)  # -1 dBFS: leaves room for inter-sample peaks
PAD_LOWEST_MIDI = 52  # E3 .. E5 keeps the pad above the bass and below a lead
PAD_HIGHEST_MIDI = 76
BASS_LOWEST_MIDI = 36  # C2 .. B2
DRUM_STEM_GAIN = 0.5
GENERATED_DRUMS_GAIN = 0.45
_DRUM_NOISE_SEED = 20240  # drum noise is part of the timbre, not of the request's randomness


def midi_to_hz(pitch: float | np.ndarray) -> float | np.ndarray:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class ChordSpan:
    """A run of equal chord frames, in seconds from the window start."""

    start_seconds: float
    end_seconds: float
    index: int


@dataclass(frozen=True)
class _Timbre:
    """The seed's small variations of the sound."""

    pad_centre_midi: float
    detune_cents: float
    brightness: float  # exponent of the 1/k^b harmonic roll-off: larger = darker


def chord_spans(
    chord_indices: Sequence[int], frame_rate_hz: float, duration_seconds: float
) -> list[ChordSpan]:
    """Runs of equal indices as time spans; frame k starts at k / frame_rate_hz."""
    spans: list[ChordSpan] = []
    run_start = 0
    for k in range(1, len(chord_indices) + 1):
        if k == len(chord_indices) or chord_indices[k] != chord_indices[run_start]:
            start = run_start / frame_rate_hz
            end = min(k / frame_rate_hz, duration_seconds)
            if end > start:
                spans.append(ChordSpan(start, end, int(chord_indices[run_start])))
            run_start = k
    return spans


def voice_chord(pitch_classes: Sequence[int], centre_midi: float) -> tuple[int, ...]:
    """Each pitch class in the octave nearest the centre, kept inside the pad register.

    Placing every chord around the same moving centre keeps common tones where they were and
    moves the others by the smallest step, which is what a player's voice leading sounds like.
    """
    notes = set()
    for pitch_class in dict.fromkeys(pitch_classes):
        base = pitch_class % 12
        candidates = [base + 12 * octave for octave in range(11)]
        in_range = [n for n in candidates if PAD_LOWEST_MIDI <= n <= PAD_HIGHEST_MIDI]
        notes.add(min(in_range, key=lambda n: (abs(n - centre_midi), n)))
    return tuple(sorted(notes))


def _envelope(n: int, sample_rate: int, attack_s: float, release_s: float) -> np.ndarray:
    """Linear attack, sustain, linear release over n samples; never clicks at either end."""
    env = np.ones(n, dtype=np.float64)
    attack = min(n, max(1, int(attack_s * sample_rate)))
    release = min(n - attack, max(1, int(release_s * sample_rate)))
    env[:attack] = np.linspace(0.0, 1.0, attack, endpoint=False)
    if release > 0:
        env[n - release :] *= np.linspace(1.0, 0.0, release)
    return env


_WAVETABLE_SIZE = 4096


def _harmonic_tone(
    hz: float, t: np.ndarray, brightness: float, harmonics: int, phase: float
) -> np.ndarray:
    """A band-limited saw-like tone (harmonics at 1/k^brightness), read from a one-cycle
    wavetable: one lookup per sample instead of one sine per harmonic."""
    cycle = np.arange(_WAVETABLE_SIZE + 1) / _WAVETABLE_SIZE
    table = sum(
        np.sin(2 * np.pi * k * cycle + phase * k) / k**brightness for k in range(1, harmonics + 1)
    )
    position = np.mod(hz * t, 1.0) * _WAVETABLE_SIZE
    index = position.astype(np.int64)
    fraction = position - index
    return table[index] * (1 - fraction) + table[index + 1] * fraction


def _render_pad(
    spans: Sequence[ChordSpan],
    chord_tones: Mapping[int, Sequence[int]],
    n_samples: int,
    sample_rate: int,
    timbre: _Timbre,
) -> np.ndarray:
    out = np.zeros(n_samples, dtype=np.float64)
    centre = timbre.pad_centre_midi
    detune = 2.0 ** (timbre.detune_cents / 1200.0)
    for span in spans:
        tones = chord_tones.get(span.index, ())
        if not tones:
            continue
        start = int(round(span.start_seconds * sample_rate))
        end = min(n_samples, int(round(span.end_seconds * sample_rate)))
        if end <= start:
            continue
        voicing = voice_chord(tones, centre)
        centre = 0.5 * centre + 0.5 * float(np.mean(voicing))
        t = np.arange(end - start) / sample_rate
        chord = np.zeros(end - start)
        for note in voicing:
            hz = float(midi_to_hz(note))
            # Two slightly detuned copies give the slow beating of an analogue pad.
            for ratio, phase in ((detune, 0.0), (1 / detune, 1.3)):
                chord += _harmonic_tone(hz * ratio, t, timbre.brightness, 6, phase)
        chord *= _envelope(len(chord), sample_rate, attack_s=0.06, release_s=0.08)
        out[start:end] += chord / (2 * len(voicing))
    return 0.5 * out


def _beat_accents(
    beat_seconds: Sequence[float], downbeat_seconds: Sequence[float]
) -> list[tuple[float, int]]:
    """(beat time, position in its bar) with position 0 on downbeats."""
    downbeats = sorted(downbeat_seconds)
    accents = []
    position = 0
    for beat in sorted(beat_seconds):
        if any(abs(beat - d) < 1e-6 for d in downbeats):
            position = 0
        accents.append((beat, position))
        position += 1
    return accents


def _render_bass(
    spans: Sequence[ChordSpan],
    chord_tones: Mapping[int, Sequence[int]],
    accents: Sequence[tuple[float, int]],
    n_samples: int,
    sample_rate: int,
) -> np.ndarray:
    out = np.zeros(n_samples, dtype=np.float64)
    for span in spans:
        tones = chord_tones.get(span.index, ())
        if not tones:
            continue
        hz = float(midi_to_hz(BASS_LOWEST_MIDI + tones[0] % 12))
        onsets = [(b, p) for b, p in accents if span.start_seconds - 1e-9 <= b < span.end_seconds]
        if not onsets or onsets[0][0] - span.start_seconds > 1e-3:
            # A chord that starts between beats (or without a grid) still gets its bass at once.
            onsets.insert(0, (span.start_seconds, 1))
        for i, (onset, position) in enumerate(onsets):
            note_end = onsets[i + 1][0] if i + 1 < len(onsets) else span.end_seconds
            start = int(round(onset * sample_rate))
            end = min(n_samples, int(round(note_end * sample_rate)))
            if end <= start:
                continue
            t = np.arange(end - start) / sample_rate
            tone = np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t)
            decay = np.exp(-t / 0.35)
            gain = 1.0 if position == 0 else 0.7
            out[start:end] += gain * tone * decay * _envelope(end - start, sample_rate, 0.004, 0.03)
    return 0.35 * out


def _kick(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * sample_rate)) / sample_rate
    sweep_hz = 50.0 + 100.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(sweep_hz) / sample_rate
    return np.sin(phase) * np.exp(-t / 0.12)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * sample_rate)) / sample_rate
    body = np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.05)
    return 0.6 * body + 0.5 * rng.standard_normal(len(t)) * np.exp(-t / 0.07)


def _hat(decay_s: float) -> Callable[[int, np.random.Generator], np.ndarray]:
    def voice(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(int(5 * decay_s * sample_rate)) / sample_rate
        noise = rng.standard_normal(len(t))
        bright = np.diff(noise, prepend=0.0)  # a first difference tilts the noise towards the top
        return 0.35 * bright * np.exp(-t / decay_s)

    return voice


def _tom(hz: float) -> Callable[[int, np.random.Generator], np.ndarray]:
    def voice(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        t = np.arange(int(0.4 * sample_rate)) / sample_rate
        sweep = hz * (1.0 + 0.3 * np.exp(-t / 0.02))
        return 0.8 * np.sin(2 * np.pi * np.cumsum(sweep) / sample_rate) * np.exp(-t / 0.15)

    return voice


def _cymbal(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(1.2 * sample_rate)) / sample_rate
    noise = np.diff(rng.standard_normal(len(t)), prepend=0.0)
    return 0.25 * noise * np.exp(-t / 0.4)


def _click(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.06 * sample_rate)) / sample_rate
    return 0.5 * np.sin(2 * np.pi * 900.0 * t) * np.exp(-t / 0.01)


# General MIDI percussion key map (channel 10) -> the voice that stands in for it.
_DRUM_VOICES: dict[int, Callable[[int, np.random.Generator], np.ndarray]] = {
    35: _kick,
    36: _kick,
    37: _click,
    38: _snare,
    39: _snare,
    40: _snare,
    41: _tom(82.0),
    42: _hat(0.03),
    43: _tom(98.0),
    44: _hat(0.02),
    45: _tom(110.0),
    46: _hat(0.15),
    47: _tom(131.0),
    48: _tom(147.0),
    49: _cymbal,
    50: _tom(165.0),
    51: _cymbal,
    52: _cymbal,
    53: _cymbal,
    55: _cymbal,
    57: _cymbal,
    59: _cymbal,
}


def synthesize_drums(
    hits: Sequence[tuple[float, int, int]], duration_seconds: float, sample_rate: int
) -> np.ndarray:
    """A mono drum stem from (seconds, General MIDI drum pitch, velocity 1-127) hits.

    Kick, snare, hi-hats, toms and cymbals have their own voices; any other percussion key plays
    a short click. Hits outside [0, duration) are skipped; tails are cut at the end. The result
    is float32 in [-1, 1] and the same for the same hits.
    """
    if not (np.isfinite(duration_seconds) and duration_seconds > 0):
        raise ConditioningError(
            f"duration_seconds must be a positive number, got {duration_seconds!r}"
        )
    if sample_rate <= 0:
        raise ConditioningError(f"sample_rate must be positive, got {sample_rate!r}")
    n_samples = int(round(duration_seconds * sample_rate))
    out = np.zeros(n_samples, dtype=np.float64)
    rng = np.random.default_rng(_DRUM_NOISE_SEED)
    for seconds, pitch, velocity in hits:
        start = int(round(seconds * sample_rate))
        if not 0 <= start < n_samples:
            continue
        voice = _DRUM_VOICES.get(int(pitch), _click)(sample_rate, rng)
        gain = min(max(int(velocity), 0), 127) / 127.0
        end = min(n_samples, start + len(voice))
        out[start:end] += gain * voice[: end - start]
    peak = float(np.max(np.abs(out))) if n_samples else 0.0
    if peak > 1.0:
        out /= peak
    return out.astype(np.float32)


def _groove(accents: Sequence[tuple[float, int]]) -> list[tuple[float, int, int]]:
    """A plain backbeat for when no drum stem is given: kick on 1 (and 3), snare on 2 and 4,
    closed hat on every beat."""
    hits: list[tuple[float, int, int]] = []
    for beat, position in accents:
        if position == 0:
            hits.append((beat, 36, 120))
        elif position % 2 == 0:
            hits.append((beat, 36, 90))
        else:
            hits.append((beat, 38, 100))
        hits.append((beat, 42, 70))
    return hits


def _stem_to_mono(stem: np.ndarray, stem_rate: int, sample_rate: int, n_samples: int) -> np.ndarray:
    audio = np.asarray(stem, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if len(audio):
        audio = resample(audio, stem_rate, sample_rate)
    fitted = np.zeros(n_samples, dtype=np.float64)
    fitted[: min(n_samples, len(audio))] = audio[:n_samples]
    peak = float(np.max(np.abs(fitted))) if n_samples else 0.0
    return fitted / peak if peak > 0 else fitted


def _render_melody(
    salience: np.ndarray, frame_rate_hz: float, n_samples: int, sample_rate: int
) -> np.ndarray:
    salience = np.asarray(salience, dtype=np.float64)
    if salience.size == 0:  # no frames or no bins: nothing to follow
        return np.zeros(n_samples)
    active = salience.max(axis=0) > 0
    pitch = MELODY_LOWEST_MIDI + salience.argmax(axis=0)
    frame_of_sample = np.minimum(
        (np.arange(n_samples) * frame_rate_hz / sample_rate).astype(np.int64), salience.shape[1] - 1
    )
    inside = np.arange(n_samples) * frame_rate_hz / sample_rate < salience.shape[1]
    hz = np.where(inside, midi_to_hz(pitch[frame_of_sample]), 0.0)
    gate = (active[frame_of_sample] & inside).astype(np.float64)
    # A 10 ms moving average turns the frame gate into soft note edges without clicks.
    width = max(1, int(0.01 * sample_rate))
    gate = np.convolve(gate, np.ones(width) / width, mode="same")
    phase = 2 * np.pi * np.cumsum(hz) / sample_rate
    return 0.3 * gate * (np.sin(phase) + 0.2 * np.sin(2 * phase))


class PreviewEngine:
    """Renders any `GenerationRequest` with a built-in synthesiser; needs no weights.

    `chord_tones` maps a chord vocabulary index to its pitch classes, bass first (as
    `ChordVocabulary.pitch_classes_of` gives them); indices missing from it are silent.
    """

    name = "preview"
    is_preview = True
    model_id = "preview"
    accepts_melody = True

    def __init__(
        self,
        chord_tones: Mapping[int, Sequence[int]],
        *,
        sample_rate: int = 32000,
        frame_rate_hz: float = 50.0,
        segment_seconds: float = 10.0,
    ) -> None:
        if sample_rate <= 0:
            raise ConditioningError(f"sample_rate must be positive, got {sample_rate!r}")
        if frame_rate_hz <= 0:
            raise ConditioningError(f"frame_rate_hz must be positive, got {frame_rate_hz!r}")
        if segment_seconds <= 0:
            raise ConditioningError(f"segment_seconds must be positive, got {segment_seconds!r}")
        self.chord_tones: dict[int, tuple[int, ...]] = {
            int(index): tuple(int(p) % 12 for p in tones) for index, tones in chord_tones.items()
        }
        self.sample_rate = sample_rate
        self.frame_rate_hz = frame_rate_hz
        self.segment_seconds = segment_seconds

    def generate_long(
        self,
        request: LongRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        on_window: WindowFn | None = None,
    ) -> GenerationResult:
        """The windows joined into one request and synthesised at once: the preview has no
        segment limit, so a long render has no seams at all (one window as far as `on_window`
        and `progress` are concerned)."""
        if on_window is not None:
            on_window(0, 1)
        return self.generate(request.joined(self.frame_rate_hz), progress, should_cancel)

    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
    ) -> GenerationResult:
        """Any length of music in one synthesis (the segment is only what the bridge plans
        windows for)."""
        began = time.perf_counter()
        sr = self.sample_rate
        n_samples = int(round(request.duration_seconds * sr))
        rng = np.random.default_rng(request.seed)
        timbre = _Timbre(
            pad_centre_midi=float(rng.uniform(60.0, 67.0)),
            detune_cents=float(rng.uniform(3.0, 9.0)),
            brightness=float(rng.uniform(1.2, 1.8)),
        )
        spans = (
            chord_spans(request.chord_indices, self.frame_rate_hz, request.duration_seconds)
            if request.chord_indices is not None
            else []
        )
        accents = _beat_accents(
            [b for b in request.beat_seconds if 0 <= b < request.duration_seconds],
            request.downbeat_seconds,
        )

        def drums() -> np.ndarray:
            if request.drums_wav is not None:
                stem = _stem_to_mono(request.drums_wav, request.drums_sample_rate, sr, n_samples)
                return DRUM_STEM_GAIN * stem
            stem = synthesize_drums(_groove(accents), request.duration_seconds, sr)
            return GENERATED_DRUMS_GAIN * stem[:n_samples].astype(np.float64)

        def melody() -> np.ndarray:
            if request.melody_salience is None:
                return np.zeros(n_samples)
            return _render_melody(request.melody_salience, self.frame_rate_hz, n_samples, sr)

        stages: dict[str, Callable[[], np.ndarray]] = {
            "pad": lambda: _render_pad(spans, self.chord_tones, n_samples, sr, timbre),
            "bass": lambda: _render_bass(spans, self.chord_tones, accents, n_samples, sr),
            "drums": drums,
            "melody": melody,
        }
        mix = np.zeros(n_samples, dtype=np.float64)
        for step, (stage, render) in enumerate(stages.items(), start=1):
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled(
                    f"preview render cancelled before its {stage} stage ({step}/{len(stages)})"
                )
            mix += render()
            if progress is not None:
                progress(step, len(stages))
        peak = float(np.max(np.abs(mix))) if n_samples else 0.0
        if peak > 0:
            mix *= PEAK_AMPLITUDE / peak
        return GenerationResult(
            audio=mix.astype(np.float32),
            sample_rate=sr,
            engine=self.name,
            model=self.model_id,
            timings={"total_seconds": time.perf_counter() - began},
        )
