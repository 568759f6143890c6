"""The job journal: every queued and running job written down in the clip folder, so a crash
loses no job silently and never hands out a job id twice.

`<out_dir>/.jasco-jobs.jsonl` holds one JSON object per line, appended and flushed to disk
(fsync) as a job is queued, starts and ends:

    {"event": "queued", "job": 17, "session": "verse", "start_bar": 5, "bars": 4, "seed": 3,
     "variation": 0, "token": "take-2", "reply_to": ["127.0.0.1", 9001]}
    {"event": "running", "job": 17}
    {"event": "finished", "job": 17, "state": "done"}

When the daemon starts, `JobJournal.open` reads what the last run left: a job queued or
running without its "finished" line was interrupted (a crash, kill -9, a power cut). Such jobs
are **failed**, not re-queued: the session they rendered may have changed since, and a DAW
that waited on them can resend with what it has now. The daemon reports each one (its
original id and token, `/jasco/error` to its UDP client when known, and a log line). Job ids
go on from the highest id the journal has seen, so an old job's `/jasco/done` can never be
mistaken for a new one's. The journal is then rewritten (atomically) to one line holding the
next id, so it stays as small as the work in flight. A line cut short by the crash is skipped.

A second daemon on the same clip folder is refused (the journal's lock file is held), since
two of them would hand out the same ids and remove each other's temporary files.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jasco_bridge.errors import ConfigError

logger = logging.getLogger(__name__)

JOURNAL_NAME = ".jasco-jobs.jsonl"
LOCK_NAME = ".jasco-jobs.lock"


@dataclass(frozen=True)
class InterruptedJob:
    """A job the last run queued or started and never finished."""

    id: int
    state: str  # "queued" or "running": where it was when the daemon stopped
    session: str
    start_bar: int
    bars: int
    token: str | None
    reply_to: tuple[str, int] | None  # the UDP client to tell, when it sent over UDP

    @property
    def message(self) -> str:
        where = "while it was rendering" if self.state == "running" else "before it started"
        return (
            f"job {self.id} (session {self.session}, bars {self.start_bar}-"
            f"{self.start_bar + self.bars - 1}) was interrupted: the daemon stopped {where} "
            "(a crash or a kill) and no clip was written; render it again"
        )


class JobJournal:
    """Append-only record of the jobs in flight; methods are safe from any thread."""

    def __init__(self, folder: Path, handle: IO[str], lock: IO[bytes] | None, next_id: int) -> None:
        self.folder = folder
        self.next_id = next_id
        self._handle = handle
        self._lock_handle = lock
        self._lock = threading.Lock()
        self._failed_once = False

    @classmethod
    def open(cls, out_dir: str | os.PathLike[str]) -> tuple[JobJournal, list[InterruptedJob]]:
        """Lock the journal of `out_dir`, read the jobs the last run left unfinished, start a
        fresh journal that continues its ids. ConfigError when another daemon holds it."""
        folder = Path(out_dir)
        lock = _lock(folder)
        path = folder / JOURNAL_NAME
        records = _read_records(path)
        next_id, interrupted = _replay(records)
        temporary = folder / f"{JOURNAL_NAME}.new"
        with open(temporary, "w", encoding="utf-8") as fresh:
            fresh.write(json.dumps({"event": "start", "next_job": next_id}) + "\n")
            fresh.flush()
            os.fsync(fresh.fileno())
        os.replace(temporary, path)
        _fsync_folder(folder)
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115  (held open for appends)
        return cls(folder, handle, lock, next_id), interrupted

    def take_ids(self, count: int) -> int:
        """Reserve `count` consecutive ids; returns the first."""
        with self._lock:
            first = self.next_id
            self.next_id += count
            return first

    def queued(self, records: list[dict[str, Any]]) -> None:
        """One "queued" line per job (a render's variations share one flush to disk)."""
        self._append([{"event": "queued", **record} for record in records])

    def running(self, job_id: int) -> None:
        self._append([{"event": "running", "job": job_id}])

    def finished(self, job_id: int, state: str) -> None:
        self._append([{"event": "finished", "job": job_id, "state": state}])

    def close(self) -> None:
        with self._lock:
            self._handle.close()
            if self._lock_handle is not None:
                self._lock_handle.close()
                self._lock_handle = None

    def _append(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        with self._lock:
            if self._handle.closed:
                return
            try:
                self._handle.write(text)
                self._handle.flush()
                os.fsync(self._handle.fileno())
            except OSError as error:
                # A full disk must not stop renders; the journal is a safety net. One line
                # cut short is skipped when read back.
                if not self._failed_once:
                    self._failed_once = True
                    logger.warning(
                        "cannot write the job journal in %s (%s); jobs in flight may go "
                        "unreported after a crash",
                        self.folder,
                        error.strerror or error,
                    )


def _lock(folder: Path) -> IO[bytes] | None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one daemon per folder is then on trust
        return None
    handle = open(folder / LOCK_NAME, "ab")  # noqa: SIM115  (held for the daemon's life)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(
            f"another jasco-bridge is serving clips into {folder} (its job journal is locked); "
            "stop it or give this one another --out-dir"
        ) from None
    return handle


def _read_records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            logger.info("job journal line %d is cut short (a crash while writing): skipped", number)
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _replay(records: list[dict[str, Any]]) -> tuple[int, list[InterruptedJob]]:
    next_id = 1
    open_jobs: dict[int, dict[str, Any]] = {}
    for record in records:
        event = record.get("event")
        if event == "start":
            next_id = max(next_id, _whole(record.get("next_job"), 1))
            continue
        job = _whole(record.get("job"), 0)
        if job < 1:
            continue
        next_id = max(next_id, job + 1)
        if event == "queued":
            open_jobs[job] = {**record, "state": "queued"}
        elif event == "running" and job in open_jobs:
            open_jobs[job]["state"] = "running"
        elif event == "finished":
            open_jobs.pop(job, None)
    interrupted = [_interrupted(job, record) for job, record in sorted(open_jobs.items())]
    return next_id, interrupted


def _interrupted(job: int, record: dict[str, Any]) -> InterruptedJob:
    reply = record.get("reply_to")
    reply_to = None
    if isinstance(reply, list) and len(reply) == 2:
        host, port = reply
        if isinstance(host, str) and isinstance(port, int) and 0 < port < 65536:
            reply_to = (host, port)
    token = record.get("token")
    return InterruptedJob(
        id=job,
        state=str(record.get("state")),
        session=str(record.get("session", "?")),
        start_bar=_whole(record.get("start_bar"), 1),
        bars=_whole(record.get("bars"), 1),
        token=token if isinstance(token, str) else None,
        reply_to=reply_to,
    )


def _whole(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
