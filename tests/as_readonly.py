"""``python -m tests.as_readonly ARGS``: ``python -m vaezoo ARGS`` with the folders named in
``VAEZOO_TEST_READONLY`` (os.pathsep-separated) seen as read-only and unreadable by ``os.access``.

Tests run as root in containers, where chmod does not stop writes; this is how they see what a user
with a read-only data or W&B folder sees.
"""

from __future__ import annotations

import os
import sys

_PREFIXES = [p for p in os.environ.get("VAEZOO_TEST_READONLY", "").split(os.pathsep) if p]
_real_access = os.access


def _access(path: object, mode: int, *args: object, **kwargs: object) -> bool:
    if any(str(path).startswith(p) for p in _PREFIXES) and mode & os.W_OK:
        return False
    return _real_access(path, mode, *args, **kwargs)


os.access = _access

if __name__ == "__main__":
    from vaezoo.__main__ import main

    sys.argv[0] = "vaezoo"
    main()
