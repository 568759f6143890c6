"""How responsive is the daemon while it renders, and does a flood of renders lose anything?

Runs a real daemon on loopback (UDP, free ports) with the preview engine and prints:

1. round-trip latency of /jasco/ping -> /jasco/pong and /jasco/render -> /jasco/ack, p50 and
   p99, measured while a render is running, twice: with the engine thread idle inside a held
   render (the daemon's own cost) and with it rendering preview audio non-stop (what a busy
   CPU engine does to the loop); target p99 < 2 ms;
2. a flood: N renders sent as fast as possible, then counts of acked, done,
   refused-as-queue-full, other errors and lost (no answer, or acked but never finished);
   target: none lost;
3. amplification: invalid datagrams (noise, truncations, wrong arguments, a 64 KB bundle of
   8,186 bad messages), each from its own socket, and the worst bytes-out / bytes-in ratio of
   the replies; from a non-loopback address of this machine (a source the network could forge)
   the target is <= 1; from loopback (which only this machine can send from, so nobody can be
   made a victim) full error texts are kept and the ratio is shown for information;
4. storms: /jasco/ping p99 while 1,000 TCP connections are opened and dropped over and over,
   and while hostile datagrams and TCP junk are sent as fast as one thread can; loopback only,
   each storm stops with its measurement;
5. memory: every session (the default and MAX_SESSIONS named ones) filled over UDP to its caps
   (chord and melody notes, chord symbols, tempo and meter changes), then the process RSS
   before and after, the sessions still held and how many the total budget forgot (least
   recently used first); target: RSS growth bounded by the total budget, not by the sessions.

examples:
  python benchmarks/bench_daemon.py
  python benchmarks/bench_daemon.py --samples 2000 --flood 1000 --max-queue 64
  python benchmarks/bench_daemon.py --only amplification storms
  python benchmarks/bench_daemon.py --only memory --fill-sessions 64
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import random
import socket
import statistics
import struct
import tempfile
import threading
import time
from pathlib import Path

from engine.errors import GenerationCancelled
from jasco_bridge.config import DaemonConfig
from jasco_bridge.daemon import BackgroundDaemon
from jasco_bridge.engines import OpenedRenderer, open_preview
from jasco_bridge.osc import (
    OscMessage,
    encode_packet,
    message,
    parse_packet,
    size_prefix_encode,
)
from jasco_bridge.session import (
    MAX_CHORD_SYMBOLS,
    MAX_METER_CHANGES,
    MAX_NOTES,
    MAX_SESSIONS,
    MAX_TEMPO_CHANGES,
    MAX_TOTAL_BYTES,
)

SECTIONS = ("latency", "flood", "amplification", "storms", "memory")
NOTES_PER_DATAGRAM = 3000  # 4 floats each: under the 64 KB a datagram carries
SYMBOLS_PER_DATAGRAM = 2000


class HoldingRenderer:
    """The preview engine, kept on its first render until cancelled.

    `busy=False` waits in short sleeps (the engine thread is idle: measures the daemon alone);
    `busy=True` renders preview windows back to back (the engine thread competes for the CPU
    and the GIL the way a real render does). Every other attribute is the wrapped renderer's.

    The tests' GatedRenderer (tests/bridge/support.py) is a cousin kept apart on purpose: it
    waits for a gate and then renders, this one never finishes, and a benchmark must not import
    test code.
    """

    def __init__(self, inner, *, busy: bool) -> None:
        self.inner = inner
        self.busy = busy

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def generate(self, request, progress=None, should_cancel=None):
        while not (should_cancel is not None and should_cancel()):
            if self.busy:
                self.inner.generate(request)
            else:
                time.sleep(0.005)
        raise GenerationCancelled("benchmark render cancelled")


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 2**20)
        self.sock.bind(("127.0.0.1", 0))

    def send(self, address: str, *args) -> None:
        self.sock.sendto(encode_packet(message(address, *args)), ("127.0.0.1", self.port))

    def receive(self, timeout: float) -> OscMessage | None:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return None
        return parse_packet(data)  # type: ignore[return-value]

    def until(self, address: str, timeout: float = 10.0) -> OscMessage:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self.receive(left)
            if reply is not None and reply.address == address:
                return reply
        raise TimeoutError(f"no {address} within {timeout} s")


def set_up(client: Client) -> None:
    client.send("/jasco/tempo", 120.0, 4, 4)
    client.send("/jasco/chords/symbols", 0.0, "Am7", 4.0, "D9")
    client.send("/jasco/prompt", "benchmark")
    client.send("/jasco/ping")
    client.until("/jasco/pong")


def percentiles(samples_ms: list[float]) -> str:
    cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return f"p50 {cuts[49]:.3f} ms  p99 {cuts[98]:.3f} ms  max {max(samples_ms):.3f} ms"


def latency_client(port: int, kind: str, samples: int, results: multiprocessing.Queue) -> None:
    """Runs in its own process, as a DAW would: the daemon's threads never compete with it.

    kind "ping": ping/pong round trips; kind "render": render/ack round trips, each job
    cancelled right after its ack (untimed) so the queue stays short.
    """
    client = Client(port)
    lossy = kind == "ping-lossy"
    for _ in range(100):  # warm-up
        client.send("/jasco/ping", 0)
        try:
            client.until("/jasco/pong", timeout=1.0 if lossy else 10.0)
        except TimeoutError:
            if not lossy:
                raise
    times_ms = []
    lost = 0
    for token in range(1, samples + 1):
        began = time.perf_counter()
        if lossy:
            # Under a UDP flood the kernel drops datagrams (ours too): a ping with no pong
            # within a second counts as lost, not as a latency.
            client.send("/jasco/ping", token)
            deadline = began + 1.0
            while (left := deadline - time.perf_counter()) > 0:
                reply = client.receive(left)
                if reply is not None and reply.address == "/jasco/pong" and reply.args == (token,):
                    times_ms.append((time.perf_counter() - began) * 1000)
                    break
            else:
                lost += 1
        elif kind == "ping":
            client.send("/jasco/ping", token)
            while client.until("/jasco/pong").args != (token,):
                pass
            times_ms.append((time.perf_counter() - began) * 1000)
        else:
            client.send("/jasco/render", 1, 1)
            job = client.until("/jasco/ack").args[0]
            times_ms.append((time.perf_counter() - began) * 1000)
            client.send("/jasco/cancel", job)
            client.until("/jasco/cancelled")
    results.put((times_ms, lost))


def run_client(running: BackgroundDaemon, kind: str, samples: int) -> tuple[list[float], float]:
    """Round-trip times (ms) and the event loop's CPU seconds per round trip."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    client = multiprocessing.Process(
        target=latency_client, args=(running.server.udp_port, kind, samples, results)
    )
    # CPU time of the event-loop thread: what the daemon itself spends, whatever the machine's
    # load does to the latency.
    cpu_before = running.call_in_loop(time.thread_time)
    client.start()
    times_ms, lost = results.get(timeout=600)
    client.join()
    cpu = running.call_in_loop(time.thread_time) - cpu_before
    if lost:
        print(f"  ({lost} of {samples} pings lost in the flood)")
    return times_ms, cpu / (samples + 100)


def measure_latency(out_dir: Path, samples: int, busy: bool) -> None:
    opened = open_preview()
    held = HoldingRenderer(opened.renderer, busy=busy)
    config = DaemonConfig(
        port=0, tcp_port=None, out_dir=out_dir, max_queue=100_000, shutdown_timeout_seconds=0
    )
    with BackgroundDaemon(
        config, open_engine=lambda _c: OpenedRenderer(held, opened.vocabulary, None)
    ) as running:
        client = Client(running.server.udp_port)
        set_up(client)
        client.send("/jasco/render", 1, 1)  # the job that keeps the engine occupied
        busy_job = client.until("/jasco/ack").args[0]
        pings, ping_cpu = run_client(running, "ping", samples)
        acks, render_cpu = run_client(running, "render", samples)
        client.send("/jasco/status")
        state = client.until("/jasco/status").args[0]
    engine = "renders preview audio non-stop" if busy else "idles inside a held render"
    print(
        f"while job {busy_job} runs ({state}; the engine thread {engine}), client in its own process:"
    )
    print(f"  /jasco/ping -> /jasco/pong   {percentiles(pings)}  loop CPU {ping_cpu * 1e6:.0f} us")
    print(
        f"  /jasco/render -> /jasco/ack  {percentiles(acks)}  loop CPU {render_cpu * 1e6:.0f} us"
        " (render + cancel)"
    )
    verdicts = [
        f"{name} {'met' if statistics.quantiles(s, n=100, method='inclusive')[98] < 2 else 'MISSED'}"
        for name, s in (("ping", pings), ("ack", acks))
    ]
    print(f"  target p99 < 2 ms: {', '.join(verdicts)}  ({samples} samples each)")


def flood(out_dir: Path, renders: int, max_queue: int, wait_seconds: float) -> None:
    config = DaemonConfig(port=0, tcp_port=None, out_dir=out_dir, max_queue=max_queue)
    with BackgroundDaemon(config, open_engine=lambda _c: open_preview()) as running:
        client = Client(running.server.udp_port)
        set_up(client)
        acked: set[int] = set()
        done: set[int] = set()
        refused = other_errors = 0
        answered = 0
        lock = threading.Lock()
        finished = threading.Event()

        def listen() -> None:
            nonlocal refused, other_errors, answered
            deadline = time.monotonic() + wait_seconds
            while time.monotonic() < deadline:
                reply = client.receive(0.5)
                if reply is None:
                    with lock:
                        if answered >= renders and done >= acked:
                            break
                    continue
                with lock:
                    if reply.address == "/jasco/ack":
                        acked.add(reply.args[0])
                        answered += 1
                    elif reply.address == "/jasco/done":
                        done.add(reply.args[0])
                    elif reply.address == "/jasco/error" and reply.args[0] == -1:
                        answered += 1
                        if "queue full" in reply.args[1]:
                            refused += 1
                        else:
                            other_errors += 1
            finished.set()

        listener = threading.Thread(target=listen)
        listener.start()
        began = time.perf_counter()
        for _ in range(renders):
            client.send("/jasco/render", 1, 1)
        sent_seconds = time.perf_counter() - began
        listener.join()
        elapsed = time.perf_counter() - began
        unanswered = renders - answered
        never_finished = len(acked - done)
        print(
            f"flood of {renders} renders (sent in {sent_seconds * 1000:.1f} ms, max queue {max_queue}):"
        )
        print(
            f"  acked {len(acked)}  done {len(done)}  refused-as-queue-full {refused}  "
            f"other errors {other_errors}"
        )
        print(
            f"  lost {unanswered + never_finished} (unanswered {unanswered}, acked but not done "
            f"{never_finished})  after {elapsed:.1f} s"
        )


def local_non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("203.0.113.1", 9))  # picks a route; sends nothing
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def invalid_datagrams(rng: random.Random) -> list[bytes]:
    """Hostile inputs that must never be answered with more than they are."""
    ping = encode_packet(message("/jasco/ping", 1))
    out = [b"\x00\x01\x02\x03", b"/abc", b"/ab\x00", rng.randbytes(64), b"GET / HTTP/1.0\r\n\r\n"]
    # "/jasco/ping" alone (12 bytes) is a valid ping in OSC 1.0's no-type-tag form: left out.
    out += [ping[:cut] for cut in range(1, len(ping)) if cut != 12]
    out += [
        encode_packet(message("/jasco/tempo", "fast")),
        encode_packet(message("/jasco/nope")),
        encode_packet(message("/jasco/render", "one", "bar")),
        encode_packet(message("/jasco/session/../tempo", 1.0)),
        encode_packet(message("/jasco/chords/symbols", 0.0, "H#13", 4.0)),
        b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", -4) + ping,
    ]
    # 8,186 unknown-address messages without type tags (4 bytes + a 4-byte size each) are as many
    # as a 64 KB datagram holds.
    element = struct.pack(">i", 4) + b"/x\x00\x00"
    out.append(b"#bundle\x00" + struct.pack(">Q", 1) + element * 8186)
    out += [rng.randbytes(rng.randrange(4, 400)) for _ in range(20)]
    return out


def amplification(out_dir: Path) -> None:
    remote = local_non_loopback_ip()
    sources = [("loopback", "127.0.0.1")] + ([("non-loopback", remote)] if remote else [])
    config = DaemonConfig(host="0.0.0.0", port=0, tcp_port=None, out_dir=out_dir)
    opened = open_preview()
    corpus = invalid_datagrams(random.Random(11))
    with BackgroundDaemon(config, open_engine=lambda _c: opened) as running:
        port = running.server.udp_port
        for label, address in sources:
            worst, worst_input, sent_total, received_total = 0.0, b"", 0, 0
            for data in corpus:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind((address, 0))
                    sock.sendto(data, (address, port))
                    received = 0
                    sock.settimeout(0.3)
                    try:
                        while True:
                            received += len(sock.recvfrom(65536)[0])
                    except TimeoutError:
                        pass
                ratio = received / max(len(data), 1)
                if ratio > worst:
                    worst, worst_input = ratio, data
                sent_total += len(data)
                received_total += received
            shown = f"{worst_input[:24]!r}{'...' if len(worst_input) > 24 else ''}"
            verdict = ""
            if label == "non-loopback":
                verdict = "  target <= 1: " + ("met" if worst <= 1 else "MISSED")
            print(
                f"invalid input from {label} ({address}), {len(corpus)} datagrams one per socket: "
                f"worst bytes-out/bytes-in {worst:.2f} (for {len(worst_input)} B {shown}), "
                f"total {received_total} B out for {sent_total} B in{verdict}"
            )
    if remote is None:
        print(
            "no non-loopback address on this machine: the forgeable-source ratio was not measured"
        )


def connection_storm(port: int, stop, connections: int = 1000) -> int:
    """Open `connections` TCP connections, drop them all, repeat until `stop`; returns rounds."""
    rounds = 0
    while not stop.is_set():
        held = []
        for _ in range(connections):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        for conn in held:
            conn.close()
        rounds += 1
    return rounds


def fuzz_storm(udp_port: int, tcp_port: int, stop) -> int:
    """Hostile datagrams and TCP junk as fast as one thread sends them; returns datagrams sent."""
    rng = random.Random(5)
    corpus = invalid_datagrams(rng)[:-21] + [
        rng.randbytes(rng.randrange(1, 300)) for _ in range(50)
    ]
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        while not stop.is_set():
            for data in corpus:
                udp.sendto(data, ("127.0.0.1", udp_port))
                sent += 1
            try:
                with socket.create_connection(("127.0.0.1", tcp_port), timeout=2) as conn:
                    conn.sendall(size_prefix_encode(b"AAA") + rng.randbytes(4096))
            except OSError:
                pass
    return sent


def _storm_process(kind: str, udp_port: int, tcp_port: int, stop, count) -> None:
    # Its own process, so the attacker and the daemon do not share one interpreter lock.
    if kind == "connections":
        count.value = connection_storm(tcp_port, stop)
    else:
        count.value = fuzz_storm(udp_port, tcp_port, stop)


def storms(out_dir: Path, samples: int) -> None:
    opened = open_preview()
    config = DaemonConfig(port=0, tcp_port=0, out_dir=out_dir)
    logging.getLogger("jasco_bridge").setLevel(logging.CRITICAL)  # the storm's own log lines
    with BackgroundDaemon(config, open_engine=lambda _c: opened) as running:
        udp_port, tcp_port = running.server.udp_port, running.server.tcp_port
        quiet, _ = run_client(running, "ping", samples)
        print(f"ping with no storm:                 {percentiles(quiet)}")
        for name, kind, unit in (
            ("1,000-connection TCP storm", "connections", "rounds of 1,000 connections"),
            ("fuzz storm (UDP + TCP junk)", "fuzz", "hostile datagrams"),
        ):
            stop = multiprocessing.Event()
            count = multiprocessing.Value("q", 0)
            attacker = multiprocessing.Process(
                target=_storm_process, args=(kind, udp_port, tcp_port, stop, count)
            )
            attacker.start()
            time.sleep(0.5)  # let the storm build up before measuring
            try:
                pings, _ = run_client(running, "ping-lossy", samples)
            finally:
                stop.set()
                attacker.join(60)
            print(f"ping during {name}: {percentiles(pings)}  ({count.value} {unit})")


def rss_mib() -> float:
    """The process's resident memory now (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this figure needs Linux)")


def fill_session(client: Client, prefix: str) -> list[str]:
    """One session filled to every cap; returns the errors it got (the caps' refusals)."""
    for target in ("chords/notes", "melody/notes"):
        for first in range(0, MAX_NOTES, NOTES_PER_DATAGRAM):
            args: list[float] = []
            for i in range(first, min(first + NOTES_PER_DATAGRAM, MAX_NOTES)):
                args += [i * 0.25, 0.25, float(48 + i % 24), 90.0]
            client.send(f"{prefix}/{target}", *args)
    for first in range(0, MAX_CHORD_SYMBOLS, SYMBOLS_PER_DATAGRAM):
        symbols: list[object] = []
        for i in range(first, min(first + SYMBOLS_PER_DATAGRAM, MAX_CHORD_SYMBOLS)):
            symbols += [i * 2.0, ("Am7", "D9", "Gmaj7", "C#m7b5")[i % 4]]
        client.send(f"{prefix}/chords/symbols", *symbols)
    for i in range(1, MAX_TEMPO_CHANGES):  # the session already has one, at beat 0
        client.send(f"{prefix}/tempo/change", i * 4.0, 90.0 + i % 40)
    for i in range(1, MAX_METER_CHANGES):
        client.send(f"{prefix}/meter/change", i * 4.0, 4, 4)
    client.send("/jasco/ping", 1)
    errors = []
    while True:
        reply = client.receive(60.0)
        if reply is None:
            raise TimeoutError(f"{prefix}: no pong within 60 s")
        if reply.address == "/jasco/pong":
            return errors
        if reply.address == "/jasco/error":
            errors.append(str(reply.args[1]))


def memory(out_dir: Path, sessions: int) -> None:
    config = DaemonConfig(port=0, tcp_port=None, out_dir=out_dir)
    with BackgroundDaemon(config, open_engine=lambda _c: open_preview()) as running:
        client = Client(running.server.udp_port)
        set_up(client)
        before = rss_mib()
        began = time.perf_counter()
        errors: list[str] = []
        prefixes = ["/jasco"] + [f"/jasco/session/s{n}" for n in range(sessions)]
        for prefix in prefixes:
            errors += fill_session(client, prefix)
        elapsed = time.perf_counter() - began
        after = rss_mib()
        store = running.server.sessions
        held = running.call_in_loop(lambda: len(store))
        forgotten = running.call_in_loop(lambda: store.forgotten)
        estimated = running.call_in_loop(store.estimated_bytes) / 2**20
    caps = sorted({text.rpartition("(")[2].partition(")")[0] for text in errors if "(" in text})
    print(
        f"memory: {len(prefixes)} sessions filled to their caps over UDP in {elapsed:.0f} s "
        f"({MAX_NOTES} chord + {MAX_NOTES} melody notes, {MAX_CHORD_SYMBOLS} symbols, "
        f"{MAX_TEMPO_CHANGES} tempo and {MAX_METER_CHANGES} meter changes each):"
    )
    print(
        f"  RSS {before:.0f} MiB -> {after:.0f} MiB (+{after - before:.0f} MiB); sessions held "
        f"{held}, forgotten {forgotten} (least recently used); estimated "
        f"{estimated:.0f} MiB of the {MAX_TOTAL_BYTES / 2**20:.0f} MiB budget"
    )
    print(f"  refusals: {len(errors)} ({', '.join(caps) or 'none'}); sessions cap {MAX_SESSIONS}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--samples", type=int, default=1000, help="latency samples per message kind"
    )
    parser.add_argument("--flood", type=int, default=1000, help="renders sent in the flood")
    parser.add_argument(
        "--max-queue", type=int, default=64, help="daemon queue limit for the flood"
    )
    parser.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for the flood's clips"
    )
    parser.add_argument(
        "--fill-sessions",
        type=int,
        default=MAX_SESSIONS,
        help="named sessions filled to their caps for the memory figure (%(default)s = all)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=SECTIONS, help="measure only these"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as scratch:
        if "latency" in args.only:
            for busy in (False, True):
                measure_latency(Path(scratch) / f"latency-{busy}", args.samples, busy)
        if "flood" in args.only:
            flood(Path(scratch) / "flood", args.flood, args.max_queue, args.wait)
        if "amplification" in args.only:
            amplification(Path(scratch) / "amplification")
        if "storms" in args.only:
            storms(Path(scratch) / "storms", args.samples)
        if "memory" in args.only:
            memory(Path(scratch) / "memory", args.fill_sessions)


if __name__ == "__main__":
    main()
