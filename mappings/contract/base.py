"""The base of every contract model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ContractModel(BaseModel):
    """Base: unknown fields are an error; JSON types are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
