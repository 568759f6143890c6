"""List the sound devices jasco-bridge can play clips on and record drum takes from.

Give one of the names (or a unique part of it, or its number) to `jasco-bridge serve
--audio-out DEVICE --audio-in DEVICE`. Audio needs the optional extra: pip install
'jasco-bridge[audio]' and the PortAudio library (Debian/Ubuntu: libportaudio2).

examples:
  jasco-bridge devices
"""

from __future__ import annotations

import argparse

HELP = "list the audio devices for auditions and drum takes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    from jasco_bridge.audio import list_devices

    devices = list_devices()
    if not devices:
        print("no audio devices found (is the sound server running?)")
        return 1
    for device in devices:
        print(device.describe())
    return 0
