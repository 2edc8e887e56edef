"""Text the frontend rewrites as it queues: dynamic prompts and `%Node.widget%` file names."""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .ui_widgets import UNDEFINED, Widget, js_str

# JavaScript's `.` stops at these line ends; Python's only at \n.
_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//[^\n\r\u2028\u2029]*")
_PATTERN = re.compile(r"%([^%]+)%")
_DATE_PART = re.compile(r"dd?|MM?|hh?|mm?|ss?|yyy?y?")
_UNSAFE = re.compile(r'[/?<>\\:*|"\x00-\x1f\x7f]')


def dynamic_prompt(text: str, rng: random.Random) -> str:
    """`{a|b}` picks one option at random; // and /* */ comments go (as the frontend does)."""
    text = _COMMENTS.sub("", text)
    out: list[str] = []
    pos = 0

    def escaped() -> str:
        nonlocal pos
        char = text[pos] if pos < len(text) else "undefined"  # what JS reads past the end
        pos += 1
        return "\\" + char

    def choice_block() -> str:
        nonlocal pos
        options: list[str] = []
        choice = ""
        depth = 0
        while pos < len(text):
            char = text[pos]
            pos += 1
            if char == "\\":
                choice += escaped()
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(choice)
                choice = ""
                continue
            choice += char
        options.append(choice)
        return dynamic_prompt(options[rng.randrange(len(options))], rng)

    while pos < len(text):
        char = text[pos]
        pos += 1
        if char == "\\":
            out.append(escaped())
        elif char == "{":
            out.append(choice_block())
        else:
            out.append(char)
    return re.sub(r"\\([{}|])", r"\1", "".join(out))


class NamedNode(Protocol):
    title: str
    properties: dict[str, Any]
    widgets: list[Widget] | None


def text_replacements(
    value: str,
    nodes: Iterable[NamedNode],
    now: Callable[[], datetime.datetime] = datetime.datetime.now,
) -> str:
    """`%date:yyyy-MM-dd%` and `%Node.widget%` (node by its S&R name, else its title)."""
    listed = list(nodes)

    def one(match: re.Match[str]) -> str:
        text = match.group(1)
        parts = text.split(".")
        if len(parts) != 2:
            return format_date(parts[0][5:], now()) if parts[0].startswith("date:") else match[0]
        found = [n for n in listed if n.properties.get("Node name for S&R") == parts[0]]
        found = found or [n for n in listed if n.title == parts[0]]
        widgets = found[0].widgets or [] if found else []
        widget = next((w for w in widgets if w.name == parts[1]), None)
        if widget is None:
            return match[0]
        value = widget.get()
        return _UNSAFE.sub("_", js_str("" if value is None or value is UNDEFINED else value))

    return _PATTERN.sub(one, value)


def format_date(pattern: str, when: datetime.datetime) -> str:
    parts = {"d": when.day, "M": when.month, "h": when.hour, "m": when.minute, "s": when.second}

    def one(match: re.Match[str]) -> str:
        text = match[0]
        if text == "yy":
            return str(when.year)[2:]
        if text == "yyyy":
            return str(when.year)
        if text[0] in parts:
            return str(parts[text[0]]).rjust(len(text), "0")
        return text

    return _DATE_PART.sub(one, pattern)
