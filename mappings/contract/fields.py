"""The contract's field types: ids, text, date-times, codes, instrument answers.

Each type is an `Annotated` pydantic type that enforces one rule of the contract on one
field and says what is wrong in the clinic developer's words (see `translate.py`).
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from types import ModuleType
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
)

from mappings.contract.translate import DATE_TIME_EXAMPLE, OFFSET_MESSAGE, contract_error

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
ICD10_PATTERN = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"
_AWARE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise contract_error(("", "must not be empty or only spaces"))
    return value


def _date_time_shape(value: object) -> object:
    """Only an RFC 3339 string with an offset (or an aware datetime) is a date-time."""
    if isinstance(value, datetime) or (isinstance(value, str) and _AWARE.fullmatch(value)):
        return value
    if value is None:
        raise contract_error(("", "must not be null"))
    if isinstance(value, str) and _NAIVE.fullmatch(value):
        raise contract_error(("", OFFSET_MESSAGE))
    raise contract_error(("", f"must be a date-time string like {DATE_TIME_EXAMPLE}"))


def _date_shape(value: object) -> object:
    is_date = isinstance(value, date) and not isinstance(value, datetime)
    if is_date or (isinstance(value, str) and _DATE.fullmatch(value)):
        return value
    if value is None:
        raise contract_error(("", "must not be null"))
    raise contract_error(("", "must be a date YYYY-MM-DD, e.g. 1984-03-02"))


def _not_in_future(value: date, info: ValidationInfo) -> date:
    """Needs `today` in the validation context; without it (no clock here) it is skipped."""
    today = info.context.get("today") if isinstance(info.context, dict) else None
    if isinstance(today, date) and value > today:
        raise contract_error(("", f"birth date {value} is in the future (today is {today})"))
    return value


@cache
def _icd10cm() -> ModuleType:
    """The ICD-10-CM tables (`simple-icd-10-cm`, the CMS release), loaded on first use: the
    package parses its tables at import (about a second) and warns about a deprecated
    importlib call it makes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module("simple_icd_10_cm")


def icd10cm_problem(code: str) -> str | None:
    """Why `code` is not a billable ICD-10-CM code, or None when it is one."""
    tables = _icd10cm()
    if not tables.is_valid_item(code):
        return f"{code} is not an ICD-10-CM code"
    if not tables.is_leaf(code):
        return f"{code} is an ICD-10-CM category, not a billable code: send one of its subcodes"
    return None


def _icd10cm_check(value: str) -> str:
    problem = icd10cm_problem(value)
    if problem is not None:
        raise contract_error(("", problem))
    return value


def npi_is_valid(npi: str) -> bool:
    """The NPI check digit: Luhn over the 80840 prefix and the first nine digits."""
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        digit = int(ch)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _npi_check(value: str) -> str:
    if not npi_is_valid(value):
        raise contract_error(("", f"NPI {value} fails the check digit"))
    return value


def exact_items(instrument: str, count: int) -> Callable[[list[int]], list[int]]:
    def check(answers: list[int]) -> list[int]:
        if len(answers) != count:
            message = f"{instrument} needs exactly {count} answers, got {len(answers)}"
            raise contract_error(("", message))
        return answers

    return check


ClinicId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Text = Annotated[
    str, StringConstraints(min_length=1, max_length=10_000), AfterValidator(_not_blank)
]
DateTime = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_date_time_shape)]
BirthDate = Annotated[
    date, Field(strict=False), BeforeValidator(_date_shape), AfterValidator(_not_in_future)
]
Npi = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$"), AfterValidator(_npi_check)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Icd10 = Annotated[str, StringConstraints(pattern=ICD10_PATTERN), AfterValidator(_icd10cm_check)]
ValidDate = Annotated[date, Field(strict=False), BeforeValidator(_date_shape)]
RxNorm = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Item03 = Annotated[int, Field(ge=0, le=3, strict=True)]
Item04 = Annotated[int, Field(ge=0, le=4, strict=True)]
Phq9 = Annotated[list[Item03], AfterValidator(exact_items("PHQ-9", 9))]
Gad7 = Annotated[list[Item03], AfterValidator(exact_items("GAD-7", 7))]
Pcl5 = Annotated[list[Item04], AfterValidator(exact_items("PCL-5", 20))]
