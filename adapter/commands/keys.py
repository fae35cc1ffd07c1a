"""`adapter keys`: make and check the clinic API's keys file (`ADAPTER_API_KEYS_FILE`).

adapter keys new --tenant T [--scope S ...] [--file PATH]   add a fresh random key
adapter keys check [--file PATH]                            check the file as startup does

The file is `--file`, else `ADAPTER_API_KEYS_FILE`, else `./api-keys.json`. `new` creates it
(readable by its owner only) or adds an entry to it, and prints the new key alone on
stdout, the only time it is shown (`KEY=$(adapter keys new --tenant clinic-a)`); what it
wrote goes to stderr. A file the service would refuse is refused here too (exit 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from adapter.api.auth.callers import (
    ENCOUNTERS_WRITE,
    KEYS_FILE_VARIABLE,
    PATIENTS_READ,
    SUBMISSIONS_READ,
)
from adapter.api.auth.keys_file import add_key, load_api_keys
from adapter.commands.exits import Exit

if TYPE_CHECKING:
    from adapter.commands import Subparsers

DEFAULT_FILE = "api-keys.json"
# What a clinic's software needs: send records, follow its submissions, read its patients.
DEFAULT_SCOPES = (ENCOUNTERS_WRITE, SUBMISSIONS_READ, PATIENTS_READ)


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "keys",
        help="make or check the clinic API's keys file",
        description=f"Make or check the clinic API's keys file: --file, else "
        f"{KEYS_FILE_VARIABLE}, else ./{DEFAULT_FILE}.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="add a fresh random key to the keys file (created if missing); print the key",
        description="Add an entry with a fresh random key (43 characters) to the keys file, "
        "creating it readable by its owner only; the key is printed alone on stdout.",
    )
    new.add_argument(
        "--tenant",
        required=True,
        help="the clinic the key's records belong to; * for an operator's key of every "
        "tenant (admin/ scopes only)",
    )
    new.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        metavar="SCOPE",
        help=f"a scope to grant, repeatable (default: {' '.join(DEFAULT_SCOPES)})",
    )
    new.add_argument("--file", type=Path, help="the keys file")
    check = actions.add_parser(
        "check",
        help="check the keys file as the service does at startup",
        description="Check the keys file as the service does at startup: exit 0 when it "
        "would be accepted, else one line naming the entry and exit 2.",
    )
    check.add_argument("--file", type=Path, help="the keys file")
    parser.set_defaults(handler=run)
    return parser


def keys_file(given: Path | None) -> Path:
    return given or Path(os.environ.get(KEYS_FILE_VARIABLE, "").strip() or DEFAULT_FILE)


def run(args: argparse.Namespace) -> int:
    path = keys_file(args.file)
    if args.action == "new":
        scopes = args.scopes or list(DEFAULT_SCOPES)
        key = add_key(path, args.tenant, scopes)
        sys.stdout.write(f"{key}\n")
        sys.stderr.write(
            f"keys: added a key for tenant {args.tenant} ({' '.join(scopes)}) to {path}\n"
        )
        return Exit.OK
    found = load_api_keys(str(path))
    sys.stderr.write(f"keys: {path}: {len(found)} keys, all usable\n")
    return Exit.OK
