"""Which ColossalAI Booster plugin, built how; and ColossalAI imported quietly.

ColossalAI is imported inside the functions here, never at module import, so this module (and
``import lrscope``) works without it.

Plugins (``plugin=`` of the engine):

* ``torch_ddp`` (default): torch's DistributedDataParallel; CPU (gloo) and CUDA (NCCL).
* ``hybrid``: HybridParallelPlugin with ``tp_size=1, pp_size=1, precision="fp32"`` and a policy
  that shards nothing (its automatic policy only knows Hugging Face models); CPU and CUDA.
* ``gemini``, ``low_level_zero``: ZeRO-style sharding; CUDA only (``precision="bf16"`` for
  Gemini, which has no fp32 mode and needs HybridAdam; ``precision="fp32"`` for LowLevelZero).

``plugin_options`` override these keyword arguments of the plugin's constructor.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from lrscope.errors import InputError, InputTypeError, did_you_mean

PLUGINS = ("torch_ddp", "hybrid", "gemini", "low_level_zero")
CUDA_ONLY_PLUGINS = ("gemini", "low_level_zero")

_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "torch_ddp": {},
    "hybrid": {"tp_size": 1, "pp_size": 1, "precision": "fp32"},
    "gemini": {"precision": "bf16"},
    "low_level_zero": {"stage": 1, "precision": "fp32"},
}


def check_plugin(name: str, cuda: bool | None = None) -> str:
    """``name`` if it is a plugin this machine can run; else one :class:`InputError` line.

    >>> check_plugin("torch_ddp", cuda=False)
    'torch_ddp'
    >>> check_plugin("gemini", cuda=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: plugin='gemini' needs CUDA ...; on CPU use plugin='torch_ddp' ...
    """
    if not isinstance(name, str):
        raise InputTypeError(f"plugin={name!r}: must be a string, one of {', '.join(PLUGINS)}")
    if name not in PLUGINS:
        raise InputError(f"plugin={name!r}: unknown ColossalAI plugin{did_you_mean(name, PLUGINS)};"
                         f" choose one of {', '.join(PLUGINS)}")
    has_cuda = torch.cuda.is_available() if cuda is None else cuda
    if name in CUDA_ONLY_PLUGINS and not has_cuda:
        raise InputError(f"plugin={name!r} needs CUDA and this machine has none; on CPU use "
                         "plugin='torch_ddp' (the default) or 'hybrid'")
    return name


@contextmanager
def quiet_colossalai() -> Iterator[None]:
    """Silence the warnings and log lines ColossalAI and its imports print (tensornvme, apex,
    bitsandbytes kernels, ...): they are about optional CUDA kernels, not about the user's run."""
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def make_plugin(name: str, options: dict[str, Any] | None = None) -> Any:
    """A new Booster plugin ``name`` with lrscope's defaults, overridden by ``options``."""
    check_plugin(name)
    kwargs = {**_DEFAULT_OPTIONS[name], **(options or {})}
    with quiet_colossalai():
        from colossalai.booster import plugin as plugins

        cls = {
            "torch_ddp": plugins.TorchDDPPlugin,
            "hybrid": plugins.HybridParallelPlugin,
            "gemini": plugins.GeminiPlugin,
            "low_level_zero": plugins.LowLevelZeroPlugin,
        }[name]
        if name == "hybrid" and "custom_policy" not in kwargs and (
                kwargs["tp_size"] == 1 and kwargs["pp_size"] == 1):
            kwargs["custom_policy"] = _no_shard_policy()
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise InputTypeError(f"plugin_options for plugin={name!r}: {err}") from err


def _no_shard_policy() -> Any:
    """A shardformer policy that leaves the model as it is (tensor and pipeline size 1)."""
    from colossalai.shardformer.policies.base_policy import Policy

    class NoShardPolicy(Policy):
        def config_sanity_check(self) -> None:
            pass

        def preprocess(self) -> torch.nn.Module:
            return self.model

        def module_policy(self) -> dict[Any, Any]:
            return {}

        def postprocess(self) -> torch.nn.Module:
            return self.model

        def get_held_layers(self) -> list[torch.nn.Module]:
            return list(self.model.children())

        def get_shared_params(self) -> list[dict[int, torch.Tensor]]:
            return []

    return NoShardPolicy()
