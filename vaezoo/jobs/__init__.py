"""Job folders as data: the one reader, loading a finished job, resume, reproduce, provenance, safety."""
