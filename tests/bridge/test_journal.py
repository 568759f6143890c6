"""The job journal read back as a restarted daemon reads it: real files in a real folder."""

from __future__ import annotations

import json

import pytest

from jasco_bridge.errors import ConfigError
from jasco_bridge.journal import JOURNAL_NAME, JobJournal


def _queued(job: int, **extra) -> dict:
    return {
        "job": job,
        "session": "verse",
        "start_bar": 5,
        "bars": 4,
        "seed": 1,
        "variation": 0,
        "token": f"t{job}",
        "reply_to": ["127.0.0.1", 9001],
        **extra,
    }


def test_unfinished_jobs_come_back_interrupted_and_ids_go_on_from_the_highest(tmp_path):
    journal, interrupted = JobJournal.open(tmp_path)
    assert interrupted == [] and journal.take_ids(3) == 1
    journal.queued([_queued(1), _queued(2), _queued(3)])
    journal.running(1)
    journal.finished(1, "done")
    journal.running(2)
    journal.close()
    # A crash while writing leaves half a line at the end.
    with open(tmp_path / JOURNAL_NAME, "a", encoding="utf-8") as handle:
        handle.write('{"event": "finished", "job": 2, "st')
    journal, interrupted = JobJournal.open(tmp_path)
    assert [(job.id, job.state, job.token) for job in interrupted] == [
        (2, "running", "t2"),
        (3, "queued", "t3"),
    ]
    assert interrupted[0].reply_to == ("127.0.0.1", 9001)
    assert (
        "bars 5-8" in interrupted[0].message and "while it was rendering" in interrupted[0].message
    )
    assert journal.take_ids(1) == 4
    journal.close()
    # Reported once: the journal was compacted to the next id alone.
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"event": "start", "next_job": 4}]
    journal, interrupted = JobJournal.open(tmp_path)
    assert interrupted == [] and journal.take_ids(1) == 4
    journal.close()


def test_a_second_daemon_on_the_same_clip_folder_is_refused(tmp_path):
    pytest.importorskip("fcntl")
    journal, _ = JobJournal.open(tmp_path)
    try:
        with pytest.raises(ConfigError, match="another jasco-bridge"):
            JobJournal.open(tmp_path)
    finally:
        journal.close()
    JobJournal.open(tmp_path)[0].close()  # free again once the first one closed
