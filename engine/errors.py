"""The exceptions raised by `engine`. Every message names the bad input and says what to do."""


class EngineError(Exception):
    """Base class of every error raised by the `engine` package."""


class CheckpointError(EngineError):
    """A checkpoint file or folder is missing, truncated, or does not match the architecture."""


class ConditioningError(EngineError, ValueError):
    """A generation request carries conditions the model cannot use (bad shape, index, rate)."""


class DeviceError(EngineError):
    """The requested device is not available."""


class GenerationCancelled(EngineError):
    """A generation was stopped by its cancellation check between two sampler steps."""
