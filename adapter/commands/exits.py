"""The `adapter` command's exit statuses, and the one line each kind of failure prints.

Every subcommand ends with one of `Exit`'s statuses; the table is printed by
`adapter --help` (its epilog, from `EXIT_MEANINGS`) and documented in docs/operations.md
(a test keeps the two equal). `failure_line(exc)` turns an error that ends a command into
its status and one line for stderr, naming what to look at (a variable, a file entry, an
option) and what to do: never a traceback, and never a message that could hold clinical
data (a database error is named by its class and the driver's first line at connect time
only, since later ones may quote a statement's parameters).
"""

from __future__ import annotations

import textwrap
from enum import IntEnum

from adapter.errors import (
    ConfigError,
    EhrAuthFailed,
    EhrBadResponse,
    EhrError,
    EhrTimeout,
    EhrUnavailable,
    StoreCopyRefused,
    StoreUnavailable,
)
from adapter.store.engine import StoreError


class Exit(IntEnum):
    OK = 0
    PROBLEMS = 1
    REFUSED = 2
    EHR_FAILED = 3
    STORE_FAILED = 4
    BUSY = 5
    INTERNAL_ERROR = 70
    INTERRUPTED = 130


EXIT_MEANINGS: dict[Exit, str] = {
    Exit.OK: "done; nothing needs attention",
    Exit.PROBLEMS: (
        "done, with something to act on: an invalid input file, a difference (reconcile), "
        "a dead letter or conflict (push, pull), a failed pull channel, no entry by that id"
    ),
    Exit.REFUSED: (
        "refused before doing anything: a bad option, an ADAPTER_* variable, the API keys "
        "file, or a store copy's source or target (the line names which)"
    ),
    Exit.EHR_FAILED: (
        "the EHR (ADAPTER_EHR_BASE_URL) could not be used: unreachable, too slow, refused "
        "our credentials, or answered something that is not FHIR"
    ),
    Exit.STORE_FAILED: "the database (ADAPTER_DATABASE_URL) could not be reached or used",
    Exit.BUSY: "another run holds the work (a pull's lease); nothing was done",
    Exit.INTERNAL_ERROR: "a bug in the adapter: the line names the error's class; report it",
    Exit.INTERRUPTED: "interrupted (Ctrl-C); what was committed stays, a rerun resumes",
}


def epilog() -> str:
    """The exit statuses as `adapter --help` prints them."""
    rows = [
        textwrap.fill(
            meaning, 79, initial_indent=f"  {int(status):>3}  ", subsequent_indent=" " * 7
        )
        for status, meaning in EXIT_MEANINGS.items()
    ]
    return "exit statuses:\n" + "\n".join(rows) + "\n\nMore in docs/operations.md."


def failure_line(exc: BaseException) -> tuple[Exit, str]:
    """The exit status and the one line to print for an error that ended a command."""
    if isinstance(exc, KeyboardInterrupt):
        return Exit.INTERRUPTED, "interrupted; what was already committed is kept"
    if isinstance(exc, ConfigError):
        return Exit.REFUSED, f"configuration refused: {exc}"
    if isinstance(exc, StoreCopyRefused):
        return Exit.REFUSED, f"copy refused: {exc}"
    if isinstance(exc, EhrError):
        return Exit.EHR_FAILED, _ehr_line(exc)
    if isinstance(exc, StoreUnavailable):
        return Exit.STORE_FAILED, f"{exc}"
    if isinstance(exc, StoreError):
        return Exit.STORE_FAILED, (
            f"the database failed ({type(exc).__name__}); check that ADAPTER_DATABASE_URL's "
            "server is up and reachable, then run the command again"
        )
    return Exit.INTERNAL_ERROR, (
        f"internal error ({type(exc).__name__}); nothing more is printed, since its message "
        "could quote clinical data: please report it with the command you ran"
    )


# What to do about each kind of EHR failure, beside the error's own message.
_EHR_ADVICE: tuple[tuple[type[EhrError], str], ...] = (
    (EhrUnavailable, "is it running, and is ADAPTER_EHR_BASE_URL its address?"),
    (EhrTimeout, "is it overloaded? ADAPTER_EHR_TIMEOUT_SECONDS sets how long we wait"),
    (EhrAuthFailed, "check the ADAPTER_EHR_AUTH_* settings and the credentials they name"),
    (
        EhrBadResponse,
        "is ADAPTER_EHR_BASE_URL the FHIR base URL (where /metadata answers), e.g. "
        "http://host:8080/fhir?",
    ),
)


def _ehr_line(exc: EhrError) -> str:
    advice = next((text for kind, text in _EHR_ADVICE if isinstance(exc, kind)), "")
    line = f"the EHR (ADAPTER_EHR_BASE_URL) failed: {exc} [{exc.code}]"
    return f"{line}; {advice}" if advice else line
