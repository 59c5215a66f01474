"""Errors that mean "the input is wrong", as opposed to a bug or a failed run.

The CLI turns an :class:`InputError` into one line on stderr and exit code 2; everything
else is exit code 1 with a traceback. From the API they are ordinary ``ValueError`` /
``TypeError`` subclasses, so ``except ValueError`` works as users expect.
Messages name the field, the value and how to fix it, in one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(ValueError):
    """A value given by the user is wrong (bad spec, out-of-range argument, bad config)."""


class InputTypeError(InputError, TypeError):
    """A value given by the user has the wrong type."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest valid name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
