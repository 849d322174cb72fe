"""``python -m vaezoo.bench [--help]``."""

import sys

from vaezoo.bench.run import main

if __name__ == "__main__":
    sys.exit(main())
