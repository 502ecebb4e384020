"""Expected errors: bad data, bad config, bad request.

The CLI turns a `UserError` into one line on stderr and exit code 2; anything else is
a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error the user can fix (input data, config, arguments)."""


class DataError(UserError):
    """Input data is unreadable or inconsistent."""


class ConfigError(UserError):
    """A config file has an unknown key, a wrong type or an out-of-range value."""
