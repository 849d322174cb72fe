"""``python -m tests.with_file_limit ARGS``: ``python -m vaezoo ARGS`` under a real file-size limit.

What ``ulimit -f`` does in a shell: ``RLIMIT_FSIZE`` set to ``VAEZOO_TEST_FILE_LIMIT`` bytes for this
process before vaezoo writes anything, and SIGXFSZ ignored (as a shell that set the limit leaves it
for most programs' sake), so a write past the limit fails with EFBIG instead of killing the process.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

if __name__ == "__main__":
    limit = int(os.environ["VAEZOO_TEST_FILE_LIMIT"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from vaezoo.__main__ import main

    sys.argv[0] = "vaezoo"
    main()
