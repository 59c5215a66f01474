"""The schedule spec language: ``family(arg=value, ...)``, e.g. ``onecycle(max_lr=1.1)``.

A spec is read with Python's own parser (:mod:`ast`, eval mode) but never evaluated: only
keyword arguments with literal values are accepted: numbers (``1e-3``, ``-1``), ``True`` /
``False`` / ``None``, strings (quoted, or bare names like ``mode=exp``) and lists of those
(``milestones=[100, 200]``). The combinators (``warmup``, ``join``) take other schedules as
nested family calls, first and unnamed: ``warmup(cosine(lr=0.5), steps=100)``,
``join([constant(lr=0.1), cosine(lr=0.1)], boundaries=[100])``. Every error is one line naming
the family or argument at fault, with the closest valid name when there is one.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

from lrscope.errors import InputError, InputTypeError, did_you_mean
from lrscope.schedules.base import REGISTRY, Schedule

_LITERALS = (int, float, str, bool, type(None))
_FORM = "write a schedule as family(arg=value, ...), e.g. onecycle(max_lr=1.1)"


def parse(spec: str, total_steps: int | None = None) -> Schedule:
    """The schedule a spec describes; ``total_steps`` fills in a finite one left without it,
    and its LR must be finite at each of those steps (:meth:`Schedule.check_finite`).

    >>> parse("exponential(lr=1, gamma=0.5)")(2)
    0.25
    >>> parse("onecycle(max_lr=1.1)", total_steps=2345).spec()
    'onecycle(max_lr=1.1, total_steps=2345)'
    >>> parse("onecylce(max_lr=1.1)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrscope.errors.InputError: unknown schedule family 'onecylce' (did you mean 'onecycle'?); ...
    """
    if not isinstance(spec, str):
        raise InputTypeError(f"schedule spec {spec!r} must be a string; {_FORM}")
    schedule = _schedule(_read_tree(spec), spec)
    if total_steps is None:
        return schedule
    schedule = schedule.with_total_steps(total_steps)
    schedule.check_finite(total_steps)
    return schedule


def build(family: str, kwargs: dict[str, Any]) -> Schedule:
    """The schedule of ``family`` with ``kwargs``, checking names before values."""
    if family not in REGISTRY:
        raise InputError(
            f"unknown schedule family {family!r}{did_you_mean(family, REGISTRY)}; "
            f"known families: {', '.join(sorted(REGISTRY))}"
        )
    cls = REGISTRY[family]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in kwargs:
        if name not in fields:
            raise InputError(
                f"{family}: unknown argument {name!r}{did_you_mean(name, fields)}; "
                f"{family} takes {', '.join(fields)}"
            )
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        example = ", ".join(f"{name}=..." for name in missing)
        raise InputError(
            f"{family}: missing required argument {', '.join(missing)}; e.g. {family}({example})"
        )
    return cls(**kwargs)


def _read_tree(spec: str) -> ast.expr:
    try:
        return ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as err:
        raise InputError(f"malformed schedule spec {spec!r} ({err.msg}); {_FORM}") from None


def _schedule(node: ast.expr, spec: str) -> Schedule:
    family, kwargs = _read_call(node, spec)
    return build(family, kwargs)


def _read_call(tree: ast.expr, spec: str) -> tuple[str, dict[str, Any]]:
    if isinstance(tree, ast.Name):  # a family with all-default arguments, e.g. "constant"
        return tree.id, {}
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise InputError(f"malformed schedule spec {spec!r}; {_FORM}")
    family = tree.func.id
    nested = REGISTRY[family].schedule_args if family in REGISTRY else ()
    if len(tree.args) > len(nested):
        if family not in REGISTRY and any(_looks_nested(arg) for arg in tree.args):
            build(family, {})  # warmupp(cosine(...)): say the family is unknown
        extra = ast.unparse(tree.args[len(nested)])
        if nested:
            fields = ", ".join(f.name for f in dataclasses.fields(REGISTRY[family]))
            raise InputError(
                f"{family}: only {nested[0]} may be given without a name; name the others "
                f"({family} takes {fields}), not {extra!r} alone"
            )
        raise InputError(
            f"{family}: arguments must be named, e.g. {family}(lr=0.1), not {extra!r} alone"
        )
    positional = zip(nested, tree.args, strict=False)  # len(args) <= len(nested)
    kwargs: dict[str, Any] = {name: _nested(family, name, node, spec) for name, node in positional}
    for keyword in tree.keywords:
        if keyword.arg is None:
            raise InputError(f"{family}: '**' is not allowed in a spec; {_FORM}")
        if keyword.arg in kwargs:
            raise InputError(f"{family}: argument {keyword.arg!r} is given twice")
        if keyword.arg in nested:
            kwargs[keyword.arg] = _nested(family, keyword.arg, keyword.value, spec)
        else:
            kwargs[keyword.arg] = _literal(family, keyword.arg, keyword.value)
    return family, kwargs


def _looks_nested(node: ast.expr) -> bool:
    """A nested family call (or list of them) as a combinator takes, e.g. cosine(lr=0.5)."""
    return isinstance(node, (ast.Call, ast.List))


def _nested(family: str, name: str, node: ast.expr, spec: str) -> Schedule | tuple[Schedule, ...]:
    """A combinator's schedule argument: one family call, or a list of them."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(_nested_one(family, name, element, spec) for element in node.elts)
    return _nested_one(family, name, node, spec)


def _nested_one(family: str, name: str, node: ast.expr, spec: str) -> Schedule:
    if not isinstance(node, (ast.Call, ast.Name)):
        raise InputError(
            f"{family}: {name}={ast.unparse(node)} is not a schedule; give a family call "
            "like cosine(lr=0.5)"
        )
    return _schedule(node, spec)


def _literal(family: str, name: str, node: ast.expr) -> Any:
    """The value of a literal node: number, bool, None, string, bare name or list of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, _LITERALS):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name):  # bare names read as strings: mode=exp, anneal_strategy=cos
        return node.id
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(_literal(family, name, element) for element in node.elts)
    raise InputError(
        f"{family}: {name}={ast.unparse(node)} is not a literal; give a number, True/False, "
        "a name or a quoted string (e.g. cooldown='1-sqrt'), or a list like [100, 200]"
    )
