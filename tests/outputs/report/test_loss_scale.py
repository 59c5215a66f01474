"""The report says that the seed's imported logs have their test loss on another scale than the
study they are drawn beside, with the factor measured from the logs (issue 19 item 16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lrscope.outputs.report.build import ReportFiles
from lrscope.outputs.report.data import load_run
from lrscope.outputs.report.loss_scale import loss_scale_note, ratio_of_test_to_train
from lrscope.study.store.sqlite import Store
from seed_logs import SEED_LOGS

pytestmark = pytest.mark.skipif(not SEED_LOGS.is_dir(), reason="the seed study's logs are absent")


def test_issue19_item16_seed_test_loss_is_measured_at_about_1_80_of_a_mean_loss(
        study_dir: Path) -> None:
    with Store.in_dir(study_dir, create=False) as store:
        views = {run.kind: load_run(store, run) for run in store.runs()}
    seed, study = views["import"].labels.values(), views["study"].labels.values()
    theirs, ours = ratio_of_test_to_train(seed), ratio_of_test_to_train(study)
    assert theirs is not None and ours is not None
    # The seed divided its mean test loss by its ~79 test batches (10,000 images at batch 128).
    assert 1 / 100 < theirs[0] < 1 / 60 and theirs[1] >= 30
    assert 1 / 3 < ours[0] < 3  # a mean cross-entropy: test about the train loss
    note = loss_scale_note(study, seed)
    factor = int(re.search(r"it is 1/(\d+) of their own train loss", note).group(1))
    assert 60 < factor < 100 and f"this study's is {ours[0]:.2g}x its train loss" in note
    assert loss_scale_note(study, study) == ""  # the same scale: nothing to say


def test_issue19_item16_report_captions_say_the_imported_scale(report: ReportFiles) -> None:
    md = report.markdown.read_text()
    study_part = md.split("## Run tb_logs (import)")[0]
    for family in ("step", "exponential", "onecycle"):
        section = study_part.split(f"### Family: {family}")[1].split("###")[0]
        assert re.search(r"test loss was logged on another scale: it is 1/\d+ of their own "
                         r"train loss", section), family
