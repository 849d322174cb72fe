"""User-facing errors: one line that names the problem and the fix."""

from hydra.errors import CompactHydraException


class VaezooError(CompactHydraException):
    """Bad input from the user. Hydra prints only the message (no traceback) and exits non-zero."""


class ConfigError(VaezooError):
    """A config value or combination of values that cannot work."""


class DataError(VaezooError):
    """Data that is missing, malformed or unsuitable for the chosen model or likelihood."""
