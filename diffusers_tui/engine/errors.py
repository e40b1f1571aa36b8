"""The errors the engine raises for things a user can fix, each with its message."""


class UserFacingError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""

    #: The CLI's exit status: 2 for input it was given, 1 for a run or save that failed.
    exit_status = 2


class RequestError(UserFacingError, ValueError):
    """A generation setting is out of range; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class ModelNotFoundError(UserFacingError):
    """A model name that points at nothing this machine has."""


class ModelLoadError(UserFacingError):
    """A model was found but could not be loaded (missing files, wrong format, pickle)."""


class SchedulerUnavailableError(UserFacingError):
    """A registry scheduler that this model or this machine cannot run."""


class OutputError(UserFacingError):
    """An image could not be written to the outputs folder."""

    exit_status = 1

    def __init__(self, message: str, saved=None):
        super().__init__(message)
        #: Where the image did get saved (with its steps or index line missing), or None.
        self.saved = saved


class OutOfMemory(UserFacingError):
    """The device (or the host) ran out of memory during a run; what it held was freed."""

    exit_status = 1


class RunError(UserFacingError):
    """A run raised something unexpected, or stopped by itself; the message says where and why."""

    exit_status = 1


class UnreadableFileError(UserFacingError):
    """A file this tool was asked to read is not a regular file, too large, or not what it should be."""
