"""Which ColossalAI Booster plugin, built how; and ColossalAI imported quietly.

ColossalAI is imported inside the functions here, never at module import, so this module (and
``import lrscope``) works without it.

Plugins (``plugin=`` of the engine):

* ``torch_ddp`` (default): torch's DistributedDataParallel; CPU (gloo) and CUDA (NCCL).
* ``hybrid``: HybridParallelPlugin with ``tp_size=1, pp_size=1, precision="fp32"`` and a policy
  that shards nothing (its automatic policy only knows Hugging Face models); CPU and CUDA.
* ``gemini``, ``low_level_zero``: ZeRO-style sharding; CUDA only (``precision="bf16"`` for
  Gemini, which has no fp32 mode; ``precision="fp32"`` for LowLevelZero).

``plugin_options`` override these keyword arguments of the plugin's constructor.

Gemini trains only with ColossalAI's own Adam (``HybridAdam``): :func:`optimizer_for_plugin`
turns the caller's torch Adam or AdamW into one and refuses anything else in one line;
:func:`plugin_optimizer_problem` is the same rule on an optimizer's name, for config checks.
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

# The optimizers each plugin accepts, by config name (every plugin not listed takes any).
PLUGIN_OPTIMIZERS: dict[str, tuple[str, ...]] = {"gemini": ("adam", "adamw")}
_SHOWN_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
# ColossalAI's own Adams, which Gemini takes as they are (its GeminiOptimizer checks the type).
_COLOSSALAI_ADAMS = ("HybridAdam", "CPUAdam", "FusedAdam")
# Options of torch's Adam that HybridAdam does not have; a group with one set is refused.
_NO_HYBRID_ADAM_OPTIONS = ("amsgrad", "maximize")

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


def plugin_optimizer_problem(plugin: str | None, optimizer: str, given: str = "") -> str | None:
    """Why ``plugin`` cannot train with ``optimizer`` (a config name such as ``"sgd"``, or a
    class name), or None when it can. The one rule behind the config check and
    :func:`optimizer_for_plugin`; the reason reads on after ``plugin='gemini' ``, and
    ``given`` follows the optimizer's name in it (where the value came from).

    >>> plugin_optimizer_problem("gemini", "adamw") is None
    True
    >>> plugin_optimizer_problem("torch_ddp", "sgd") is None
    True
    >>> print(plugin_optimizer_problem("gemini", "sgd"))
    needs Adam or AdamW (lrscope converts them to ColossalAI's HybridAdam), not SGD; use \
--optimizer adam|adamw or --plugin torch_ddp
    """
    allowed = PLUGIN_OPTIMIZERS.get(plugin or "")
    if allowed is None or optimizer.lower() in allowed:
        return None
    shown = " or ".join(_SHOWN_NAMES[name] for name in allowed)
    refused = _SHOWN_NAMES.get(optimizer, optimizer)
    return (f"needs {shown} (lrscope converts them to ColossalAI's HybridAdam), not "
            f"{refused}{given}; use --optimizer {'|'.join(allowed)} or --plugin torch_ddp")


def optimizer_for_plugin(name: str, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The optimizer that plugin ``name`` trains with, in place of the caller's ``optimizer``.

    Every plugin but ``gemini`` takes ``optimizer`` itself. ``gemini`` takes only ColossalAI's
    own Adam, so a torch ``Adam`` or ``AdamW`` becomes a new ``HybridAdam`` over the same
    parameters and param groups, with each group's ``lr``, ``betas``, ``eps`` and
    ``weight_decay`` and ``adamw_mode`` True for AdamW's decoupled weight decay (False for
    Adam's L2 penalty); a HybridAdam, CPUAdam or FusedAdam is used as it is. Anything else
    (SGD, ...) and Adam with ``amsgrad`` or ``maximize`` is one :class:`InputError` line,
    raised before ColossalAI is imported.

    The new optimizer is internal to the run: the caller's optimizer is never stepped (a range
    test snapshots and restores it as usual), the run's LRs go to the one the engine's
    ``setup`` returns, and the caller's optimizer state (Adam's moments) is not carried over.

    >>> sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> optimizer_for_plugin("torch_ddp", sgd) is sgd
    True
    >>> optimizer_for_plugin("gemini", sgd)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: plugin='gemini' needs Adam or AdamW (...), not SGD; use ...
    """
    if name not in PLUGIN_OPTIMIZERS:
        return optimizer
    kind = type(optimizer)
    if kind.__module__.startswith("colossalai.") and kind.__name__ in _COLOSSALAI_ADAMS:
        return optimizer
    decoupled = isinstance(optimizer, torch.optim.AdamW) or bool(
        optimizer.defaults.get("decoupled_weight_decay", False))
    label = ("adamw" if decoupled else "adam") if isinstance(optimizer, torch.optim.Adam) \
        else kind.__name__
    problem = plugin_optimizer_problem(name, label)
    if problem is not None:
        raise InputError(f"plugin={name!r} {problem}")
    unsupported = [option for option in _NO_HYBRID_ADAM_OPTIONS
                   if any(group.get(option) for group in optimizer.param_groups)]
    if unsupported:
        raise InputError(f"plugin={name!r}: ColossalAI's HybridAdam has no {unsupported[0]}; "
                         f"make the {kind.__name__} with {unsupported[0]}=False or use "
                         "--plugin torch_ddp")
    return _hybrid_adam(optimizer, adamw_mode=decoupled)


def _hybrid_adam(optimizer: torch.optim.Optimizer, adamw_mode: bool) -> torch.optim.Optimizer:
    """A HybridAdam with ``optimizer``'s parameters, param groups and hyperparameters."""
    hyper = ("lr", "betas", "eps", "weight_decay")
    torch_only = set(optimizer.defaults) - set(hyper)  # amsgrad, foreach, fused, ...
    groups = []
    for group in optimizer.param_groups:
        made = {key: value for key, value in group.items() if key not in torch_only}
        made["params"] = list(group["params"])
        made["lr"] = float(group["lr"])  # torch allows a tensor LR
        made["betas"] = tuple(float(beta) for beta in group["betas"])
        groups.append(made)
    defaults = optimizer.defaults
    with quiet_colossalai():
        from colossalai.nn.optimizer import HybridAdam

        made_optimizer: torch.optim.Optimizer = HybridAdam(
            groups, lr=float(defaults["lr"]), betas=tuple(defaults["betas"]),
            eps=defaults["eps"], weight_decay=defaults["weight_decay"], adamw_mode=adamw_mode)
    return made_optimizer


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
