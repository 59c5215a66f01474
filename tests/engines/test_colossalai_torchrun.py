"""Two processes under torchrun: shards, mean losses, identical ranks, failing ranks.

One torchrun launch (module fixture) trains 20 steps with torch_ddp and with hybrid and runs a
range test; its two ranks' reports are compared with each other and with one process on the
whole global batches. Every launch has a hard timeout and its process group is killed after.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from colossalai_worker import range_test
from engine_problem import make_batches, make_model, plain_losses

from lrscope.engines.local import LocalEngine

pytestmark = pytest.mark.colossalai

WORKER = Path(__file__).with_name("colossalai_worker.py")
STEPS, BATCH = 20, 16


def torchrun(out: Path, *args: str, timeout: float) -> tuple[int, str]:
    """Run the worker on 2 CPU processes; kill everything it started when done or timed out."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(WORKER), "--out", str(out), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and any worker left behind
        proc.wait()
    return proc.returncode, output


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("two_ranks")
    code, output = torchrun(out, "--plugins", "torch_ddp,hybrid", "--range-test",
                            "--steps", str(STEPS), "--batch-size", str(BATCH), timeout=300)
    assert code == 0, output
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_both_ranks_end_with_identical_results(ranks: list[dict[str, Any]]) -> None:
    assert [r.pop("rank") for r in ranks] == [0, 1]
    assert ranks[0] == ranks[1]
    assert ranks[0]["world_size"] == 2


@pytest.mark.parametrize("plugin", ["torch_ddp", "hybrid"])
def test_mean_loss_equals_one_process_on_the_whole_batch(
        ranks: list[dict[str, Any]], plugin: str) -> None:
    run = ranks[0][plugin]
    assert run["rows"] == [BATCH // 2] * STEPS
    model, batches = make_model(), make_batches(STEPS, BATCH)
    expected = plain_losses(model, batches)
    assert run["losses"] == pytest.approx(expected, abs=1e-5, rel=0)
    assert run["losses"][-1] < run["losses"][0]


def test_range_test_gives_both_ranks_the_same_answer(ranks: list[dict[str, Any]]) -> None:
    first, second = ranks[0]["range_test"], ranks[1]["range_test"]
    assert first == second
    assert first["stopped"] == "diverged" and first["steps"] < 60
    assert (first["world_size"], first["effective_batch_size"]) == (2, 32)
    assert first["restored"]  # the caller's model is back to its weights on every rank


def test_range_test_matches_one_process_on_the_whole_batch(ranks: list[dict[str, Any]]) -> None:
    distributed, local = ranks[0]["range_test"], range_test(LocalEngine())
    assert distributed["steps"] == local["steps"]
    assert distributed["stopped"] == local["stopped"]
    # Up to LR ~5 (step 40 of 60 from 1e-3 to 100); past it the loss explodes and the rounding
    # of a two-rank gradient sum, amplified by huge steps, moves the losses by more than 1e-5.
    assert distributed["losses"][:40] == pytest.approx(local["losses"][:40], abs=1e-5, rel=0)
    assert distributed["suggestion"] == pytest.approx(local["suggestion"], rel=1e-6)


@pytest.mark.parametrize("how", ["sigkill", "hang"])
def test_a_failing_rank_ends_the_launch_within_60_s(tmp_path: Path, how: str) -> None:
    """Rank 1 is killed (or stops answering) at step 5; torchrun must exit non-zero soon
    after, rank 0 must not finish, and nothing may hang (hard timeout)."""
    code, output = torchrun(tmp_path, "--steps", "200", "--fail-rank", "1", "--fail-step", "5",
                            "--fail-how", how, "--timeout", "5", timeout=240)
    ended = time.time()
    assert code != 0, output
    assert ended - float((tmp_path / "failed_at").read_text()) < 60
    assert not (tmp_path / "rank0.json").exists()
    if how == "hang":  # rank 0 gives up after timeout_s and says why
        assert "rank 0 of 2: backward failed" in output and "within 5 s" in output, output
