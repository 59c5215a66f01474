"""Where a study's trial records go besides the store: a sink (TensorBoard event files, say).

The study never imports ``lrscope.outputs``: whoever runs it (:mod:`lrscope.session`, the layer
above study and outputs) passes the sinks it wants. The store stays the record of truth; a sink
is a view of it.

The contract, as :func:`lrscope.study.run.run_study` keeps it: on the main rank only, for each
trial this process ran and still owns, :meth:`TrialSink.trial_recorded` is called after the
trial's metrics are in the store and before the trial is marked done. A process killed in
between leaves the trial unfinished, so a rerun trains it again and the sink hears the same key
again: a sink replaces what it holds for a key, never appends to it. An exception from a sink
fails the trial's call like any other (the claimed trials are released as failed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lrscope.trials.trial import TrialResult


class TrialSink(Protocol):
    """Hears each trial the study records (see the module docstring)."""

    def trial_recorded(self, key: str, result: TrialResult) -> None:
        """``result`` of the trial ``key`` (``<schedule label>/seed<seed>``) is being stored."""
        ...
