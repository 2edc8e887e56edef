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
