"""The common base of every event's `data` model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class EventData(BaseModel):
    """Frozen `data` of an event; unknown fields are kept (forward compatibility)."""

    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        use_attribute_docstrings=True,
        hide_input_in_errors=True,
    )
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields as sent: absent optional fields stay absent, unknown ones kept."""
        return self.model_dump(mode="json", exclude_unset=True)
