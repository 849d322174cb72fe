"""``python -m vaezoo.table``: launches :mod:`vaezoo.stages.table`."""

if __name__ == "__main__":
    from vaezoo.stages.table import main

    raise SystemExit(main())
