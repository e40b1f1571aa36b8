"""The errors the engine raises for things a user can fix, each with its message."""


class UserFacingError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""


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
