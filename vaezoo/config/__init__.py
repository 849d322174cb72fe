"""Reading and checking configs before anything is built: the command line and the schema."""
