"""Our OSC codec (`jasco_bridge.osc`) against python-osc's parser, on the same inputs.

Prints, for one typical message (`/jasco/chords/notes` with 16 notes) and one small bundle, the
decode time of each (interleaved A B A B, so a busy machine affects both alike), and then what each
parser does with the fuzz corpus of `tests/bridge/test_fuzz.py`: how many datagrams it accepts,
how many it rejects with its own error type, and how many escape as some other exception. This is
the measurement behind the codec decision recorded in docs/architecture.md.

    PYTHONPATH=$PWD python benchmarks/bench_osc_codec.py
"""

from __future__ import annotations

import random
import signal
import struct
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jasco_bridge.errors import ProtocolError  # noqa: E402
from jasco_bridge.osc import IMMEDIATELY, OscBundle, encode_packet, message, parse_packet  # noqa: E402
from tests.bridge.test_fuzz import hostile_datagrams  # noqa: E402

try:
    from pythonosc.osc_packet import OscPacket as PyOscPacket
    from pythonosc.osc_packet import ParseError as PyParseError
except ImportError:
    sys.exit("python-osc is not installed: pip install python-osc")

ROUNDS = 5
CALLS_PER_ROUND = 4000
CORPUS_SIZE = 5000
HANG_SECONDS = 0.5


def typical_inputs() -> dict[str, bytes]:
    notes = []
    for i in range(16):
        notes += [float(i), float(i + 1), 60 + i % 12, 100]
    chords = encode_packet(message("/jasco/chords/notes", *notes))
    bundle = encode_packet(
        OscBundle(
            IMMEDIATELY,
            (
                message("/jasco/tempo", 120.0, 4, 4),
                message("/jasco/prompt", "lofi"),
                message("/jasco/render", 1, 4),
            ),
        )
    )
    return {"16-note /jasco/chords/notes": chords, "3-message bundle": bundle}


def ours(data: bytes) -> object:
    return parse_packet(data)


def theirs(data: bytes) -> object:
    return PyOscPacket(data)


def time_per_call(parse, data: bytes) -> float:
    start = time.perf_counter()
    for _ in range(CALLS_PER_ROUND):
        parse(data)
    return (time.perf_counter() - start) / CALLS_PER_ROUND


def bench_speed() -> None:
    for name, data in typical_inputs().items():
        samples: dict[str, list[float]] = {"ours": [], "python-osc": []}
        for _ in range(ROUNDS):
            samples["ours"].append(time_per_call(ours, data))
            samples["python-osc"].append(time_per_call(theirs, data))
        best = {k: min(v) for k, v in samples.items()}
        print(
            f"decode {name} ({len(data)} B): ours {best['ours'] * 1e6:.1f} us, "
            f"python-osc {best['python-osc'] * 1e6:.1f} us, "
            f"ratio python-osc/ours {best['python-osc'] / best['ours']:.2f}"
        )


class _Hung(Exception):
    pass


def _give_up(signum: int, frame: object) -> None:
    raise _Hung


def classify(parse, error_type: type[BaseException], data: bytes) -> str:
    # python-osc loops forever on a negative bundle element size: each parse gets a deadline.
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        parse(data)
    except _Hung:
        return f"hung (> {HANG_SECONDS} s)"
    except error_type:
        return "rejected"
    except Exception as exc:  # the point: which other exception types leak out
        return f"escaped: {type(exc).__name__}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return "accepted"


def nested_bundle(depth: int) -> bytes:
    packet = encode_packet(message("/a"))
    for _ in range(depth):
        packet = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(packet)) + packet
    return packet


def bench_corpus() -> None:
    corpus = hostile_datagrams(random.Random(1), CORPUS_SIZE)
    verdicts = Counter()
    for data in corpus:
        a = classify(ours, ProtocolError, data)
        b = classify(theirs, PyParseError, data)
        verdicts[(a, b)] += 1
    print(f"fuzz corpus: {len(corpus)} datagrams (tests/bridge/test_fuzz.py, seed 1)")
    for (a, b), count in sorted(verdicts.items(), key=lambda item: -item[1]):
        print(f"  ours {a:<26} python-osc {b:<28} {count:6d}")
    for depth in (8, 9, 600, 4000):
        data = nested_bundle(depth)
        print(
            f"bundle nested {depth} deep ({len(data)} B): ours {classify(ours, ProtocolError, data)}, "
            f"python-osc {classify(theirs, PyParseError, data)}"
        )


def main() -> None:
    import logging

    logging.disable(logging.CRITICAL)  # python-osc logs a warning per element it cannot read
    signal.signal(signal.SIGALRM, _give_up)
    bench_speed()
    bench_corpus()


if __name__ == "__main__":
    main()
