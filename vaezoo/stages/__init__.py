"""The stages a user runs (train, evaluate, prior, classifier, report, table): thin entries."""
