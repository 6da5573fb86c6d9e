"""The ``intake`` command: the operator's interface (stable; tests and docs depend on it).

Secrets come from files (``--password-file``) or a prompt, never from argv. ``--json``
prints one JSON document on stdout. Every error is one line on stderr and a non-zero exit
(1 for a failed command, 2 for a usage error); no traceback is ever printed, because a
traceback can hold what it was processing.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import segno
import structlog
from sqlalchemy.exc import SQLAlchemyError
from telegram.error import TelegramError

from admin.app import run_admin

from .bootstrap import App, open_app
from .config import Settings, SettingsError, load_settings
from .crypto import (
    CryptoError,
    Secret,
    SignatureError,
    SignedOrgKey,
    SigningPublicKey,
    fingerprint,
    verify_org_key,
)
from .demo import demo_code, run_demo
from .hygiene import harden_process
from .logging import asyncio_exception_handler, configure_logging
from .questionnaire.loader import QuestionnaireError
from .services import ServiceError, accounts, auditing, installation, keyring, rotation
from .services import backup as backups
from .services.passwords import read_password_file
from .storage import keys as key_repo
from .storage import migrate
from .storage.models import OrgKeyState, Role
from .telegram.app import run_bot

STDIN = "-"
"""Where a secret-ish argument may say "read me from standard input"."""

Output = tuple[Any, str]
"""A command's result: the JSON document and the text for people."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: "--password" must not silently mean "--password-file".
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            # The arguments may be a secret typed where it does not belong: never echo them.
            message = "unrecognized arguments"
        self.exit(2, f"intake: usage error: {message} (see '{self.prog} --help')\n")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="intake",
        description="Secure intake of human rights reports. Settings come from INTAKE_* "
        "environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    init = commands.add_parser(
        "init",
        help="create a new installation: keys, pin file and the first admin",
        description="Create the data directory and database, the organisation signing key "
        "(pinned in a file outside the database) and the first organisation key, and the "
        "first admin, who is also the first key-holder and sets their own password.",
    )
    init.add_argument("--admin", metavar="NAME", help="the first admin's name (else prompted)")
    init.add_argument(
        "--password-file", type=Path, metavar="F", help="file holding the admin's password"
    )
    _add_json(init)

    _add_json(commands.add_parser("migrate", help="bring the database schema up to date"))

    demo = commands.add_parser(
        "demo",
        help="try everything locally: simulator with a chat page, demo data, the bot",
        description="Run the Bot API simulator with its chat page, a demo installation on "
        "SQLite and the bot, with no token and no internet, until Ctrl-C. Refuses to run "
        "when INTAKE_TELEGRAM_TOKEN is set.",
    )
    demo.add_argument(
        "--data-dir", type=Path, default=Path("demo-data"), help="demo directory (./demo-data)"
    )
    demo.add_argument("--port", type=int, default=8081, help="simulator port (8081)")
    demo.add_argument("--admin-port", type=int, default=8080, help="admin web port (8080)")
    demo.add_argument("--reset", action="store_true", help="delete the demo data and start over")
    demo.add_argument(
        "--code",
        action="store_true",
        help="print the demo admin's current second-factor code and exit",
    )
    _add_json(demo)

    admin = commands.add_parser(
        "admin",
        help="serve the staff web interface until interrupted",
        description="Serve the staff web interface on INTAKE_ADMIN_HOST:INTAKE_ADMIN_PORT "
        "(127.0.0.1:8080 by default). Put a TLS-terminating reverse proxy in front of it for "
        "anything but this machine.",
    )
    _add_json(admin)

    bot = commands.add_parser(
        "bot",
        help="run the Telegram bot (polling) until interrupted",
        description="Run the Telegram bot with INTAKE_TELEGRAM_TOKEN against "
        "INTAKE_TELEGRAM_API_URL until SIGINT or SIGTERM.",
    )
    _add_json(bot)

    keys = commands.add_parser("keys", help="organisation keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    _add_json(key_commands.add_parser("list", help="list org keys and the pinned signing key"))
    grant = key_commands.add_parser(
        "grant",
        help="give an enrolled key-holder the org keys you hold (and the signing key)",
        description="As the key-holder --user, seal every org key you hold and the signing "
        "key to NAME's key. Compare NAME's key fingerprint with them out of band (in person "
        "or on a call) and give it with --fingerprint: a mismatch is refused.",
    )
    grant.add_argument("name", help="the key-holder who receives the keys")
    grant.add_argument("--user", required=True, metavar="ME", help="you, a key-holder")
    grant.add_argument(
        "--password-file", type=Path, required=True, metavar="F", help="your password"
    )
    grant.add_argument(
        "--fingerprint", required=True, help="NAME's key fingerprint, as they read it to you"
    )
    _add_json(grant)
    _add_rotation_commands(key_commands)
    _add_backup_commands(key_commands)

    audit_parser = commands.add_parser("audit", help="the audit log")
    audit_commands = audit_parser.add_subparsers(
        dest="audit_command", required=True, parser_class=_Parser
    )
    verify = audit_commands.add_parser(
        "verify",
        help="check the hash chain (and an exported head: a cut-off tail)",
        description="Check every link of the audit log. With --head, also check that the "
        "log still holds that exported head and that it is signed by the pinned org key.",
    )
    verify.add_argument("--head", type=Path, metavar="F", help="an exported head file")
    _add_json(verify)
    export = audit_commands.add_parser(
        "export-head",
        help="sign the log's head as a key-holder, for safekeeping outside the server",
        description="Verify the log, then sign its head with the org signing key (as the "
        "key-holder given) and write it to --out. Keep it away from the server.",
    )
    export.add_argument("--user", required=True, metavar="NAME", help="a key-holder")
    export.add_argument(
        "--password-file", type=Path, required=True, metavar="F", help="their password"
    )
    export.add_argument("--out", type=Path, required=True, metavar="F", help="where to write it")
    _add_json(export)

    _add_user_commands(commands.add_parser("users", help="staff accounts"))
    return parser


def _add_rotation_commands(key_commands: Any) -> None:
    """``keys revoke``, ``rotate``, ``rewrap``, ``retire``: each run as a key-holder."""

    def as_keyholder(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--user", required=True, metavar="ME", help="you, a key-holder")
        parser.add_argument(
            "--password-file", type=Path, required=True, metavar="F", help="your password"
        )
        _add_json(parser)

    revoke = key_commands.add_parser(
        "revoke",
        help="take every key grant from a member (then rotate and re-wrap)",
        description="As the key-holder --user, delete every org-key and signing-key grant "
        "NAME holds. They may have kept copies of keys or of reports' data keys: follow with "
        "'intake keys rotate' and 'intake keys rewrap'.",
    )
    revoke.add_argument("name", help="the member whose grants go")
    as_keyholder(revoke)
    rotate = key_commands.add_parser(
        "rotate",
        help="create a new current org key for the old key's holders",
        description="As the key-holder --user (who must hold the signing key), create a new "
        "org key signed by the signing key, make it current (new reports are sealed to it), "
        "grant it to every holder of the old key and start a re-wrap job.",
    )
    as_keyholder(rotate)
    rewrap = key_commands.add_parser(
        "rewrap",
        help="seal every report's data key to the new org key (resumable)",
        description="As the key-holder --user (holding the old and the new key), seal each "
        "report's data key, drafts included, to the new org key, in small committed batches. "
        "Interrupted, run it again: it resumes. Data keys stay the same: whoever copied one "
        "can still read that report (full re-encryption is not available yet). Progress goes "
        "to standard error.",
    )
    as_keyholder(rewrap)
    rewrap.add_argument(
        "--batch",
        type=_positive,
        default=rotation.REWRAP_BATCH,
        metavar="N",
        help=f"advanced: reports per committed transaction (default {rotation.REWRAP_BATCH})",
    )
    retire = key_commands.add_parser(
        "retire",
        help="retire an old org key once no report depends on it",
        description="As the key-holder --user, delete every sealed copy and grant of the org "
        "key KEY and mark it retired, in one transaction. Refused for the current key and "
        "while any report still depends on KEY alone (run 'intake keys rewrap' first).",
    )
    retire.add_argument("key", metavar="KEY", help="the key's id (hex) or fingerprint")
    as_keyholder(retire)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _add_backup_commands(key_commands: Any) -> None:
    """``keys export-backup`` and ``keys import-backup``: keys in a passphrase-encrypted file."""
    export = key_commands.add_parser(
        "export-backup",
        help="write every key you hold to a passphrase-encrypted file, to keep offline",
        description="As the key-holder --user (who must hold the signing key), write the "
        "signing key and every org key you hold to a new file --out (mode 0600, never "
        "overwritten), encrypted under the passphrase in --passphrase-file (zxcvbn strength "
        "4 of 4, not your password). Keep the file offline in two places and the passphrase "
        "apart from it. The file keeps these keys for as long as it exists, even after they "
        "are retired.",
    )
    export.add_argument("--user", required=True, metavar="NAME", help="you, a key-holder")
    export.add_argument(
        "--password-file", type=Path, required=True, metavar="F", help="your password"
    )
    export.add_argument(
        "--passphrase-file", type=Path, required=True, metavar="F", help="the backup passphrase"
    )
    export.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the backup file to create"
    )
    _add_json(export)
    restore = key_commands.add_parser(
        "import-backup",
        help="grant yourself the keys in a backup file (recovery)",
        description="As the key-holder --user (for example newly enrolled after every "
        "key-holder lost their password), grant yourself every key in FILE that this "
        "installation still uses: the signing key and each org key that exists here, is not "
        "retired and verifies against the pin. A backup of another installation is refused.",
    )
    restore.add_argument("file", type=Path, metavar="FILE", help="the backup file")
    restore.add_argument("--user", required=True, metavar="NAME", help="you, a key-holder")
    restore.add_argument(
        "--password-file", type=Path, required=True, metavar="F", help="your password"
    )
    restore.add_argument(
        "--passphrase-file", type=Path, required=True, metavar="F", help="the backup passphrase"
    )
    _add_json(restore)


def _add_user_commands(users: argparse.ArgumentParser) -> None:
    user_commands = users.add_subparsers(dest="users_command", required=True, parser_class=_Parser)
    add = user_commands.add_parser(
        "add",
        help="invite a member: prints a one-time enrolment link",
        description="Create a pending account and print a one-time enrolment link and token. "
        "The member sets their own password with it; nobody else ever does.",
    )
    add.add_argument("name")
    add.add_argument(
        "--role",
        action="append",
        required=True,
        choices=[role.value for role in Role],
        help="admin, keyholder or reviewer; repeat for several",
    )
    _add_json(add)
    enrol = user_commands.add_parser(
        "enrol", help="set your own password with an enrolment token (key-holders get keys)"
    )
    enrol.add_argument("token", help="the enrolment token, or - to read it from standard input")
    enrol.add_argument(
        "--password-file", type=Path, required=True, metavar="F", help="file with your password"
    )
    _add_json(enrol)
    _add_json(user_commands.add_parser("list", help="list staff accounts"))
    disable = user_commands.add_parser(
        "disable", help="disable an account (it can no longer log in; its sessions end)"
    )
    disable.add_argument("name")
    _add_json(disable)
    reenrol = user_commands.add_parser(
        "reenrol",
        help="reset an account: new enrolment link; password, second factor, keys and grants go",
        description="Delete the member's password, second factor, key pair and grants and "
        "print a new one-time enrolment link. A re-enrolled key-holder needs new grants from "
        "a key-holder ('intake keys grant').",
    )
    reenrol.add_argument("name")
    _add_json(reenrol)


# --- commands -------------------------------------------------------------------------


def _prompt_password(label: str) -> Secret:
    if not sys.stdin.isatty():
        raise ServiceError(f"no terminal to ask for {label}: use --password-file")
    first = getpass.getpass(f"{label}: ")
    if first != getpass.getpass(f"{label} (again): "):
        raise ServiceError("the passwords differ")
    return Secret(first.encode("utf-8"))


async def _ensure_current(app: App) -> None:
    try:
        current = await migrate.current_revision(app.engine)
    except SQLAlchemyError:
        raise ServiceError("cannot open the database (is INTAKE_DATABASE_URL right?)") from None
    if current is None:
        raise ServiceError("the database is empty: run 'intake init' first")
    if current != migrate.head_revision():
        raise ServiceError("the database schema is out of date: run 'intake migrate'")


async def cmd_init(app: App, args: argparse.Namespace) -> Output:
    name = args.admin
    if name is None:
        if not sys.stdin.isatty():
            raise ServiceError("no terminal to ask for the admin's name: use --admin")
        name = await asyncio.to_thread(input, "First admin's name: ")
    if args.password_file is not None:
        password = read_password_file(args.password_file)
    else:
        password = await asyncio.to_thread(_prompt_password, "Admin password")
    done = await installation.initialise(app, name, password)
    warning = (
        f"{done.admin} is the only key-holder and no key backup exists: if this password is "
        "lost, every report is lost. Enrol a second key-holder ('intake users add NAME --role "
        "keyholder') and grant them the keys ('intake keys grant NAME ...'), and keep an "
        "offline key backup ('intake keys export-backup ...')."
    )
    doc = {
        "data_dir": str(app.settings.data_dir),
        "signing_key": {"fingerprint": done.signing_fingerprint, "pin": str(done.pin_path)},
        "org_key": {"id": done.org_key_id, "fingerprint": done.org_fingerprint},
        "admin": {
            "name": done.admin,
            "roles": [Role.ADMIN.value, Role.KEYHOLDER.value],
            "key_fingerprint": done.admin_key_fingerprint,
            "otpauth_uri": done.otpauth_uri,
        },
        "warnings": [warning],
    }
    text = "\n".join(
        [
            f"Initialised intake in {app.settings.data_dir}",
            f"Signing key:   {done.signing_fingerprint}",
            f"  pinned in    {done.pin_path} (keep it read-only; back it up)",
            f"Org key:       {done.org_fingerprint}  (id {done.org_key_id})",
            f"Admin:         {done.admin} (admin, keyholder)",
            f"  key:         {done.admin_key_fingerprint}",
            "Second factor: scan this with an authenticator app (or type the address below),",
            "then clear your terminal:",
            _qr(done.otpauth_uri),
            f"  {done.otpauth_uri}",
            f"WARNING: {warning}",
        ]
    )
    return doc, text


def _qr(text: str) -> str:
    """A QR code drawn with block characters, for the terminal (text output only)."""
    drawing = io.StringIO()
    segno.make(text, error="m").terminal(out=drawing, compact=True)
    return drawing.getvalue().rstrip("\n")


async def cmd_migrate(app: App, _: argparse.Namespace) -> Output:
    app.settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    before = await migrate.current_revision(app.engine)
    await migrate.upgrade(app.engine)
    after = await migrate.current_revision(app.engine)
    text = f"schema at {after}" + ("" if before == after else f" (was {before or 'empty'})")
    return {"from": before, "to": after}, text


def _signed_by(pinned: SigningPublicKey, key: SignedOrgKey) -> bool:
    try:
        verify_org_key(pinned, key)
    except SignatureError:
        return False
    return True


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT (Ctrl-C) or SIGTERM, for the long-running commands; the loop
    also logs stray task errors safely."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(asyncio_exception_handler)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def cmd_bot(app: App, _: argparse.Namespace) -> Output:
    await _ensure_current(app)
    stop = _stop_on_signals()
    await run_bot(app, stop)
    return {"stopped": True}, "bot stopped"


async def cmd_admin(app: App, _: argparse.Namespace) -> Output:
    await _ensure_current(app)
    keyring.read_pin(app.settings.signing_key_pin)
    stop = _stop_on_signals()
    ready = asyncio.Event()
    settings = app.settings

    async def announce() -> None:
        await ready.wait()
        print(f"admin listening on http://{settings.admin_host}:{settings.admin_port}", flush=True)

    announcer = asyncio.create_task(announce())
    try:
        await run_admin(app, stop, ready)
    finally:
        announcer.cancel()
    return {"stopped": True}, "admin stopped"


async def cmd_demo(app: App, args: argparse.Namespace) -> Output:
    stop = _stop_on_signals()

    def say(line: str) -> None:
        print(line, flush=True)

    if args.code:
        code = await demo_code(app.settings, args.data_dir)
        return {"code": code}, code
    await run_demo(
        app.settings,
        data_dir=args.data_dir,
        port=args.port,
        admin_port=args.admin_port,
        reset=args.reset,
        stop=stop,
        say=say,
    )
    return {"stopped": True}, "demo stopped"


async def cmd_keys_list(app: App, _: argparse.Namespace) -> Output:
    await _ensure_current(app)
    pinned = keyring.read_pin(app.settings.signing_key_pin)
    async with app.sessions() as session:
        infos = await key_repo.list_org_keys(session)
        current = await key_repo.current_key_id(session)
    rows = [
        {
            "id": info.key.key_id.hex(),
            "fingerprint": info.key.fingerprint,
            "state": info.state.value,
            "created": info.created_on.isoformat(),
            "retired": info.retired_on.isoformat() if info.retired_on else None,
            "reports": info.reports,
            "holders": list(info.holders),
            "signature_valid": _signed_by(pinned, info.key),
            "current": info.key.key_id == current,
        }
        for info in infos
    ]
    doc = {
        "signing_key": {"id": pinned.key_id.hex(), "fingerprint": pinned.fingerprint},
        "keys": rows,
    }
    lines = [
        f"Pinned signing key: {pinned.fingerprint}",
        "(* = current: new reports are sealed to it)",
    ]
    lines += [
        ("* " if info.key.key_id == current else "  ")
        + f"{info.key.key_id.hex()}  {info.key.fingerprint}  {info.state.value:<7}  "
        f"created {info.created_on}  reports {info.reports}  "
        f"holders {', '.join(info.holders) or '-'}"
        + ("" if _signed_by(pinned, info.key) else "  SIGNATURE INVALID: do not use")
        for info in infos
    ]
    return doc, "\n".join(lines)


async def cmd_keys_grant(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    done = await keyring.grant_keys(
        app, args.user, read_password_file(args.password_file), args.name, args.fingerprint
    )
    doc = {
        "grantee": done.grantee,
        "fingerprint": done.fingerprint,
        "org_keys": list(done.org_keys),
        "signing_key": done.signing_key,
    }
    granted = len(done.org_keys) + done.signing_key
    text = (
        f"granted {granted} key(s) to {done.grantee} ({done.fingerprint})"
        if granted
        else f"{done.grantee} already holds every key you hold"
    )
    return doc, text


REWRAP_ADVICE = (
    "Re-wrap keeps each report's data key: whoever copied data keys can still read those "
    "reports (full re-encryption is not available yet)."
)


async def cmd_keys_revoke(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    done = await rotation.revoke(app, args.user, read_password_file(args.password_file), args.name)
    warning = (
        f"{done.name} may have kept copies of the keys, or of reports' data keys, while they "
        "had access. Rotate to a new org key ('intake keys rotate') and then re-wrap "
        f"('intake keys rewrap'). {REWRAP_ADVICE}"
    )
    doc = {
        "name": done.name,
        "org_grants": done.org_grants,
        "signing_grant": done.signing_grant,
        "warnings": [warning],
    }
    removed = f"{done.org_grants} org key grant(s)" + (
        " and the signing key grant" if done.signing_grant else ""
    )
    return doc, f"Revoked {done.name}: removed {removed}.\nWARNING: {warning}"


async def cmd_keys_rotate(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    done = await rotation.rotate(app, args.user, read_password_file(args.password_file))
    doc = {
        "id": done.key_id.hex(),
        "fingerprint": done.fingerprint,
        "previous": {"id": done.previous.hex(), "fingerprint": fingerprint(done.previous)},
        "granted_to": list(done.granted_to),
        "to_rewrap": done.to_rewrap,
    }
    lines = [
        f"New org key:   {done.fingerprint}  (id {done.key_id.hex()})",
        "  it is current: new reports are sealed to it",
        f"  granted to   {', '.join(done.granted_to)}",
        f"Previous key:  {fingerprint(done.previous)}  (id {done.previous.hex()})",
        f"{done.to_rewrap} report(s) wait for re-wrap: run 'intake keys rewrap', then "
        f"'intake keys retire {done.previous.hex()}'.",
    ]
    return doc, "\n".join(lines)


class _ProgressBar:
    """Re-wrap progress on stderr: a bar redrawn in place on a terminal; otherwise one
    line per batch, or nothing with --json (stdout carries the result either way)."""

    WIDTH = 30

    def __init__(self, quiet: bool) -> None:
        self.tty = sys.stderr.isatty()
        self.quiet = quiet and not self.tty
        self.drawn = False
        self.last: tuple[int, int] | None = None

    def __call__(self, done: int, left: int) -> None:
        if self.quiet or self.last == (done, left):
            return
        self.last = (done, left)
        total = done + left
        share = done / total if total else 1.0
        if self.tty:
            filled = round(share * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            sys.stderr.write(f"\rre-wrap [{bar}] {done}/{total} {share:4.0%}")
            self.drawn = True
        else:
            sys.stderr.write(f"re-wrap: {done}/{total} reports\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False


async def _retirable(app: App) -> list[bytes]:
    """Live org keys that are not current and that no report depends on any more."""
    async with app.sessions() as session:
        current = await key_repo.current_key_id(session)
        return [
            info.key.key_id
            for info in await key_repo.list_org_keys(session)
            if info.state is OrgKeyState.ACTIVE
            and info.key.key_id != current
            and await key_repo.depending_only_on(session, info.key.key_id) == 0
        ]


async def cmd_keys_rewrap(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    bar = _ProgressBar(quiet=args.json)
    try:
        done = await rotation.rewrap(
            app,
            args.user,
            read_password_file(args.password_file),
            progress=bar,
            batch=args.batch,
        )
    finally:
        bar.end()
    retirable = await _retirable(app)
    doc = {
        "moved": done.moved,
        "jobs": done.jobs,
        "left": done.left,
        "retirable": [{"id": k.hex(), "fingerprint": fingerprint(k)} for k in retirable],
    }
    if done.jobs == 0:
        text = "nothing to re-wrap: no re-wrap job is open"
    else:
        text = f"re-wrapped {done.moved} report(s) in {done.jobs} job(s); {done.left} left" + (
            "" if done.left else "; done"
        )
    text += "".join(
        f"\nno report depends on key {fingerprint(k)} any more: "
        f"'intake keys retire {k.hex()}' retires it"
        for k in retirable
    )
    return doc, text


async def cmd_keys_retire(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    done = await rotation.retire(app, args.user, read_password_file(args.password_file), args.key)
    doc = {
        "id": done.key_id.hex(),
        "fingerprint": done.fingerprint,
        "state": OrgKeyState.RETIRED.value,
        "sealed_copies_removed": done.sealed_copies_removed,
    }
    text = (
        f"Retired key {done.fingerprint}: {done.sealed_copies_removed} sealed data key "
        "copies and every grant of it are deleted. Key backups made earlier still hold it."
    )
    return doc, text


BACKUP_WARNING = (
    "Store this file offline, in two places, and its passphrase apart from it. Whoever has "
    "both can read every report these keys open, and the file keeps the keys even after "
    "they are retired: destroy old backups after retiring a key that leaked."
)

MAX_BACKUP_BYTES = 1024 * 1024
"""Far above any real backup (a few hundred bytes per key): a larger file is not one."""


def _create_private(path: Path) -> int:
    """A new file only its owner can read; never an existing one (or a symlink)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ServiceError(f"{path} exists: refusing to overwrite it") from None
    except OSError as exc:
        raise ServiceError(f"cannot create {path} ({exc.strerror})") from None
    os.fchmod(fd, 0o600)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


async def cmd_keys_export_backup(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    password = read_password_file(args.password_file)
    passphrase = read_password_file(args.passphrase_file)
    fd = _create_private(args.out)
    try:
        done = await backups.export_backup(app, args.user, password, passphrase)
        await asyncio.to_thread(_write_all, fd, done.blob)
    except BaseException as exc:
        os.close(fd)
        args.out.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ServiceError(f"cannot write {args.out} ({exc.strerror})") from None
        raise
    os.close(fd)
    doc = {
        "file": str(args.out),
        "created": done.created.isoformat(),
        "signing_key": {"fingerprint": done.signing_fingerprint},
        "org_keys": [
            {"id": k.key_id, "fingerprint": k.fingerprint, "state": k.state} for k in done.org_keys
        ],
        "warnings": [BACKUP_WARNING],
    }
    lines = [
        f"Key backup written to {args.out} (readable by you only). It holds:",
        f"  signing key  {done.signing_fingerprint}",
        *(f"  org key      {k.fingerprint}  ({k.state}, id {k.key_id})" for k in done.org_keys),
        f"WARNING: {BACKUP_WARNING}",
    ]
    return doc, "\n".join(lines)


def _read_backup(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            blob = file.read(MAX_BACKUP_BYTES + 1)
    except FileNotFoundError:
        raise ServiceError(f"backup file {path} does not exist") from None
    except OSError as exc:
        raise ServiceError(f"cannot read backup file {path} ({exc.strerror})") from None
    if len(blob) > MAX_BACKUP_BYTES:
        raise ServiceError(f"{path} is not an intake key backup (far too large)")
    return blob


async def cmd_keys_import_backup(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    password = read_password_file(args.password_file)
    passphrase = read_password_file(args.passphrase_file)
    blob = await asyncio.to_thread(_read_backup, args.file)
    done = await backups.import_backup(app, args.user, password, blob, passphrase)
    doc = {
        "name": done.name,
        "org_keys": list(done.org_keys),
        "signing_key": done.signing_key,
        "skipped": [{"id": s.key_id, "reason": s.reason} for s in done.skipped],
    }
    granted = [f"org key {fingerprint(bytes.fromhex(k))} (id {k})" for k in done.org_keys]
    if done.signing_key:
        granted.append("the signing key")
    lines = [
        f"Granted {done.name}: " + ", ".join(granted)
        if granted
        else f"{done.name} already holds every usable key in the backup"
    ]
    lines += [f"  skipped {s.key_id}: {s.reason}" for s in done.skipped]
    return doc, "\n".join(lines)


async def cmd_audit_verify(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    exported = None
    if args.head is not None:
        try:
            text = await asyncio.to_thread(args.head.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ServiceError(f"cannot read {args.head}") from None
        exported = auditing.SignedHead.from_json(text)
    head = await auditing.verify_log(app, exported)
    doc = {"ok": True, "seq": head.seq, "hash": head.hash.hex(), "checked_head": bool(exported)}
    text = f"audit log verifies: {head.seq} entries, head {head.hash.hex()[:16]}…"
    if exported is not None:
        text += f"; it still holds the exported head at entry {exported.seq}"
    return doc, text


async def cmd_audit_export(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    signed = await auditing.export_head(app, args.user, read_password_file(args.password_file))
    await asyncio.to_thread(args.out.write_text, signed.to_json() + "\n", encoding="utf-8")
    doc = {"seq": signed.seq, "hash": signed.hash.hex(), "file": str(args.out)}
    return doc, f"signed head of entry {signed.seq} written to {args.out}; keep it off the server"


async def cmd_users_add(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    invite = await accounts.add_member(app, args.name, [Role(r) for r in args.role])
    roles = sorted(r.value for r in invite.roles)
    doc = {
        "name": invite.name,
        "roles": roles,
        "link": invite.link,
        "token": invite.token,
        "expires": invite.expires_at.isoformat(timespec="seconds"),
    }
    text = "\n".join(
        [
            f"Invited {invite.name} ({', '.join(roles)}). Give them this one-time link over a",
            f"channel you trust; it works once and expires {invite.expires_at:%Y-%m-%d %H:%M} UTC:",
            f"  {invite.link}",
            f"Token (for 'intake users enrol'): {invite.token}",
        ]
    )
    return doc, text


async def cmd_users_enrol(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    token = args.token
    if token == STDIN:
        token = sys.stdin.readline().strip()
    done = await accounts.enrol(app, token, read_password_file(args.password_file))
    roles = sorted(r.value for r in done.roles)
    doc = {
        "name": done.name,
        "roles": roles,
        "otpauth_uri": done.otpauth_uri,
        "key_fingerprint": done.key_fingerprint,
    }
    lines = [f"Enrolled {done.name} ({', '.join(roles)})."]
    if done.key_fingerprint:
        lines.append(
            f"Your key fingerprint: {done.key_fingerprint} (read it to whoever grants you keys)"
        )
    lines += [
        "Second factor: scan this with an authenticator app (or type the address below),",
        "then clear your terminal:",
        _qr(done.otpauth_uri),
        f"  {done.otpauth_uri}",
        "Recovery codes: each logs you in once instead of the app. Write them on paper,",
        "keep them away from your phone; they are not shown again:",
        *(f"  {code}" for code in done.recovery_codes),
    ]
    doc["recovery_codes"] = list(done.recovery_codes)
    return doc, "\n".join(lines)


async def cmd_users_disable(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    member = await accounts.disable(app, args.name, actor="console")
    return {"name": member.name, "state": "disabled"}, (
        f"Disabled {member.name}: they can no longer log in, and their sessions end."
    )


async def cmd_users_reenrol(app: App, args: argparse.Namespace) -> Output:
    await _ensure_current(app)
    invite = await accounts.reenrol(app, args.name, actor="console")
    doc = {
        "name": invite.name,
        "link": invite.link,
        "token": invite.token,
        "expires": invite.expires_at.isoformat(timespec="seconds"),
    }
    text = "\n".join(
        [
            f"Reset {invite.name}: their password, second factor, key pair and grants are gone.",
            "A key-holder must grant them the keys again after they enrol. One-time link",
            f"(expires {invite.expires_at:%Y-%m-%d %H:%M} UTC):",
            f"  {invite.link}",
            f"Token (for 'intake users enrol'): {invite.token}",
        ]
    )
    return doc, text


async def cmd_users_list(app: App, _: argparse.Namespace) -> Output:
    await _ensure_current(app)
    members = await accounts.list_members(app)
    rows = [
        {
            "name": m.name,
            "roles": sorted(r.value for r in m.roles),
            "state": m.state.value,
            "created": m.created_on.isoformat(),
            "key_fingerprint": accounts.key_fingerprint(m),
        }
        for m in members
    ]
    text = "\n".join(
        f"{m.name:<20} {m.state.value:<8} {','.join(sorted(r.value for r in m.roles)):<24} "
        f"{accounts.key_fingerprint(m) or '-'}"
        for m in members
    )
    return rows, text or "no staff accounts"


Command = Callable[[App, argparse.Namespace], Awaitable[Output]]

_COMMANDS: dict[tuple[str, str | None], Command] = {
    ("init", None): cmd_init,
    ("migrate", None): cmd_migrate,
    ("admin", None): cmd_admin,
    ("bot", None): cmd_bot,
    ("demo", None): cmd_demo,
    ("keys", "list"): cmd_keys_list,
    ("keys", "grant"): cmd_keys_grant,
    ("keys", "revoke"): cmd_keys_revoke,
    ("keys", "rotate"): cmd_keys_rotate,
    ("keys", "rewrap"): cmd_keys_rewrap,
    ("keys", "retire"): cmd_keys_retire,
    ("keys", "export-backup"): cmd_keys_export_backup,
    ("keys", "import-backup"): cmd_keys_import_backup,
    ("audit", "verify"): cmd_audit_verify,
    ("audit", "export-head"): cmd_audit_export,
    ("users", "add"): cmd_users_add,
    ("users", "enrol"): cmd_users_enrol,
    ("users", "list"): cmd_users_list,
    ("users", "disable"): cmd_users_disable,
    ("users", "reenrol"): cmd_users_reenrol,
}


async def _run(settings: Settings, command: Command, args: argparse.Namespace) -> Output:
    async with open_app(settings) as app:
        return await command(app, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``intake`` console script."""
    harden_process()
    # A terminal that cannot show a name must not turn a finished command into a crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    sub = getattr(args, f"{args.command}_command", None)
    command = _COMMANDS[(args.command, sub)]
    try:
        settings = load_settings()
        configure_logging(settings.log_format.value, settings.log_level)
        doc, text = asyncio.run(_run(settings, command, args))
    except (ServiceError, SettingsError, QuestionnaireError) as exc:
        return _fail(str(exc))
    except CryptoError as exc:
        return _fail(f"{exc} (the keys or the database may have been tampered with)")
    except TelegramError as exc:
        return _fail(
            f"the Bot API failed ({type(exc).__name__}): "
            "check INTAKE_TELEGRAM_API_URL and the token"
        )
    except SQLAlchemyError as exc:
        return _fail(f"database error ({type(exc).__name__}); is the database reachable?")
    except OSError as exc:
        # strerror is the system's text ("Connection refused"), never our data.
        return _fail(f"{exc.strerror or type(exc).__name__} (is the database reachable?)")
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as exc:  # noqa: BLE001  # the last line of defence: one line, no traceback
        # Frames only (the safe renderer withholds messages), and only at DEBUG.
        structlog.get_logger("intake.cli").debug("internal error", exc_info=exc)
        return _fail(f"internal error ({type(exc).__name__}); details withheld")
    try:
        print(json.dumps(doc, ensure_ascii=False, indent=2) if args.json else text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. "| head"): say nothing more, write nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def _fail(message: str) -> int:
    print(f"intake: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
