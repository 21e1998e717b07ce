"""The one exception type users see.

Anything that is the user's doing (a missing path, a corrupt file, an unknown name, wrong shapes) raises
`NeurostackError` with a one-line message naming the thing and the problem. The CLI prints it as
``error: <message>`` and exits with code 2; everything else is a bug and keeps its traceback.
"""


class NeurostackError(Exception):
    """A problem with the user's input, reported in one line without a traceback."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
