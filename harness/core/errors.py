"""Errors that are the user's to fix: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input (unknown name, malformed value, missing file). The message says what to do."""


class DataError(UserError):
    """A corpus or cache that cannot be used as asked."""


HOST_OUT_OF_MEMORY = "host out of memory"  # how a run's error begins when the host ran out, not the GPU
