"""``python -m tests.stage_cli STAGE ARGS``: ``python -m vaezoo.STAGE ARGS`` (evaluate or prior) for the
bad-input catalogue, which adds ``paths.runs=`` and ``paths.data=`` to every command line: those keys
belong to training's config, so they are dropped here before the stage's own main runs."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    import importlib

    stage, *args = sys.argv[1:]
    sys.argv = [f"vaezoo.{stage}", *[a for a in args if not a.startswith(("paths.runs=", "paths.data="))]]
    importlib.import_module(f"vaezoo.stages.{stage}").main()
