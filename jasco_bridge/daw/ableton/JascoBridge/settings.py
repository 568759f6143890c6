"""What you may want to change: edit these values and restart Live (or re-select the script)."""

# Where `jasco-bridge serve` listens (its defaults).
DAEMON_HOST = "127.0.0.1"
DAEMON_PORT = 9000

# The script listens here for /jasco/live/render, /jasco/live/cancel, /jasco/live/another_take
# (from an OSC controller); the daemon's replies come back to the same socket.
LISTEN_HOST = "127.0.0.1"
LISTEN_PORT = 9010

# MIDI triggers: control changes on the script's MIDI input port (Preferences > Link, Tempo &
# MIDI > Control Surface "JascoBridge", Input). Channel 16 (15 counted from 0); any value above
# 0 is a press, 0 (the button's release) is ignored.
TRIGGER_CHANNEL = 15
RENDER_CC = 102
CANCEL_CC = 103
ANOTHER_TAKE_CC = 104

# The audio track the clips land on (created when missing).
TRACK_NAME = "JASCO"

# One JASCO window covers this many seconds: a bar longer than that cannot be rendered (longer
# clips are rendered by the daemon window by window, as one clip).
SEGMENT_SECONDS = 10.0

# Without an answer from the daemon within this many seconds, the status bar says so.
ANSWER_TIMEOUT_SECONDS = 3.0
