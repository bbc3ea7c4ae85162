"""User-facing errors.

Anything a user can cause (a bad file, an unknown name, a config without a key) raises
:class:`ZettError` at the boundary with a one-line message naming the file or value and what was
expected. The ``zett`` command prints the message and exits with status 2.
"""


class ZettError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""
