"""jasco-bridge: a local daemon and CLI that put Meta's JASCO inside your DAW.

The only package that imports both `midi` (musical time and chords) and `engine` (the
renderers). From the shell: `jasco-bridge demo`, `jasco-bridge serve`, `jasco-bridge --help`.
From Python::

    from jasco_bridge.daemon import BackgroundDaemon     # run the OSC daemon on a thread
    from jasco_bridge.engines import open_renderer       # JASCO if installed, else the preview
    from jasco_bridge.conditioning import plan_render, build_request   # bars -> engine requests
    from jasco_bridge.pipeline import render_clip        # a plan of any length -> one clip
"""

from jasco_bridge.errors import BridgeError, ClipError, ProtocolError, RenderError, SessionError

__version__ = "0.1.0"

__all__ = [
    "BridgeError",
    "ClipError",
    "ProtocolError",
    "RenderError",
    "SessionError",
    "__version__",
]
