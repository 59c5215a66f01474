"""The metric names the store's docs list are the names lrscope writes, no more and no fewer."""

from __future__ import annotations

import re

from lrscope.data.tasks import get_task
from lrscope.study.run import StudyPlan, run_study
from lrscope.study.store import Store, base


def documented_names() -> set[str]:
    """The ``names`` in the docstring's paragraph "Metric names used across lrscope"."""
    doc = base.__doc__ or ""
    paragraph = doc[doc.index("Metric names used across lrscope"):].split("\n\n")[0]
    return set(re.findall(r"``(\w+)``", paragraph))


# issue 8 item 10
def test_documented_metric_names_are_the_written_ones(tmp_path) -> None:
    # A tiny study with a schedule that cycles momentum (onecycle) and one that does not.
    task = get_task("digits", limit_train=64, limit_test=32).with_validation(0.25)
    plan = StudyPlan(name="names", task=task,
                     config={}, seeds=(0,), steps=6, eval_every=3, range_test=None,
                     schedules=("constant(lr=0.1)", "onecycle(max_lr=0.3)"))
    run_study(plan, tmp_path)
    with Store.in_dir(tmp_path, create=False) as store:
        trials = store.trials()
        written = {name for t in trials for name in store.metric_names(t.id)}
    assert len(trials) == 2
    assert written <= documented_names()
    assert documented_names() == written  # nothing documented that nothing writes
    assert set(getattr(base, "METRIC_NAMES", ())) == written  # the writers' one list
