"""Errors that are the user's to fix (a bad option, missing data, a busy run): the CLI prints them as one line."""


class UserError(ValueError):
    """Something in the request or its inputs is wrong; the message says what, and what is allowed."""
