"""The render queue: real preview renders, ordering, variations, refusals, cancel, shutdown."""

from __future__ import annotations

import json
import random

import numpy as np
import pyloudnorm
import pytest
import soundfile

from jasco_bridge.engines import OpenedRenderer, open_renderer
from jasco_bridge.errors import RenderError
from jasco_bridge.jobs import JobEvent, JobQueue, JobState, QueueStatus
from jasco_bridge.journal import JOURNAL_NAME, JobJournal
from jasco_bridge.session import Session
from tests.bridge.support import WAIT_SECONDS, Events, FakeRenderer


def make_queue(renderer, vocabulary, out_dir, events, **kwargs) -> JobQueue:
    return JobQueue(OpenedRenderer(renderer, vocabulary), out_dir, on_event=events, **kwargs)


def c_major_session(name: str = "default", prompt: str = "warm rhodes") -> Session:
    session = Session(name)
    session.set_tempo(120)
    session.add_chord_symbols([(0.0, "C"), (4.0, "Am"), (8.0, "F"), (12.0, "G")])
    session.set_prompt(prompt)
    return session


def test_a_preview_job_reports_progress_then_a_clip_on_disk(running, tmp_path):
    queue, events = running
    session = c_major_session()
    session.set_setting("seed", 42)
    (job,) = queue.submit(session.snapshot(), start_bar=2, bars=2, reply_to="client-A")
    assert (job.id, job.seed, job.variation, job.start_bar, job.bars) == (1, 42, 0, 2, 2)

    done = events.terminal(job.id)
    assert done.kind == "done", done.message
    progress = [e.fraction for e in events.of(job.id) if e.kind is JobState.RUNNING]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 2
    assert all(e.reply_to == "client-A" for e in events.of(job.id))
    assert events.of(job.id)[-1] is done  # nothing after the terminal event

    clip = done.clip
    assert clip.path == tmp_path.resolve() / "default" / "bars002-003_warm-rhodes_42_j1.wav"
    audio, rate = soundfile.read(clip.path)
    assert rate == 32000 and len(audio) == round(4.0 * 32000)  # 2 bars of 4/4 at 120 bpm
    assert np.max(np.abs(audio)) > 0.05
    assert (clip.start_beat, clip.length_beats) == (4.0, 8.0)
    assert clip.start_seconds == pytest.approx(2.0)
    assert clip.time_reference_samples == 64000
    sidecar = json.loads(clip.sidecar_path.read_text())
    assert sidecar["preview"] is True and sidecar["engine"] == "preview"
    assert sidecar["seed"] == 42 and sidecar["prompt"] == "warm rhodes"
    assert sidecar["chord_symbols"][:2] == [[0.0, "C"], [4.0, "Am"]]
    assert sidecar["start_bar"] == 2 and sidecar["bars"] == 2
    mapped = [(c["start_beat"], c["end_beat"], c["label"]) for c in sidecar["chords"]]
    assert mapped == [(4.0, 8.0, "Am"), (8.0, 12.0, "F")]
    assert queue.job(job.id).state is JobState.DONE


def test_the_session_rate_and_loudness_settings_shape_the_clip(running):
    queue, events = running
    session = c_major_session()
    session.set_setting("sample_rate", 48000)
    session.set_setting("target_lufs", -18)
    (job,) = queue.submit(session.snapshot(), start_bar=3, bars=1)
    clip = events.terminal(job.id).clip
    audio, rate = soundfile.read(clip.path)
    assert rate == clip.sample_rate == 48000
    assert len(audio) == round(2.0 * 48000)
    assert clip.time_reference_samples == 4 * 48000  # bar 3 starts at 4.0 s
    assert pyloudnorm.Meter(rate).integrated_loudness(audio) == pytest.approx(-18.0, abs=0.5)


def test_jobs_run_in_the_order_they_were_submitted(running):
    queue, events = running
    order = []
    for bar in (3, 1, 2):
        order += [job.id for job in queue.submit(c_major_session().snapshot(), bar, 1)]
    events.wait_for(lambda items: sum(e.kind == "done" for e in items) == 3)
    assert [e.job_id for e in events.items if e.kind == "done"] == order == [1, 2, 3]


def test_variations_get_distinct_seeds_that_the_sidecars_report(running):
    queue, events = running
    session = c_major_session()
    session.set_setting("variations", 3)
    jobs = queue.submit(session.snapshot(), 1, 1)
    assert [j.variation for j in jobs] == [0, 1, 2]
    assert len({j.seed for j in jobs}) == 3
    for job in jobs:
        clip = events.terminal(job.id).clip
        assert json.loads(clip.sidecar_path.read_text())["seed"] == job.seed
        assert f"_{job.seed}_j{job.id}.wav" in clip.path.name
    session.set_setting("seed", 100)
    assert [j.seed for j in queue.submit(session.snapshot(), 1, 1)] == [100, 101, 102]


def test_the_seed_drawn_comes_from_the_injected_rng(preview, tmp_path):
    snapshot = c_major_session().snapshot()
    seeds = []
    for _ in range(2):
        queue = make_queue(
            preview.renderer, preview.vocabulary, tmp_path, Events(), rng=random.Random(9)
        )
        seeds.append(queue.submit(snapshot, 1, 1)[0].seed)
    assert seeds[0] == seeds[1]


def test_a_full_queue_refuses_at_once_and_whole(preview, tmp_path):
    events = Events()
    queue = make_queue(preview.renderer, preview.vocabulary, tmp_path, events, max_queued=3)
    session = c_major_session()
    session.set_setting("variations", 2)
    queue.submit(session.snapshot(), 1, 1)  # not started: the jobs stay queued
    with pytest.raises(RenderError, match=r"queue full \(2 jobs waiting.*cancel jobs"):
        queue.submit(session.snapshot(), 1, 1)
    assert queue.status() == QueueStatus("idle", 2, None, "preview")


def test_a_window_that_does_not_fit_fails_at_submit(preview, tmp_path):
    queue = make_queue(preview.renderer, preview.vocabulary, tmp_path, Events())
    session = c_major_session()
    session.set_tempo(20)
    with pytest.raises(RenderError, match="bar 1 lasts 12.0 s, longer than"):
        queue.submit(session.snapshot(), 1, 2)  # one bar: 12 s > 10 s
    assert queue.status().queued == 0


def test_cancel_a_queued_job_unknown_ids_and_finished_jobs(preview, tmp_path):
    events = Events()
    queue = make_queue(preview.renderer, preview.vocabulary, tmp_path, events)
    first, second = (queue.submit(c_major_session().snapshot(), 1, 1)[0] for _ in range(2))
    assert queue.cancel(second.id) is True
    assert [e.kind for e in events.of(second.id)] == ["cancelled"]
    assert queue.job(second.id).state is JobState.CANCELLED
    with pytest.raises(RenderError, match="there is no job 99"):
        queue.cancel(99)
    queue.start()
    try:
        assert events.terminal(first.id).kind == "done"
        assert queue.cancel(first.id) is False  # already finished
        assert queue.cancel(second.id) is False
        assert [e.kind for e in events.of(second.id)] == ["cancelled"]
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)


def test_cancel_a_running_job_stops_it_within_one_step(tmp_path, preview):
    renderer = FakeRenderer(step_seconds=0.05)
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path, events)
    queue.start()
    try:
        session = c_major_session()
        session.set_setting("steps", 200)
        (job,) = queue.submit(session.snapshot(), 1, 1)
        events.wait_for(lambda items: any(e.kind is JobState.RUNNING for e in items))
        assert queue.status().running == job.id
        steps_at_cancel = renderer.steps_taken
        assert queue.cancel(job.id) is True
        final = events.terminal(job.id)
        assert final.kind == "cancelled"
        assert renderer.steps_taken - steps_at_cancel <= 1
        assert queue.job(job.id).state is JobState.CANCELLED
        assert not (tmp_path / "default").exists() or not list((tmp_path / "default").iterdir())
        assert queue.status() == QueueStatus("idle", 0, None, "stepper")
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("fail", "job 1: the GPU ran out of memory: render fewer bars"),
        ("bug", "job 1 hit an internal error (ZeroDivisionError: division by zero)"),
    ],
)
def test_a_failing_job_reports_an_error_and_the_worker_carries_on(
    tmp_path, preview, prompt, message
):
    renderer = FakeRenderer(fail_on=prompt)
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path, events)
    queue.start()
    try:
        (bad,) = queue.submit(c_major_session(prompt=prompt).snapshot(), 1, 1)
        (good,) = queue.submit(c_major_session(prompt="fine").snapshot(), 1, 1)
        error = events.terminal(bad.id)
        assert error.kind == "error"
        assert error.message.startswith(message)
        assert queue.job(bad.id).state is JobState.FAILED
        assert events.terminal(good.id).kind == "done"
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)


def test_a_broken_event_listener_does_not_stop_the_queue(tmp_path, preview):
    seen = Events()

    def listener(event: JobEvent) -> None:
        seen(event)
        raise RuntimeError("the OSC client went away")

    queue = make_queue(preview.renderer, preview.vocabulary, tmp_path, listener)
    queue.start()
    try:
        jobs = [queue.submit(c_major_session().snapshot(), 1, 1)[0] for _ in range(2)]
        assert [seen.terminal(j.id).kind for j in jobs] == ["done", "done"]
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)


def test_shutdown_cancels_a_job_that_outlasts_the_timeout_and_everything_queued(tmp_path, preview):
    renderer = FakeRenderer(step_seconds=0.05)
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path, events)
    queue.start()
    session = c_major_session()
    session.set_setting("steps", 200)
    session.set_setting("variations", 3)
    jobs = queue.submit(session.snapshot(), 1, 1)
    events.wait_for(lambda items: any(e.kind is JobState.RUNNING for e in items))
    queue.shutdown(timeout=0.05)
    assert [events.terminal(j.id).kind for j in jobs] == ["cancelled"] * 3
    assert [queue.job(j.id).state for j in jobs] == [JobState.CANCELLED] * 3
    with pytest.raises(RenderError, match="shutting down"):
        queue.submit(session.snapshot(), 1, 1)


def test_shutdown_lets_the_running_job_finish_within_the_timeout(tmp_path, preview):
    renderer = FakeRenderer(step_seconds=0.002)
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path, events)
    queue.start()
    session = c_major_session()
    session.set_setting("steps", 20)
    (job,) = queue.submit(session.snapshot(), 1, 1)
    events.wait_for(lambda items: any(e.kind is JobState.RUNNING for e in items))
    queue.shutdown(timeout=WAIT_SECONDS)
    assert events.terminal(job.id).kind == "done"
    assert renderer.steps_taken == 20


def test_the_injected_clock_times_the_job(tmp_path, preview):
    ticks = iter(range(100, 1000, 5))
    queue = make_queue(
        FakeRenderer(), preview.vocabulary, tmp_path, events := Events(), clock=lambda: next(ticks)
    )
    queue.start()
    try:
        (job,) = queue.submit(c_major_session().snapshot(), 1, 1)
        clip = events.terminal(job.id).clip
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)
    recorded = queue.job(job.id)
    assert recorded.created == 100 and recorded.started == 105
    assert recorded.finished > recorded.started
    timings = json.loads(clip.sidecar_path.read_text())["timings"]
    assert timings["queued_seconds"] == 5 and timings["render_seconds"] == 5


def test_session_drums_and_melody_reach_the_engine(tmp_path, preview):
    rate = 16000
    stem = np.zeros(rate * 30, dtype=np.float32)
    stem[rate * 12] = 0.9  # a hit at 12 s on the DAW timeline (bar 7 at 120 bpm)
    stem_path = tmp_path / "drums.wav"
    soundfile.write(stem_path, stem, rate)
    renderer = FakeRenderer()
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path / "clips", events)
    queue.start()
    try:
        session = c_major_session()
        session.set_drums_file(str(stem_path))
        session.add_melody_note(24.0, 2.0, 72)
        (job,) = queue.submit(session.snapshot(), start_bar=6, bars=4)  # 10 s .. 18 s
        assert events.terminal(job.id).kind == "done"
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)
    request = renderer.requests[0]
    assert request.drums_sample_rate == rate
    drums = np.asarray(request.drums_wav).reshape(-1)
    assert np.flatnonzero(drums).tolist() == [2 * rate]  # 12 s - 10 s into the window
    assert request.melody_salience is not None and request.melody_salience.any()
    assert request.chord_indices is not None


def test_status_follows_the_queue(tmp_path, preview):
    renderer = FakeRenderer(step_seconds=0.05)
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path, events)
    assert queue.status() == QueueStatus("idle", 0, None, "stepper")
    session = c_major_session()
    session.set_setting("steps", 200)
    first = queue.submit(session.snapshot(), 1, 1)[0]
    second = queue.submit(session.snapshot(), 1, 1)[0]
    queue.start()
    try:
        events.wait_for(lambda items: any(e.kind is JobState.RUNNING for e in items))
        assert queue.status() == QueueStatus("rendering", 1, first.id, "stepper")
    finally:
        queue.shutdown(timeout=0.0)
    assert events.terminal(second.id).kind == "cancelled"


def test_a_round_trip_through_the_tiny_golden_jasco_checkpoint(tmp_path, golden_dir):
    opened = open_renderer("jasco", golden_dir)
    assert not opened.renderer.is_preview
    events = Events()
    queue = make_queue(opened.renderer, opened.vocabulary, tmp_path, events)
    queue.start()
    try:
        session = c_major_session(name="golden", prompt="jazz trio")
        session.set_setting("steps", 2)
        session.set_setting("seed", 5)
        (job,) = queue.submit(session.snapshot(), start_bar=1, bars=2)
        final = events.terminal(job.id)
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)
    assert final.kind == "done", final.message
    assert [e.fraction for e in events.of(job.id) if e.kind is JobState.RUNNING] == [0.5, 1.0]
    audio, rate = soundfile.read(final.clip.path)
    assert rate == 32000 and len(audio) == 4 * 32000  # two bars of 4/4 at 120 bpm
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    sidecar = json.loads(final.clip.sidecar_path.read_text())
    assert sidecar["preview"] is False and sidecar["engine"] == "jasco"
    assert sidecar["seed"] == 5 and sidecar["steps"] == 2
    assert "torch" in sidecar["versions"]


def test_a_model_without_melody_input_renders_without_the_melody_and_says_so(tmp_path, preview):
    renderer = FakeRenderer(accepts_melody=False)
    events = Events()
    queue = make_queue(renderer, preview.vocabulary, tmp_path, events)
    queue.start()
    try:
        session = c_major_session()
        session.add_melody_note(0.0, 2.0, 72)
        (job,) = queue.submit(session.snapshot(), start_bar=1, bars=2)
        done = events.terminal(job.id)
    finally:
        queue.shutdown(timeout=WAIT_SECONDS)
    assert done.kind == "done", done.message
    assert renderer.requests[0].melody_salience is None
    assert json.loads(done.clip.sidecar_path.read_text())["melody_used"] is False


def test_without_a_bar_count_a_job_takes_the_whole_bars_that_fit(tmp_path, preview):
    queue = make_queue(FakeRenderer(), preview.vocabulary, tmp_path, Events())
    session = c_major_session()
    session.set_tempo(100)  # 2.4 s a bar: four bars (9.6 s) fit in 10 s
    (job,) = queue.submit(session.snapshot(), start_bar=3)
    assert job.bars == 4 and job.window.bars == 4
    session.set_tempo(50)  # 4.8 s a bar: only two fit
    (job,) = queue.submit(session.snapshot(), start_bar=3)
    assert job.bars == 2


class TwoAtOnceRenderer(FakeRenderer):
    """A renderer that, like a cluster of two workers, may render two windows at once."""

    concurrency = 2


def test_a_renderer_declaring_concurrency_two_renders_two_jobs_at_once(tmp_path, preview):
    journal, _ = JobJournal.open(tmp_path)
    events = Events()
    queue = make_queue(
        TwoAtOnceRenderer(step_seconds=0.05), preview.vocabulary, tmp_path, events, journal=journal
    )
    queue.start()
    try:
        session = c_major_session()
        session.set_setting("steps", 200)
        session.set_setting("variations", 3)
        first, second, third = queue.submit(session.snapshot(), 1, 1)

        def rendering(job) -> bool:
            return any(e.kind is JobState.RUNNING for e in events.of(job.id))

        events.wait_for(lambda _items: rendering(first) and rendering(second))
        assert queue.job(third.id).state is JobState.QUEUED  # two slots, both taken
        assert queue.running() == [first.id, second.id]
        assert queue.status() == QueueStatus("rendering", 1, first.id, "stepper")

        assert queue.cancel(first.id) is True
        assert events.terminal(first.id).kind == "cancelled"
        events.wait_for(lambda _items: rendering(third))  # the freed slot takes the next job
        assert queue.job(second.id).state is JobState.RUNNING  # the other one went on
        assert queue.running() == [second.id, third.id]
        assert queue.status().running == second.id
    finally:
        queue.shutdown(timeout=0.0)
        journal.close()
    assert [events.terminal(j.id).kind for j in (second, third)] == ["cancelled"] * 2
    records = [json.loads(line) for line in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
    for job in (first, second, third):
        mine = [r["event"] for r in records if r.get("job") == job.id]
        assert mine == ["queued", "running", "finished"], (job.id, records)
    assert queue.running() == []


def test_a_renderer_must_declare_a_whole_number_of_slots(tmp_path, preview):
    renderer = FakeRenderer()
    renderer.concurrency = 0
    with pytest.raises(RenderError, match="concurrency 0"):
        make_queue(renderer, preview.vocabulary, tmp_path, Events())
    assert make_queue(preview.renderer, preview.vocabulary, tmp_path, Events()).concurrency == 1
