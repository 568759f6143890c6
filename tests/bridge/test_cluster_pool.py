"""The cluster pool's leasing rules, on its plain class (no Ray needed): waiting daemons are
served in turn, a worker that failed is not given the retry, hopeless waits end at once."""

from __future__ import annotations

import asyncio

import pytest

from jasco_bridge.cluster import _WorkerPool, check_address, choose_workers
from jasco_bridge.errors import ConfigError, RenderError


def info(name: str, engine: str = "jasco", model: str = "m") -> dict:
    return {"name": name, "engine": engine, "model_id": model, "is_preview": engine == "preview"}


async def lease_order(pool: _WorkerPool, tickets: list[tuple[str, str]]) -> list[str]:
    """Queue `tickets` (client, ticket) on a busy pool, free its one worker and record which
    client gets it each time it comes back."""
    await pool.register("w1", "handle-1", info("w1"))
    first = await pool.acquire("holder", "t0", "jasco", "m", [])
    assert first == ("w1",)
    waiting = {
        ticket: asyncio.ensure_future(pool.acquire(client, ticket, "jasco", "m", []))
        for client, ticket in tickets
    }
    await asyncio.sleep(0)
    order = []
    for _ in tickets:
        await pool.release("w1")
        await asyncio.sleep(0)
        granted = [ticket for ticket, future in waiting.items() if future.done()]
        assert len(granted) == 1
        order.append(next(c for c, t in tickets if t == granted[0]))
        del waiting[granted[0]]
    return order


def test_a_daemon_with_a_batch_does_not_starve_another():
    tickets = [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")]
    order = asyncio.run(lease_order(_WorkerPool(), tickets))
    assert order == ["a", "b", "a", "a"]


def test_a_retry_never_goes_back_to_the_failed_worker():
    async def scenario():
        pool = _WorkerPool()
        await pool.register("w1", "h1", info("w1"))
        await pool.register("w2", "h2", info("w2"))
        (name,) = await pool.acquire("a", "t1", "jasco", "m", [])
        await pool.release(name, failed=True)
        retry = await pool.acquire("a", "t2", "jasco", "m", [name])
        hopeless = await pool.acquire("a", "t3", "jasco", "m", [retry[0]])
        return name, retry[0], hopeless

    failed, retried, hopeless = asyncio.run(scenario())
    assert failed != retried
    assert "no cluster worker with jasco m is left" in hopeless


def test_a_withdrawn_wait_ends_with_none():
    async def scenario():
        pool = _WorkerPool()
        await pool.register("w1", "h1", info("w1"))
        await pool.acquire("a", "t1", "jasco", "m", [])
        waiting = asyncio.ensure_future(pool.acquire("b", "t2", "jasco", "m", []))
        await asyncio.sleep(0)
        await pool.withdraw("t2")
        return await waiting, await pool.workers()

    answer, workers = asyncio.run(scenario())
    assert answer is None
    assert workers[0]["busy_for"] == "a" and workers[0]["waiting"] == {}


def test_auto_prefers_jasco_workers_and_says_when_it_falls_back_to_previews():
    jasco, preview = info("j", "jasco", "chords_drums"), info("p", "preview", "preview")
    assert choose_workers([preview, jasco], "auto", None)[0] == [jasco]
    chosen, why = choose_workers([preview], "auto", None)
    assert chosen == [preview] and "PREVIEW" in why
    with pytest.raises(RenderError, match="workers present: preview preview"):
        choose_workers([preview], "jasco", None)
    with pytest.raises(RenderError, match="no cluster worker renders jasco other"):
        choose_workers([jasco], "jasco", "other")


@pytest.mark.parametrize("address", ["ray://10.0.0.5:10001", "10.0.0.5:6379", "auto"])
def test_ray_addresses_are_accepted(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["10.0.0.5", "ray://host", "http://x:99999", ""])
def test_other_addresses_are_refused_with_the_forms_that_work(address):
    with pytest.raises(ConfigError, match="ray://HOST:PORT"):
        check_address(address)
