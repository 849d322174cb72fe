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


class NotWritable(TrainingFailure):
    """A folder vaezoo must write to is read-only (a read-only mount) or not permitted."""


class StageInterrupted(SystemExit):
    """SIGTERM or SIGINT in a stage that trains nothing (evaluate, prior, report): exit status 128 + signal.

    A ``SystemExit`` so that no ``except Exception`` on the way (Hydra's, Lightning's) turns it into a
    traceback; the entry point prints :attr:`message` as its last line.
    """

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.message = message


# errno values of a write that failed because of where it writes, not what it writes.
_FULL = {"ENOSPC", "EDQUOT"}
_TOO_LARGE = {"EFBIG"}
_READ_ONLY = {"EROFS", "EACCES", "EPERM"}


def write_failure(
    err: OSError, path: object, after: str = "", elsewhere: str = "paths.runs=<a writable folder>"
) -> TrainingFailure | None:
    """The one-line failure for an ``OSError`` raised writing ``path``, or None when it is another error.

    ``after`` is what the user does once the cause is fixed (e.g. "resume with ..."), ``elsewhere`` how
    to write somewhere else; the message names the folder and the fix: free space, raise the file-size
    limit, or write somewhere writable.
    """
    import errno as errno_names
    from pathlib import Path

    name = errno_names.errorcode.get(err.errno or 0, "")
    where = Path(str(err.filename or path))
    if where.name.startswith(".") and where.name.endswith(".tmp"):  # our temporary name: say the real one
        real = where.name[1 : -len(".tmp")]
        given = Path(str(path))
        where = given if real.startswith(given.name) else where.with_name(real)
    folder = where if where.is_dir() else where.parent
    then = f", then {after}" if after else ""
    if name in _FULL:
        return DiskFull(f"no space left on the device writing {where}: free space in {folder}{then}")
    if name in _TOO_LARGE:
        return DiskFull(
            f"{where} is larger than this shell's file-size limit (ulimit -f): raise it "
            f"(ulimit -f unlimited){then}"
        )
    if name in _READ_ONLY:
        return NotWritable(
            f"cannot write {where}: {folder} is read-only or not yours ({err.strerror}); make it writable "
            f"or write elsewhere ({elsewhere}){then}"
        )
    return None
