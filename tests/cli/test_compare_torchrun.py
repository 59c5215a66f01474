"""`lrscope compare --engine colossalai` under torchrun with 2 processes, against a local run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrscope.cli import main
from lrscope.study.store.sqlite import Store

pytestmark = pytest.mark.colossalai

ARGS = ["compare", "--task", "digits", "--schedules", "constant(lr=0.1)",
        "onecycle(max_lr=0.4)", "--seeds", "2", "--steps", "30", "--eval-every", "15",
        "--range-steps", "30", "--parallel", "none"]


def torchrun(*args: str, timeout: float = 300) -> tuple[int, str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "lrscope", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, output


def losses(out: Path) -> dict[str, np.ndarray]:
    with Store.in_dir(out, create=False) as store:
        trials = store.trials()
        assert all(t.status == "finished" for t in trials)
        return {t.key: store.metric_series(t.id, "train_loss")[1] for t in trials}


def test_two_process_study_matches_one_local_process(tmp_path, capsys):
    dist, local = tmp_path / "dist", tmp_path / "local"
    code, output = torchrun(*ARGS, "--engine", "colossalai", "--out", str(dist))
    assert code == 0, output
    assert output.count("report:") == 1  # rank 0 alone reports
    assert main([*ARGS, "--out", str(local)]) == 0
    capsys.readouterr()
    a, b = losses(dist), losses(local)
    assert sorted(a) == sorted(b) and len(a) == 4
    for key in a:
        # rank means over the two halves of each global batch == the full batch's loss
        np.testing.assert_allclose(a[key][:20], b[key][:20], rtol=1e-5, err_msg=key)
    with Store.in_dir(dist, create=False) as store:
        run = store.runs()[0]
        assert run.config["engine"] == "colossalai"
        rt = store.range_test(run.id)
        assert rt is not None and rt.suggestion is not None
    assert (dist / "report.html").exists()


def test_two_process_smith_recipe_agrees_across_ranks(tmp_path):
    # The suite comes from the range test on each rank; the study checks that both ranks
    # built the same one (a fingerprint through engine.mean) and fails loudly otherwise.
    out = tmp_path / "smith"
    code, output = torchrun("compare", "--task", "digits", "--seeds", "1", "--steps", "20",
                            "--range-steps", "40", "--engine", "colossalai", "--out", str(out))
    assert code == 0, output
    with Store.in_dir(out, create=False) as store:
        assert len(store.trials()) == 8
        assert all(t.status in ("finished", "diverged") for t in store.trials())


def test_two_process_find_gives_one_result_for_both_ranks(tmp_path):
    out = tmp_path / "find"
    code, output = torchrun("find", "--task", "digits", "--steps", "40", "--engine",
                            "colossalai", "--out", str(out))
    assert code == 0, output
    import json

    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and result["engine"] == "colossalai"
    assert result["suggestion"] is not None


def test_two_process_predict_study_decides_as_one_local_process(tmp_path, capsys):
    """strategy="predict" on a distributed engine: only rank 0 decides, the other hears each
    batch of trial keys (and the probes' compression) through engine.mean; both ranks train the
    same trials, and the decisions are those of one local process."""
    args = ["compare", "--task", "digits", "--steps", "48", "--limit-train", "320",
            "--limit-test", "200", "--range-steps", "30", "--parallel", "none",
            "--strategy", "predict"]
    dist, local = tmp_path / "dist", tmp_path / "local"
    code, output = torchrun(*args, "--engine", "colossalai", "--out", str(dist))
    assert code == 0, output
    assert output.count("report:") == 1 and output.count("predict: trained ") == 1, output
    assert main([*args, "--out", str(local)]) == 0
    capsys.readouterr()

    def trials(out: Path) -> dict[str, list[str]]:
        with Store.in_dir(out, create=False) as store:
            return {run.name: sorted(t.key for t in store.trials(run.id))
                    for run in store.runs()}

    assert trials(dist) == trials(local)
    assert set(trials(dist)) == {"study", "study-probes"} and len(trials(dist)["study-probes"]) == 8
    assert (dist / "predictions.json").exists() and (dist / "report.html").exists()
