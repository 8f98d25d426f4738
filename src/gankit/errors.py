"""The one exception type a user sees: a one-line message saying what was wrong and what to do."""


class GankitError(Exception):
    """An error caused by the user's input or environment, not by a bug in gankit.

    The CLI prints ``gankit: error: <message>`` and exits with status 2, without a traceback
    (unless ``--debug``). Messages are one line and name the offending file, key or value.
    """
