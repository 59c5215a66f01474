"""ColossalAI engine specifics, one process: lazy import, plugin choice, lifetime, quiet output.

The shared contract runs in test_engine_contract.py; two processes in
test_colossalai_torchrun.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from engine_problem import make_model, sgd

from lrscope.engines import Engine, get_engine
from lrscope.errors import InputError

HERE = Path(__file__).parent
LIFECYCLE = HERE / "colossalai_lifecycle.py"
NOISE = ("warn", "apex", "tensornvme", "kernels", "bitsandbytes", "colossalai")


def run_python(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=HERE,
                          timeout=timeout, check=False)


def test_importing_every_lrscope_module_does_not_import_colossalai() -> None:
    code = (
        "import importlib, pkgutil, sys, lrscope, lrscope.engines\n"
        "for m in pkgutil.walk_packages(lrscope.__path__, 'lrscope.'):\n"
        "    if m.name != 'lrscope.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "assert 'lrscope.engines.colossalai' in sys.modules\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'colossalai'))\n"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.skipif(torch.cuda.is_available(), reason="these plugins do run where CUDA is")
@pytest.mark.parametrize("plugin", ["gemini", "low_level_zero"])
def test_cuda_only_plugins_say_so_in_one_line_on_cpu(plugin: str) -> None:
    with pytest.raises(InputError) as caught:
        get_engine("colossalai", plugin=plugin)
    message = str(caught.value)
    assert "\n" not in message and "needs CUDA" in message
    assert "torch_ddp" in message and "hybrid" in message


@pytest.mark.parametrize(("options", "words"), [
    ({"plugin": "torch-ddp"}, "did you mean 'torch_ddp'"),
    ({"plugin": 3}, "must be a string"),
    ({"timeout_s": 0}, "timeout_s=0"),
])
def test_bad_options_fail_before_colossalai_is_imported(options: dict[str, object],
                                                        words: str) -> None:
    with pytest.raises(InputError, match=words):
        get_engine("colossalai", **options)


@pytest.mark.colossalai
def test_backward_needs_the_optimizer_setup_returned(
        colossalai_engine: Callable[[str], Engine]) -> None:
    engine = colossalai_engine("torch_ddp")
    model = make_model()
    raw_optimizer = sgd(model)
    wrapped, optimizer = engine.setup(model, raw_optimizer)
    try:
        loss = wrapped(torch.ones(2, 6)).sum()
        with pytest.raises(InputError, match="setup"):
            engine.backward(loss, raw_optimizer)
    finally:
        engine.teardown(wrapped, optimizer)


@pytest.mark.colossalai
def test_process_group_lifetime_and_rng() -> None:
    done = run_python(str(LIFECYCLE), "facts")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts == dict.fromkeys(facts, True) and len(facts) == 8, facts
    assert not any(word in done.stderr.lower() for word in NOISE), done.stderr


@pytest.mark.colossalai
@pytest.mark.parametrize("mode", ["exit-without-close", "error-without-close"])
def test_exit_hook_closes_an_open_engine_without_hanging(mode: str) -> None:
    done = run_python(str(LIFECYCLE), mode, timeout=120)  # a hang fails with TimeoutExpired
    assert done.stdout.strip() == "trained"
    if mode == "exit-without-close":
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == 1 and "failing on purpose" in done.stderr
