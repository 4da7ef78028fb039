"""Errors the experiment mains turn into a one-line message and a non-zero exit."""


class DataError(Exception):
    """Data missing, truncated or corrupt; the message names the file and what to do."""


class ConfigError(ValueError):
    """An invalid setting; the message names it."""
