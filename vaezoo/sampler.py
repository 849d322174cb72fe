"""``python -m vaezoo.sampler``: launches :mod:`vaezoo.stages.sampler`."""

if __name__ == "__main__":
    from vaezoo.stages.sampler import main

    main()
