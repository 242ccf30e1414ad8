"""The base of every error a user can cause: the CLI prints its message as one line and exits with its code."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what is wrong and how to fix it."""

    exit_code = 1


class UsageError(UserError):
    """A bad command-line argument; the message says which and how to fix it."""

    exit_code = 2
