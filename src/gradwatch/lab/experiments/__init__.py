"""The seeds' experiments, one module each."""
