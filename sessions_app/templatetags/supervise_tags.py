"""Small display helpers for the supervisor pages."""

from __future__ import annotations

import zlib

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """A gap or an age, as a person says it: "42 s", "5 min 3 s", "2 h 10 min", "3 d 4 h"."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# supervise.css defines one class per hue step (.hue-0 ... .hue-23, 15 degrees apart): the
# Content-Security-Policy allows no inline style attribute to carry the colour itself.
HUE_STEPS = 24


@register.filter
def hue(name: str) -> int:
    """A stable colour step per agent name, so agents are easy to tell apart."""
    return zlib.crc32(name.encode()) % HUE_STEPS
