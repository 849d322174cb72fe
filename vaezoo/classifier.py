"""``python -m vaezoo.classifier``: launches :mod:`vaezoo.stages.classifier`."""

if __name__ == "__main__":
    from vaezoo.stages.classifier import run

    run()
