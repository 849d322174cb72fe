"""``python -m vaezoo.report``: launches :mod:`vaezoo.stages.report`."""

if __name__ == "__main__":
    from vaezoo.stages.report import main

    raise SystemExit(main())
