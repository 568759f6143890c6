"""jasco-bridge: a local daemon and CLI that put Meta's JASCO inside your DAW."""

__version__ = "0.1.0"
