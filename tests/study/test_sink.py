"""The study hands each recorded trial to a sink and never writes TensorBoard itself (issue 17
item 4: the study no longer imports outputs; lrscope.session passes the TensorBoard sink)."""

from __future__ import annotations

from lrscope.data.tasks import get_task
from lrscope.outputs.tensorboard import TensorBoardSink, read_scalars, tb_dir
from lrscope.study.plan import StudyPlan
from lrscope.study.run import run_study
from lrscope.study.store import Store
from lrscope.trials.trial import TrialResult


class Heard:
    """A sink that keeps what it hears, and what the store said about the trial right then."""

    def __init__(self, out) -> None:
        self.out = out
        self.heard: list[tuple[str, int, str]] = []

    def trial_recorded(self, key: str, result: TrialResult) -> None:
        with Store.in_dir(self.out, create=False) as store:
            (trial,) = [t for t in store.trials() if t.key == key]
            self.heard.append((key, len(store.metric_series(trial.id, "train_loss")[0]),
                               trial.status))


def tiny_plan(name: str = "sink") -> StudyPlan:
    task = get_task("digits", limit_train=64, limit_test=32)
    return StudyPlan(name=name, task=task, config={}, seeds=(0, 1), steps=6, eval_every=3,
                     range_test=None, schedules=("constant(lr=0.1)",))


def test_issue17_item4_the_study_hands_each_trial_to_its_sink(tmp_path):
    sink = Heard(tmp_path)
    run_study(tiny_plan(), tmp_path, sink=sink)
    # each trial once, its metrics already stored and not yet marked done (a kill in between
    # reruns the trial, and the sink hears it again)
    assert sorted(sink.heard) == [("constant(lr=0.1)/seed0", 6, "running"),
                                  ("constant(lr=0.1)/seed1", 6, "running")]
    assert not (tmp_path / "tb").exists()  # no TensorBoard unless its sink is passed
    run_study(tiny_plan(), tmp_path, sink=sink)  # resumed: nothing new to hear
    assert len(sink.heard) == 2


def test_issue17_item4_the_tensorboard_sink_writes_each_trial_its_folder(tmp_path):
    run_study(tiny_plan(), tmp_path, sink=TensorBoardSink(tmp_path))
    with Store.in_dir(tmp_path, create=False) as store:
        trials = store.trials()
        stored = {t.key: store.metric_series(t.id, "test_loss") for t in trials}
    assert len(stored) == 2
    for key, (steps, values) in stored.items():
        scalars = read_scalars(tb_dir(tmp_path, key))
        assert [step for step, _ in scalars["Loss/train"]] == list(range(6))
        assert [step for step, _ in scalars["Loss/test"]] == steps.tolist() != []
        assert [v for _, v in scalars["Loss/test"]] == values.astype("float32").tolist()
