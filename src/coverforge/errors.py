"""The one exception type for user mistakes; the CLI prints it as a single line and exits 2."""


class CoverforgeError(Exception):
    """A problem the user can fix: a bad config value, a missing file, an unusable model folder."""


class ConfigError(CoverforgeError):
    """A config field has a wrong type or value; the message names the dotted field."""
