"""Clip files: bar-exact audio, a WAV with a BWF time stamp, and a JSON sidecar beside it.

A clip is the rendered audio for a bar range, cut or padded to exactly
`round(duration_seconds * sample_rate)` samples so that it ends on the bar line. The WAV carries a
Broadcast WAVE `bext` chunk whose TimeReference is the clip's start on the DAW timeline in samples
(beat 0 of the session = sample 0), so a DAW that honours BWF time stamps drops it on its bar.

Files are never overwritten: each one is written under a temporary name in the destination
folder, flushed to disk, then hard-linked to its final name, which fails instead of replacing an
existing file. On a clash the next free name (`..._j17-2.wav`) is taken.
The WAV bytes themselves (RIFF, `fmt `, `bext`, `data`) are built by `jasco_bridge.wav`.

    path = clip_path(out_dir, "default", start_bar=5, bars=4, prompt="lofi hip hop, rhodes",
                     seed=1234, job_id=17)
    # <out_dir>/default/bars005-008_lofi-hip-hop-rhodes_1234_j17.wav
    info = save_clip(result.audio, result.sample_rate, path=path, window=window, sidecar={...})
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.resample import resample
from jasco_bridge.errors import ClipError
from jasco_bridge.wav import BITS_PER_SAMPLE, DEFAULT_DESCRIPTION, encode_bwf_wav

if TYPE_CHECKING:
    from jasco_bridge.conditioning import BarWindow

logger = logging.getLogger(__name__)

PROMPT_SLUG_MAX_CHARS = 40
SESSION_SLUG_MAX_CHARS = 64
# Sample peak ceiling after loudness normalisation: 1 dB of headroom for inter-sample peaks.
DEFAULT_PEAK_CEILING_DBFS = -1.0
# pyloudnorm's gating blocks are 400 ms long; shorter audio has no integrated loudness.
_MIN_LOUDNESS_SECONDS = 0.4
_MAX_NAME_ATTEMPTS = 1000
_WINDOWS_RESERVED_NAMES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(1, 10)]
)


@dataclass(frozen=True)
class ClipInfo:
    """A clip written to disk, and where it belongs on the DAW timeline."""

    path: Path
    sidecar_path: Path
    start_beat: float
    length_beats: float
    start_seconds: float
    duration_seconds: float
    sample_rate: int
    time_reference_samples: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ClipError(f"clip sample_rate must be positive, got {self.sample_rate!r}")
        if self.time_reference_samples < 0:
            raise ClipError(
                "clip time_reference_samples must be >= 0 (sample 0 = beat 0 of the session), "
                f"got {self.time_reference_samples!r}"
            )
        if not (math.isfinite(self.length_beats) and self.length_beats > 0):
            raise ClipError(f"clip length_beats must be positive, got {self.length_beats!r}")


# ---------------------------------------------------------------------------------------------
# File names


def slugify(text: str, max_chars: int, fallback: str) -> str:
    """ASCII letters, digits and single hyphens, at most `max_chars` long; `fallback` if empty.

    Accents are folded (`Café` -> `cafe`); everything else that is not a letter or digit,
    path separators and NUL included, becomes a hyphen.
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    slug = slug[:max_chars].rstrip("-")
    return slug or fallback


def bar_range_label(start_bar: int, bars: int) -> str:
    """`bars005-008` for four bars from bar 5 (bars are 1-based and the range is inclusive;
    `BarWindow` has checked them)."""
    return f"bars{start_bar:03d}-{start_bar + bars - 1:03d}"


def clip_path(
    out_dir: str | os.PathLike[str],
    session: str,
    start_bar: int,
    bars: int,
    prompt: str,
    seed: int,
    job_id: int | None = None,
) -> Path:
    """`<out_dir>/<session>/bars005-008_<prompt slug>_<seed>_j<job>.wav`, proven to lie in out_dir.

    The one naming rule of clips, for the daemon (a job id) and the CLI (none: no `_j` part).
    The session name and prompt are slugged, so whatever they contain (`../..`, absolute paths,
    NUL, emoji) the result is a plain file name one folder below `out_dir`. The check runs on the
    resolved path too, so a symlinked session folder pointing elsewhere is refused.
    """
    root = Path(out_dir).resolve()
    folder = slugify(session, SESSION_SLUG_MAX_CHARS, fallback="default")
    if folder in _WINDOWS_RESERVED_NAMES:
        folder += "-session"  # Windows cannot create a folder called con, nul, com1, ...
    name = (
        f"{bar_range_label(start_bar, bars)}_"
        f"{slugify(prompt, PROMPT_SLUG_MAX_CHARS, fallback='no-prompt')}_"
        f"{int(seed)}{'' if job_id is None else f'_j{int(job_id)}'}.wav"
    )
    path = root / folder / name
    if not path.resolve().is_relative_to(root):
        raise ClipError(
            f"clip path {path} resolves outside the clip folder {root}: "
            f"remove the link at {root / folder} or choose another --out-dir"
        )
    return path


# ---------------------------------------------------------------------------------------------
# Audio


def clip_length_samples(duration_seconds: float, sample_rate: int) -> int:
    """Samples in a clip of `duration_seconds`: rounded to the nearest sample, never truncated."""
    return round(duration_seconds * sample_rate)


def fit_length(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut or zero-pad the last axis of `audio` to exactly `n_samples`."""
    have = audio.shape[-1]
    if have >= n_samples:
        return audio[..., :n_samples]
    padding = [(0, 0)] * (audio.ndim - 1) + [(0, n_samples - have)]
    return np.pad(audio, padding)


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int,
    target_lufs: float,
    *,
    peak_ceiling_dbfs: float = DEFAULT_PEAK_CEILING_DBFS,
) -> np.ndarray:
    """Gain `audio` to `target_lufs` integrated loudness (ITU-R BS.1770), then cap the peak.

    The peak cap wins over the target: a quiet, spiky clip ends up below the target rather than
    clipped. Silence and clips shorter than 0.4 s (no gating block) are returned unchanged.
    """
    import pyloudnorm

    if not math.isfinite(target_lufs) or target_lufs >= 0:
        raise ClipError(
            f"target loudness must be a negative LUFS value (e.g. -14), got {target_lufs}"
        )
    if audio.shape[-1] < _MIN_LOUDNESS_SECONDS * sample_rate:
        return audio
    meter = pyloudnorm.Meter(sample_rate)
    measured = meter.integrated_loudness(np.asarray(audio, dtype=np.float64).T)
    if not math.isfinite(measured):
        return audio
    gained = audio * np.float32(10.0 ** ((target_lufs - measured) / 20.0))
    peak = float(np.max(np.abs(gained)))
    ceiling = 10.0 ** (peak_ceiling_dbfs / 20.0)
    if peak > ceiling:
        gained = gained * np.float32(ceiling / peak)
    return gained.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Writing without ever overwriting


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _temporary_file(folder: Path, data: bytes, final_name: str) -> Path:
    descriptor, name = tempfile.mkstemp(prefix=f".{final_name}.", suffix=".part", dir=folder)
    try:
        # mkstemp creates the file private (0600); a clip is for the DAW and the producer to
        # open, possibly as another user, so give it the usual permissions of a document.
        os.fchmod(descriptor, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _publish(temporary: Path, final: Path) -> None:
    """Give the finished `temporary` file the name `final`; FileExistsError if that is taken.

    With hard links the temporary name stays until the caller removes it; without them the
    file itself moves, and `temporary` no longer exists afterwards.
    """
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise
    except OSError:
        # Filesystems without hard links (FAT, some network shares): claim the name exclusively,
        # then move the complete file over the empty placeholder.
        os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        try:
            os.replace(temporary, final)
        except OSError:
            final.unlink(missing_ok=True)
            raise


def _candidate(path: Path, attempt: int) -> Path:
    return path if attempt == 1 else path.with_name(f"{path.stem}-{attempt}{path.suffix}")


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders; the rename is durable enough there.
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_files_exclusively(path: Path, wav: bytes, sidecar_text: str) -> tuple[Path, Path]:
    """Write `wav` at `path` (or the next free `-N` name) and the sidecar beside it as `.json`.

    Returns the two final paths. Neither file is ever visible half-written and no existing file
    is replaced: a name counts as free only when both the `.wav` and the `.json` are.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        wav_temporary = _temporary_file(folder, wav, path.name)
        json_temporary = _temporary_file(folder, sidecar_text.encode("utf-8"), path.name)
    except OSError as error:
        raise ClipError(f"cannot write a clip in {folder}: {error.strerror or error}") from error
    try:
        for attempt in range(1, _MAX_NAME_ATTEMPTS + 1):
            wav_path = _candidate(path, attempt)
            json_path = wav_path.with_suffix(".json")
            if json_path.exists():
                continue
            try:
                _publish(wav_temporary, wav_path)
            except FileExistsError:
                continue
            try:
                _publish(json_temporary, json_path)
            except FileExistsError:
                # Another writer took the sidecar name between our check and now: give the
                # WAV name back (moving the file back where it was moved) and try the next.
                if wav_temporary.exists():
                    wav_path.unlink()
                else:
                    os.replace(wav_path, wav_temporary)
                continue
            _fsync_folder(folder)
            return wav_path, json_path
    except OSError as error:
        raise ClipError(f"cannot write clip {path}: {error.strerror or error}") from error
    finally:
        wav_temporary.unlink(missing_ok=True)
        json_temporary.unlink(missing_ok=True)
    raise ClipError(
        f"{_MAX_NAME_ATTEMPTS} clips named like {path.name} already exist in {folder}: "
        "move old clips away or choose another --out-dir"
    )


def write_clip(
    audio: np.ndarray,
    sample_rate: int,
    path: str | os.PathLike[str],
    *,
    time_reference_samples: int,
    sidecar: Mapping[str, Any],
    description: str = DEFAULT_DESCRIPTION,
    start_beat: float | None = None,
    length_beats: float | None = None,
    origination: datetime | None = None,
) -> ClipInfo:
    """Write `audio` as it is (no trimming) to `path`, with a BWF time stamp and a JSON sidecar.

    `audio` is float `[samples]` or `[channels, samples]`. `start_beat` and `length_beats`
    default to the sidecar's keys of the same names. The sidecar gets an `"audio"` entry (sample
    rate, samples, time reference); it shares the WAV's name stem instead of naming the file.
    If `path` is taken, the next free `-N` name is used; the returned `ClipInfo.path` says which.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or audio.shape[-1] == 0:
        raise ClipError(
            f"clip audio must be [samples] or [channels, samples] and not empty, got {audio.shape}"
        )
    start_beat = sidecar.get("start_beat") if start_beat is None else start_beat
    length_beats = sidecar.get("length_beats") if length_beats is None else length_beats
    if start_beat is None or length_beats is None:
        raise ClipError(
            "write_clip needs the clip's place in beats: pass start_beat= and length_beats= "
            "or put them in the sidecar"
        )
    wav = encode_bwf_wav(
        audio,
        sample_rate,
        time_reference_samples=time_reference_samples,
        description=description,
        origination=origination,
    )
    path = Path(path)
    document = {
        **sidecar,
        "audio": {
            "sample_rate": sample_rate,
            "channels": 1 if audio.ndim == 1 else audio.shape[0],
            "samples": audio.shape[-1],
            "bits_per_sample": BITS_PER_SAMPLE,
            "time_reference_samples": time_reference_samples,
        },
    }
    try:
        text = json.dumps(
            document, indent=2, ensure_ascii=False, allow_nan=False, default=_json_value
        )
    except (TypeError, ValueError) as error:
        raise ClipError(f"clip sidecar for {path.name} cannot be saved as JSON: {error}") from error
    wav_path, json_path = write_files_exclusively(path, wav, text)
    if wav_path != path:
        logger.info("%s already existed; wrote %s instead", path.name, wav_path.name)
    return ClipInfo(
        path=wav_path,
        sidecar_path=json_path,
        start_beat=float(start_beat),
        length_beats=float(length_beats),
        start_seconds=time_reference_samples / sample_rate,
        duration_seconds=audio.shape[-1] / sample_rate,
        sample_rate=sample_rate,
        time_reference_samples=time_reference_samples,
    )


def save_clip(
    audio: np.ndarray,
    sample_rate: int,
    *,
    path: str | os.PathLike[str],
    window: BarWindow,
    sidecar: Mapping[str, Any],
    output_sample_rate: int | None = None,
    target_lufs: float | None = None,
    description: str = DEFAULT_DESCRIPTION,
    origination: datetime | None = None,
) -> ClipInfo:
    """Rendered audio -> a bar-exact clip on disk: resample, trim/pad, normalise, write.

    The clip gets exactly `round(window.duration_seconds * rate)` samples at the output rate, and
    a time reference of `round(window.start_seconds * rate)`. Loudness normalisation runs only
    when `target_lufs` is given. The window (bars, beats, seconds) is added to the sidecar.
    """
    rate = output_sample_rate or sample_rate
    if rate <= 0:
        raise ClipError(f"output sample rate must be positive, got {rate}")
    audio = np.asarray(audio, dtype=np.float32)
    audio = fit_length(
        resample(audio, sample_rate, rate), clip_length_samples(window.duration_seconds, rate)
    )
    if target_lufs is not None:
        audio = normalize_loudness(audio, rate, target_lufs)
    placed = {
        **sidecar,
        **window.describe(),
        "rendered_sample_rate": sample_rate,
        "target_lufs": target_lufs,
    }
    return write_clip(
        audio,
        rate,
        path,
        time_reference_samples=round(window.start_seconds * rate),
        sidecar=placed,
        description=description,
        start_beat=window.start_beat,
        length_beats=window.length_beats,
        origination=origination,
    )


def check_clip_folder(out_dir: str | os.PathLike[str]) -> Path:
    """`out_dir` made absolute and created if missing, or ClipError when no clip can be written
    there: checked before a render (or the daemon's start), not after minutes of work."""
    folder = Path(out_dir).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".jasco-write-test-"):
            pass
    except OSError as error:
        raise ClipError(
            f"cannot write clips in {folder}: {error.strerror or error}; "
            "choose another --out-dir"
        ) from error
    return folder
