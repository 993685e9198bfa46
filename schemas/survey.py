"""`data` of `survey.submitted`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, Strict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from schemas.base import EventData
from schemas.fields import Text
from schemas.values import Channel


class SurveySubmittedData(EventData):
    """A satisfaction survey answer about a ticket, call or visit (the event's subject)."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"scale": {"const": 3}}, "required": ["scale"]},
            "then": {"properties": {"score": {"maximum": 3}}},
        }
    )

    channel: Channel
    scale: Literal[3, 5] = 5
    """Points on the scale; 5 when left out."""
    score: Annotated[int, Strict(), Field(json_schema_extra={"minimum": 1, "maximum": 5})]
    """1..scale."""
    comment: Text | None = None

    @field_validator("score")
    @classmethod
    def _score_in_scale(cls, score: int, info: ValidationInfo) -> int:
        scale = info.data.get("scale", 5)
        if not 1 <= score <= scale:
            raise PydanticCustomError("score_range", "must be between 1 and {scale}", {"scale": scale})
        return score

    @property
    def satisfied(self) -> bool:
        """4 or 5 on the 5-point scale, 3 on the 3-point scale."""
        return self.score >= (3 if self.scale == 3 else 4)
