"""``python -m vaezoo.evaluate``: launches :mod:`vaezoo.stages.evaluate`."""

if __name__ == "__main__":
    from vaezoo.stages.evaluate import main

    main()
