"""Error types every stage may raise; here, at the bottom of the package, so none imports upward."""


class ConfigError(ValueError):
    """A configuration mistake, with the offending key path in the message."""
