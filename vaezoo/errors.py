"""User-facing errors: one line that names the problem and the fix."""

from hydra.errors import CompactHydraException


class VaezooError(CompactHydraException):
    """Bad input from the user. Hydra prints only the message (no traceback) and exits non-zero."""


class ConfigError(VaezooError):
    """A config value or combination of values that cannot work."""


class DataError(VaezooError):
    """Data that is missing, malformed or unsuitable for the chosen model or likelihood."""


class UnsafeInputError(VaezooError):
    """A file from a job folder or a checkpoint that would run code when loaded; refused, not loaded."""


class TrainingFailure(VaezooError):
    """A run that started and could not finish: recorded in the job's failed.json, exit status 1."""

    exit_status = 1


class Diverged(TrainingFailure):
    """A non-finite loss or parameter (see the NaN policy in vaezoo.training.module)."""


class DiskFull(TrainingFailure):
    """A file could not be written because the disk (or quota) is full."""


class JobInterrupted(TrainingFailure):
    """SIGTERM or SIGINT: last.ckpt was saved and the run can be resumed; exit status 128 + signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_status = 128 + signum
