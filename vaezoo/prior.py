"""``python -m vaezoo.prior``: launches :mod:`vaezoo.stages.prior`."""

if __name__ == "__main__":
    from vaezoo.stages.prior import main

    main()
