"""Whether imported runs logged their loss on another scale than the study they are drawn beside.

The seed study's TensorBoard logs have a train loss that starts at ln 10 = 2.30, a mean
cross-entropy like lrscope's, but a test loss about 1/80 of that (it was divided by the number
of test batches once more). Drawn beside a study's test loss, such curves mislead by that
factor, so the caption says so, with the factor measured from the data: a run's test loss over
its own (smoothed) train loss at the same steps is about 1 for a mean loss whatever the model
learned: the imported runs' median ratio, against this study's, shows the other scale.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lrscope.outputs.report.data import LabelCurves

# A test/train ratio this many times off the study's is a scale, not over- or under-fitting.
SCALE_FACTOR_LIMIT = 5.0


def ratio_of_test_to_train(labels: Iterable[LabelCurves]) -> tuple[float, int] | None:
    """Median over every evaluation of (test loss / train loss at that step), and how many
    evaluations it is over; None when no label has both."""
    ratios: list[float] = []
    for curves in labels:
        test, train = curves.curves.get("test_loss"), curves.curves.get("train_loss")
        if test is None or train is None or test.empty or train.empty:
            continue
        at = np.searchsorted(train.steps, test.steps, side="right") - 1
        seen = at >= 0
        ratio = test.mean[seen] / train.mean[at[seen]]
        ratios += [float(r) for r in ratio if np.isfinite(r) and r > 0]
    return (float(np.median(ratios)), len(ratios)) if ratios else None


def loss_scale_note(study: Iterable[LabelCurves], imported: Iterable[LabelCurves]) -> str:
    """A clause for a figure's caption when the imported runs' test loss is on another scale
    than the study's (issue 19 item 16), else ``""``.

    The study's own ratio is the reference (1, a mean loss, when it has no test loss).
    """
    imported = list(imported)
    theirs = ratio_of_test_to_train(imported)
    if theirs is None:
        return ""
    ours = ratio_of_test_to_train(study)
    reference = ours[0] if ours is not None else 1.0
    factor = theirs[0] / reference
    if 1 / SCALE_FACTOR_LIMIT <= factor <= SCALE_FACTOR_LIMIT:
        return ""
    size = f"1/{1 / theirs[0]:.0f}" if theirs[0] < 1 else f"{theirs[0]:.0f}x"
    ours_text = (f"this study's is {ours[0]:.2g}x its train loss" if ours is not None
                 else "a mean loss's is about its train loss")
    return (f"; the imported runs' test loss was logged on another scale: it is {size} of "
            f"their own train loss at the same steps (median of {theirs[1]} evaluations), "
            f"where {ours_text}, so compare the dashed test-loss curves by shape, not by value")
