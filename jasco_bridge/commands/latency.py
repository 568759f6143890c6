"""Measure the input latency your driver does not report, for --input-latency-ms.

Connect the output to the input first: a cable from the interface's output to its input, or
with JACK `jack_connect PortAudio:out_0 PortAudio:in_0` during the --lead seconds. A click is
played and recorded back; the printed figure is how late it came back compared with what the
driver promised. Pass it to `jasco-bridge serve --input-latency-ms MS` so drum takes sit on the
grid. It may be negative when the driver over-reports its latency.

examples:
  jasco-bridge latency
  jasco-bridge latency --audio-out "Scarlett" --audio-in "Scarlett" --lead 2
"""

from __future__ import annotations

import argparse

HELP = "measure the input latency (loop the output back to the input first)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio-out", metavar="DEVICE", default=None, help="output device")
    parser.add_argument("--audio-in", metavar="DEVICE", default=None, help="input device")
    parser.add_argument(
        "--lead",
        type=float,
        default=1.0,
        help="seconds between opening the devices and the click (time to connect them)",
    )


def run(args: argparse.Namespace) -> int:
    from jasco_bridge.audition import AudioSettings, measure_input_latency

    settings = AudioSettings(output_device=args.audio_out, input_device=args.audio_in)
    latency_ms = measure_input_latency(settings, lead_seconds=args.lead)
    print(f"input latency: {latency_ms:.1f} ms")
    print(f"use it: jasco-bridge serve --input-latency-ms {latency_ms:.1f}")
    return 0
