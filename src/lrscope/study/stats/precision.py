"""Numbers printed at the precision their interval supports.

An interval's half-width is shown with 2 significant digits and the value it surrounds is
rounded to the same decimal place: ``0.1079 ± 0.0166`` prints as ``0.108 ± 0.017``, so no
digit is shown that the seeds cannot vouch for.
"""

from __future__ import annotations

import math

RELATIVE_ZERO = 1e-9  # a half-width this small against its value is rounding noise: width 0


def decimal_places(half_width: float, value: float = 0.0) -> int | None:
    """Decimal places that leave 2 significant digits of ``half_width`` (negative: tens...);
    None for a width of 0 (or one below a billionth of ``value``, rounding noise).

    >>> decimal_places(0.0166), decimal_places(0.0996), decimal_places(2.48), decimal_places(166)
    (3, 2, 1, -1)
    >>> decimal_places(4e-17, value=0.1) is None
    True
    """
    if not (math.isfinite(half_width) and half_width > RELATIVE_ZERO * abs(value)):
        return None
    return 1 - int(f"{half_width:.1e}".split("e")[1])  # exponent after rounding to 2 digits


def fixed(value: float, places: int, sign: bool = False) -> str:
    """``value`` rounded to ``places`` decimals (negative: to tens, hundreds...), no ``-0``.

    >>> fixed(0.1079, 3), fixed(1234.0, -1), fixed(-0.0004, 2), fixed(0.05, 2, sign=True)
    ('0.108', '1230', '0.00', '+0.05')
    """
    plus = "+" if sign else ""
    if places >= 0:
        text = f"{value:{plus}.{places}f}"
    else:
        step = 10 ** -places
        text = f"{round(value / step) * step:{plus}d}"
    if float(text) == 0:
        text = ("+" if sign else "") + text.lstrip("+-")
    return text


def interval_text(mean: float, half_width: float, digits: int = 4) -> str:
    """``mean ± half_width`` at the precision the interval supports.

    >>> interval_text(0.1079, 0.0166), interval_text(2.3026, 0.0), interval_text(1234.5, 166)
    ('0.108 ± 0.017', '2.303 (all seeds equal)', '1230 ± 170')
    """
    places = decimal_places(half_width, mean)
    if places is None:  # no spread at all: "± 0" reads as a rounding slip (issue 19 item 15)
        return f"{mean:.{digits}g} (all seeds equal)"
    return f"{fixed(mean, places)} ± {fixed(half_width, places)}"
