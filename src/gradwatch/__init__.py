"""gradwatch: why deep networks are hard to train — watch, diagnose, reproduce and predict gradient flow."""

from gradwatch._version import __version__
from gradwatch.errors import ConfigError, DataError

__all__ = ["__version__", "ConfigError", "DataError"]
