"""Clip files: exact lengths, BWF time stamps read by an independent parser, safe names, no overwrite.

The WAV byte layout itself is tested in test_wav.py; both read WAV bytes with support.py's reader."""

from __future__ import annotations

import json
import math
import struct
import threading
from datetime import datetime, timezone

import numpy as np
import pyloudnorm
import pytest
import soundfile

from jasco_bridge import clips
from jasco_bridge.clips import (
    clip_length_samples,
    clip_path,
    fit_length,
    normalize_loudness,
    save_clip,
    slugify,
    write_clip,
)
from jasco_bridge.conditioning import BarWindow
from jasco_bridge.errors import ClipError
from midi.tempo import TempoMap
from tests.bridge.support import bext_time_reference, read_riff_chunks

RATE = 32000


def seven_eight_window(start_bar: int = 3, bars: int = 7, bpm: float = 133.7) -> BarWindow:
    # 7/8 = 3.5 quarter-note beats per bar, at a constant tempo; no segment limit for clips.
    return BarWindow.of_bars(TempoMap.constant(bpm, 7, 8), start_bar, bars, segment_seconds=60.0)


def sine(seconds: float, amplitude: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


def test_seven_bars_of_seven_eight_at_133_7_bpm_have_exactly_the_rounded_sample_count(tmp_path):
    window = seven_eight_window()
    expected = round(window.duration_seconds * RATE)
    for rendered_seconds in (5.0, 10.0):  # shorter: padded; longer: trimmed
        info = save_clip(
            sine(rendered_seconds),
            RATE,
            path=tmp_path / f"clip{rendered_seconds}.wav",
            window=window,
            sidecar={"prompt": "odd meter"},
        )
        audio, rate = soundfile.read(info.path, dtype="float32")
        assert rate == RATE
        assert len(audio) == expected == clip_length_samples(window.duration_seconds, RATE)


@pytest.mark.parametrize("output_rate", [44100, 48000])
def test_resampling_to_the_session_rate_keeps_the_bar_exact_length_and_start(tmp_path, output_rate):
    window = seven_eight_window(start_bar=5)
    info = save_clip(
        sine(10.0),
        RATE,
        path=tmp_path / "x.wav",
        window=window,
        sidecar={},
        output_sample_rate=output_rate,
    )
    audio, rate = soundfile.read(info.path, dtype="float32")
    assert rate == output_rate == info.sample_rate
    assert len(audio) == round(window.duration_seconds * output_rate)
    if output_rate == 48000:  # 527748.69 samples: rounding, not truncation, decides
        assert len(audio) == math.floor(window.duration_seconds * output_rate) + 1
    assert info.time_reference_samples == round(window.start_seconds * output_rate)
    # The 220 Hz tone survives: its peak stays near the 0.5 written.
    assert 0.45 < float(np.max(np.abs(audio[1000:-1000]))) < 0.55


def test_bext_time_reference_read_back_by_an_independent_parser(tmp_path):
    window = seven_eight_window(start_bar=9, bars=1)
    info = save_clip(sine(3.0), RATE, path=tmp_path / "a.wav", window=window, sidecar={})
    chunks = read_riff_chunks(info.path.read_bytes())
    assert list(chunks) == ["fmt ", "bext", "data"]
    assert len(chunks["bext"]) >= 602
    assert bext_time_reference(chunks["bext"]) == round(window.start_seconds * RATE)
    assert info.time_reference_samples == round(window.start_seconds * RATE)
    version = struct.unpack_from("<H", chunks["bext"], 256 + 32 + 32 + 10 + 8 + 8)[0]
    assert version == 1
    audio_format, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunks["fmt "])
    assert (audio_format, channels, rate, bits) == (1, 1, RATE, 24)


def test_bext_description_and_origination_are_fixed_width_ascii(tmp_path):
    stamp = datetime(2026, 11, 25, 17, 5, 9, tzinfo=timezone.utc)
    info = write_clip(
        sine(0.05),
        RATE,
        tmp_path / "d.wav",
        time_reference_samples=0,
        sidecar={"start_beat": 0.0, "length_beats": 4.0},
        description="lofi – rhodes",
        origination=stamp,
    )
    bext = read_riff_chunks(info.path.read_bytes())["bext"]
    assert bext[:256].rstrip(b"\x00") == b"lofi ? rhodes"
    assert bext[320:330] == b"2026-11-25"
    assert bext[330:338] == b"17:05:09"
    assert info.start_beat == 0.0 and info.length_beats == 4.0


def test_an_existing_clip_is_never_overwritten(tmp_path):
    window = seven_eight_window(bars=1)
    path = tmp_path / "s" / "bars003-003_x_1_j1.wav"
    first = save_clip(sine(2.0, 0.2), RATE, path=path, window=window, sidecar={"take": 1})
    first_bytes = first.path.read_bytes()
    second = save_clip(sine(2.0, 0.7), RATE, path=path, window=window, sidecar={"take": 2})
    assert first.path == path
    assert second.path == path.with_name("bars003-003_x_1_j1-2.wav")
    assert second.sidecar_path == second.path.with_suffix(".json")
    assert first.path.read_bytes() == first_bytes
    assert json.loads(first.sidecar_path.read_text())["take"] == 1
    assert json.loads(second.sidecar_path.read_text())["take"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "bars003-003_x_1_j1-2.json",
        "bars003-003_x_1_j1-2.wav",
        "bars003-003_x_1_j1.json",
        "bars003-003_x_1_j1.wav",
    ], "no temporary files may be left behind"


def test_writers_racing_for_one_name_all_get_their_own_file(tmp_path):
    path = tmp_path / "race.wav"
    infos = []

    def write(level: float) -> None:
        infos.append(
            write_clip(
                np.full(1000, level, dtype=np.float32),
                RATE,
                path,
                time_reference_samples=0,
                sidecar={"level": level},
                start_beat=0.0,
                length_beats=1.0,
            )
        )

    threads = [threading.Thread(target=write, args=(i / 10,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({info.path for info in infos}) == 8
    for info in infos:
        level = json.loads(info.sidecar_path.read_text())["level"]
        audio, _ = soundfile.read(info.path, dtype="float32")
        assert audio[0] == pytest.approx(level, abs=1e-6)  # each sidecar sits beside its WAV


def test_without_hard_links_clips_are_still_never_overwritten(tmp_path, monkeypatch):
    def no_links(source, target, **where):
        raise PermissionError(1, "Operation not permitted")  # as exFAT or an SMB share answers

    monkeypatch.setattr(clips.os, "link", no_links)
    path = tmp_path / "fat.wav"
    kwargs = {"time_reference_samples": 0, "start_beat": 0.0, "length_beats": 1.0}
    first = write_clip(sine(0.1, 0.2), RATE, path, sidecar={"take": 1}, **kwargs)
    first_bytes = first.path.read_bytes()
    second = write_clip(sine(0.1, 0.6), RATE, path, sidecar={"take": 2}, **kwargs)
    assert (first.path.name, second.path.name) == ("fat.wav", "fat-2.wav")
    assert first.path.read_bytes() == first_bytes
    assert json.loads(second.sidecar_path.read_text())["take"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fat-2.json",
        "fat-2.wav",
        "fat.json",
        "fat.wav",
    ]


def test_a_leftover_sidecar_also_makes_the_name_taken(tmp_path):
    path = tmp_path / "c.wav"
    path.with_suffix(".json").write_text("{}")
    info = write_clip(
        sine(0.1),
        RATE,
        path,
        time_reference_samples=0,
        sidecar={},
        start_beat=0.0,
        length_beats=1.0,
    )
    assert info.path.name == "c-2.wav"
    assert path.with_suffix(".json").read_text() == "{}"


def test_sidecar_holds_the_placement_and_the_callers_facts(tmp_path):
    window = seven_eight_window(start_bar=2, bars=3)
    info = save_clip(
        sine(10.0),
        RATE,
        path=tmp_path / "s.wav",
        window=window,
        sidecar={"prompt": "dub techno", "seed": np.int64(7), "chords": [["C", "C:maj"]]},
    )
    document = json.loads(info.sidecar_path.read_text(encoding="utf-8"))
    assert document["prompt"] == "dub techno"
    assert document["seed"] == 7
    assert document["chords"] == [["C", "C:maj"]]
    assert document["start_bar"] == 2 and document["bars"] == 3
    assert document["start_beat"] == pytest.approx(3.5)
    assert document["length_beats"] == pytest.approx(10.5)
    assert document["duration_seconds"] == pytest.approx(window.duration_seconds)
    assert document["audio"]["samples"] == round(window.duration_seconds * RATE)
    assert document["audio"]["time_reference_samples"] == info.time_reference_samples
    assert info.length_beats == pytest.approx(10.5)
    assert info.start_seconds == pytest.approx(window.start_seconds, abs=1 / RATE)


def test_a_sidecar_that_is_not_json_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ClipError, match="cannot be saved as JSON"):
        write_clip(
            sine(0.1),
            RATE,
            tmp_path / "n.wav",
            time_reference_samples=0,
            sidecar={"bad": object()},
            start_beat=0.0,
            length_beats=1.0,
        )
    assert list(tmp_path.iterdir()) == []


def test_write_clip_needs_to_know_where_the_clip_goes(tmp_path):
    with pytest.raises(ClipError, match="start_beat= and length_beats="):
        write_clip(sine(0.1), RATE, tmp_path / "n.wav", time_reference_samples=0, sidecar={})


def test_clip_path_names_the_bars_prompt_seed_and_job(tmp_path):
    path = clip_path(tmp_path, "default", 5, 4, "Lofi hip hop, Rhodes!", 1234, 17)
    assert path == tmp_path.resolve() / "default" / "bars005-008_lofi-hip-hop-rhodes_1234_j17.wav"


@pytest.mark.parametrize(
    ("session", "prompt"),
    [
        ("../../etc", "../../../../etc/passwd"),
        ("/etc", "/absolute/prompt"),
        ("a\x00b", "nul\x00byte"),
        ("..", ".."),
        ("", ""),
        ("セッション" * 40, "🎹 ピアノ " * 200 + "x" * 500),
        ("C:\\Windows", "con\\aux\\..\\nul"),
    ],
)
def test_clip_paths_stay_one_folder_inside_out_dir_whatever_the_names(tmp_path, session, prompt):
    root = tmp_path.resolve()
    path = clip_path(tmp_path, session, 1, 2, prompt, 99, 3)
    assert path.resolve().parent.parent == root
    assert len(path.name) < 120 and len(path.parent.name) <= 64
    assert path.name.isascii() and "\x00" not in str(path)
    assert path.name.startswith("bars001-002_") and path.name.endswith("_99_j3.wav")


def test_session_folders_avoid_names_windows_reserves(tmp_path):
    assert clip_path(tmp_path, "CON", 1, 1, "x", 1, 1).parent.name == "con-session"
    assert clip_path(tmp_path, "com1", 1, 1, "x", 1, 1).parent.name == "com1-session"
    assert clip_path(tmp_path, "console", 1, 1, "x", 1, 1).parent.name == "console"


def test_a_session_folder_linked_outside_out_dir_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out_dir = tmp_path / "clips"
    out_dir.mkdir()
    (out_dir / "live").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ClipError, match="outside the clip folder"):
        clip_path(out_dir, "live", 1, 1, "x", 1, 1)


def test_slugify_folds_accents_and_limits_length():
    assert slugify("Café  Crème — Jazz", 40, "x") == "cafe-creme-jazz"
    assert slugify("a" * 100, 10, "x") == "a" * 10
    assert slugify("!!!", 10, "fallback") == "fallback"


def test_fit_length_pads_with_silence_and_trims():
    audio = np.ones(5, dtype=np.float32)
    assert fit_length(audio, 7).tolist() == [1, 1, 1, 1, 1, 0, 0]
    assert fit_length(audio, 3).tolist() == [1, 1, 1]
    assert fit_length(np.ones((2, 5), dtype=np.float32), 6).shape == (2, 6)


def test_loudness_normalisation_reaches_the_target(tmp_path):
    window = seven_eight_window(start_bar=1, bars=4)
    info = save_clip(
        sine(10.0, amplitude=0.05),
        RATE,
        path=tmp_path / "l.wav",
        window=window,
        sidecar={},
        target_lufs=-16.0,
    )
    audio, rate = soundfile.read(info.path, dtype="float64")
    assert pyloudnorm.Meter(rate).integrated_loudness(audio) == pytest.approx(-16.0, abs=0.1)
    assert json.loads(info.sidecar_path.read_text())["target_lufs"] == -16.0


def test_loudness_normalisation_never_pushes_peaks_over_the_ceiling():
    spiky = sine(2.0, amplitude=0.01)
    spiky[::3200] = 0.9  # quiet overall, loud clicks: reaching -6 LUFS would clip them
    louder = normalize_loudness(spiky, RATE, -6.0, peak_ceiling_dbfs=-1.0)
    assert float(np.max(np.abs(louder))) == pytest.approx(10 ** (-1 / 20), rel=1e-4)


def test_loudness_normalisation_leaves_silence_and_tiny_clips_alone():
    silence = np.zeros(RATE, dtype=np.float32)
    assert np.array_equal(normalize_loudness(silence, RATE, -14.0), silence)
    short = sine(0.1)
    assert np.array_equal(normalize_loudness(short, RATE, -14.0), short)
    with pytest.raises(ClipError, match="negative LUFS"):
        normalize_loudness(short, RATE, 3.0)


def test_a_stereo_clip_keeps_its_channels_through_resampling_and_writing(tmp_path):
    window = seven_eight_window(start_bar=1, bars=1)
    stereo = np.stack([sine(2.0, 0.5), sine(2.0, 0.1)])
    info = save_clip(
        stereo, RATE, path=tmp_path / "st.wav", window=window, sidecar={}, output_sample_rate=48000
    )
    audio, rate = soundfile.read(info.path, dtype="float32")
    assert rate == 48000 and audio.shape == (round(window.duration_seconds * 48000), 2)
    peaks = np.max(np.abs(audio[1000:-1000]), axis=0)
    assert 0.45 < peaks[0] < 0.55 and 0.08 < peaks[1] < 0.12
    assert json.loads(info.sidecar_path.read_text())["audio"]["channels"] == 2


def test_clips_and_sidecars_are_readable_by_other_users(tmp_path):
    window = seven_eight_window(bars=1)
    clip = save_clip(sine(2.0, 0.2), RATE, path=tmp_path / "a.wav", window=window, sidecar={})
    assert clip.path.stat().st_mode & 0o777 == 0o644
    assert clip.sidecar_path.stat().st_mode & 0o777 == 0o644
