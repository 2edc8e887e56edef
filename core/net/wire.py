"""The base of every hosted service's wire models: tolerant of what servers add or leave out."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Wire(BaseModel):
    """Wire data: unknown fields ignored, nulls where strings are expected tolerated."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _none_to_default(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        if value is None and field is not None and field.annotation is str:
            return ""
        return value


def shape(data: Any, depth: int = 2) -> str:
    """What an answer holds, by key and type, never by value (values may be secret): for an
    error saying what came back instead of what was expected."""
    if isinstance(data, dict):
        if not data:
            return "{}"
        if depth <= 0:
            return "{…}"
        parts = [f"{key}: {shape(value, depth - 1)}" for key, value in list(data.items())[:12]]
        more = ", …" if len(data) > 12 else ""
        return "{" + ", ".join(parts) + more + "}"
    if isinstance(data, list):
        more = ", …" if len(data) > 1 else ""
        return f"[{shape(data[0], depth)}{more}]" if data else "[]"
    return "null" if data is None else type(data).__name__
