"""Errors raised by the mappings: a contract violation lists every bad field.

MappingError
 ├── ContractViolation   the input breaks the clinic contract; carries FieldErrors
 └── UnknownCode         a terminology table has no row for a key the code asked for
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, located by its path in the submitted JSON."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class MappingError(Exception):
    """Base of every error raised by the mappings package."""


class ContractViolation(MappingError):
    """The document breaks the clinic contract; `errors` names every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


class UnknownCode(MappingError):
    """A terminology table was asked for a key it does not hold."""

    def __init__(self, table: str, key: str) -> None:
        self.table = table
        self.key = key
        super().__init__(f"terminology table {table!r} has no entry {key!r}")
