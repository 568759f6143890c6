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

import errno
import json
import logging
import math
import os
import re
import secrets
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


TEMPORARY_SUFFIX = ".part"
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CONFINED = os.open in os.supports_dir_fd and bool(_NO_FOLLOW)


def _open_folder_below(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of `root/parts...`, each part created if missing and opened without
    following a symlink, relative to the folder before it: whatever is renamed or linked while
    this runs, the descriptor names a real folder reached from `root` (no race writes outside)."""
    descriptor = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for part in parts:
            try:
                os.mkdir(part, 0o755, dir_fd=descriptor)
            except FileExistsError:
                pass
            try:
                inner = os.open(part, os.O_RDONLY | _DIRECTORY | _NO_FOLLOW, dir_fd=descriptor)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ClipError(
                        f"{root / part} is a link or not a folder; clips are written only in real "
                        "folders inside the clip folder: remove it or choose another --out-dir"
                    ) from None
                raise
            os.close(descriptor)
            descriptor = inner
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


class _Folder:
    """File operations inside one folder, relative to its descriptor where the system has them
    (POSIX), by path elsewhere (Windows, where a folder cannot be replaced by a link unnoticed
    as easily and `dir_fd` does not exist)."""

    def __init__(self, root: Path, parts: tuple[str, ...]) -> None:
        self.path = root.joinpath(*parts)
        if _CONFINED:
            self.fd: int | None = _open_folder_below(root, parts)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.fd = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)

    def _where(self, name: str) -> tuple[str | Path, dict[str, int]]:
        if self.fd is None:
            return self.path / name, {}
        return name, {"dir_fd": self.fd}

    def create_exclusive(self, name: str, mode: int = 0o644) -> int:
        target, where = self._where(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW | getattr(os, "O_BINARY", 0)
        return os.open(target, flags, mode, **where)

    def exists(self, name: str) -> bool:
        target, where = self._where(name)
        try:
            os.stat(target, follow_symlinks=False, **where)
        except FileNotFoundError:
            return False
        return True

    def unlink(self, name: str) -> None:
        target, where = self._where(name)
        try:
            os.unlink(target, **where)
        except FileNotFoundError:
            pass

    def link(self, source: str, target: str) -> None:
        if self.fd is None:
            os.link(self.path / source, self.path / target)
        else:
            os.link(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)

    def replace(self, source: str, target: str) -> None:
        if self.fd is None:
            os.replace(self.path / source, self.path / target)
        else:
            os.replace(source, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def fsync(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)

    def write_temporary(self, data: bytes, final_name: str) -> str:
        """`data` in a new hidden `.part` file, flushed to disk; removed again if that fails (a
        full disk leaves nothing behind)."""
        for _ in range(_MAX_NAME_ATTEMPTS):
            name = f".{final_name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
            try:
                descriptor = self.create_exclusive(name)
                break
            except FileExistsError:
                continue
        else:
            raise ClipError(f"cannot find a free temporary name in {self.path}")
        try:
            # A clip is for the DAW and the producer to open, possibly as another user: the
            # usual permissions of a document, whatever the umask of the daemon.
            if hasattr(os, "fchmod"):
                os.fchmod(descriptor, 0o644)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            self.unlink(name)
            raise
        return name

    def publish(self, temporary: str, final: str) -> None:
        """Give the finished `temporary` file the name `final`; FileExistsError if that is taken.

        With hard links the temporary name stays until the caller removes it; without them the
        file itself moves, and `temporary` no longer exists afterwards.
        """
        try:
            self.link(temporary, final)
        except FileExistsError:
            raise
        except OSError:
            # Filesystems without hard links (FAT, some network shares): claim the name
            # exclusively, then move the complete file over the empty placeholder.
            os.close(self.create_exclusive(final))
            try:
                self.replace(temporary, final)
            except OSError:
                self.unlink(final)
                raise


def _candidate(path: Path, attempt: int) -> Path:
    return path if attempt == 1 else path.with_name(f"{path.stem}-{attempt}{path.suffix}")


def _folder_parts(path: Path, root: Path | None) -> tuple[Path, tuple[str, ...]]:
    if root is None:
        return path.parent, ()
    try:
        parts = path.parent.relative_to(root).parts
    except ValueError:
        raise ClipError(f"clip path {path} is not inside the clip folder {root}") from None
    if any(part in ("", ".", "..") for part in parts):
        raise ClipError(f"clip path {path} must name plain folders below {root}")
    return root, parts


def write_files_exclusively(
    path: Path, wav: bytes, sidecar_text: str, *, root: Path | None = None
) -> tuple[Path, Path]:
    """Write `wav` at `path` (or the next free `-N` name) and the sidecar beside it as `.json`.

    Returns the two final paths. Neither file is ever visible half-written and no existing file
    is replaced: a name counts as free only when both the `.wav` and the `.json` are. With
    `root`, the folders between `root` and the file are created and opened relative to `root`'s
    descriptor without following links, and every file is created exclusively in the folder
    so opened: a folder swapped for a symlink mid-render cannot send a byte outside `root`.
    """
    base, parts = _folder_parts(path, root)
    temporaries: list[str] = []
    try:
        base.mkdir(parents=True, exist_ok=True)  # the folder the user named may be a link
        folder = _Folder(base, parts)
    except OSError as error:
        raise ClipError(
            f"cannot write a clip in {path.parent}: {error.strerror or error}"
        ) from error
    try:
        temporaries.append(folder.write_temporary(wav, path.name))
        temporaries.append(folder.write_temporary(sidecar_text.encode("utf-8"), path.name))
        wav_temporary, json_temporary = temporaries
        for attempt in range(1, _MAX_NAME_ATTEMPTS + 1):
            wav_path = _candidate(path, attempt)
            json_path = wav_path.with_suffix(".json")
            if folder.exists(json_path.name):
                continue
            try:
                folder.publish(wav_temporary, wav_path.name)
            except FileExistsError:
                continue
            try:
                folder.publish(json_temporary, json_path.name)
            except FileExistsError:
                # Another writer took the sidecar name between our check and now: give the
                # WAV name back (moving the file back where it was moved) and try the next.
                if folder.exists(wav_temporary):
                    folder.unlink(wav_path.name)
                else:
                    folder.replace(wav_path.name, wav_temporary)
                continue
            folder.fsync()
            return wav_path, json_path
    except OSError as error:
        raise ClipError(f"cannot write clip {path}: {error.strerror or error}") from error
    finally:
        for name in temporaries:
            folder.unlink(name)
        folder.close()
    raise ClipError(
        f"{_MAX_NAME_ATTEMPTS} clips named like {path.name} already exist in {path.parent}: "
        "move old clips away or choose another --out-dir"
    )


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Remove the hidden `.part` files a killed writer left in `root` and its session folders
    (only names this module makes, `.<clip>.wav.<random>.part` and `.<clip>.json.<random>.part`,
    so a clip folder shared with other programs keeps their files); returns what was removed."""
    removed = []
    for folder in (root, *(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())):
        for pattern in (f".*.wav.*{TEMPORARY_SUFFIX}", f".*.json.*{TEMPORARY_SUFFIX}"):
            for candidate in folder.glob(pattern):
                if candidate.is_file() and not candidate.is_symlink():
                    candidate.unlink(missing_ok=True)
                    removed.append(candidate)
    return removed


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
    root: str | os.PathLike[str] | None = None,
) -> ClipInfo:
    """Write `audio` as it is (no trimming) to `path`, with a BWF time stamp and a JSON sidecar.

    `audio` is float `[samples]` or `[channels, samples]`. `start_beat` and `length_beats`
    default to the sidecar's keys of the same names. The sidecar gets an `"audio"` entry (sample
    rate, samples, time reference); it shares the WAV's name stem instead of naming the file.
    If `path` is taken, the next free `-N` name is used; the returned `ClipInfo.path` says which.
    With `root` (the clip folder) the file is written confined to it (`write_files_exclusively`).
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
    wav_path, json_path = write_files_exclusively(
        path, wav, text, root=None if root is None else Path(root)
    )
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
    root: str | os.PathLike[str] | None = None,
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
        root=root,
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
            f"cannot write clips in {folder}: {error.strerror or error}; choose another --out-dir"
        ) from error
    return folder
