"""The one exception type that means "the user can fix this"."""


class UserError(Exception):
    """A problem with the user's input (config, data, flags). The CLI prints it as one line, no traceback."""
