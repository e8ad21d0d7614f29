"""``paperboy user``: the operator's account commands (add, list, set-role, set-password, suspend,
delete). They call the same ``services.accounts`` functions as the web pages, so the same name,
password and email rules hold, and every role change, suspension and deletion is in the audit log
(actor: operator). ``paperboy account``: a whole account as one JSON file, exported here and
imported into another paperboy (``services.portability``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import Context, PaperboyError, emit, errors_to_exit, json_option
from .services import accounts as acc
from .settings import secret_key


def _accounts(engine: object) -> acc.Accounts:
    return acc.Accounts(engine.store, engine.settings, secret_key(engine.settings))  # type: ignore[attr-defined]


def _password(from_stdin: bool) -> str:
    """The first line of stdin (``--password-stdin``, or stdin is not a terminal), else a prompt."""
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("user")
def user_group() -> None:
    """Accounts: add, list, set-role, set-password, suspend, delete."""


@user_group.command("add")
@click.argument("name")
@click.option("--email", help="Email address (unconfirmed until its owner follows a mailed link).")
@click.option("--role", type=click.Choice(acc.ROLES), default="member", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_obj
def user_add(obj: Context, name: str, email: str | None, role: str, password_stdin: bool) -> None:
    """Create an account (the password is prompted for, or read from stdin)."""
    with errors_to_exit(), obj.engine() as engine:
        user_id = _accounts(engine).add_user(name, _password(password_stdin), email, role)
        engine.store.audit(None, "add", "user", user_id, role)
    click.echo(f"user {name} added ({role}, id {user_id})")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def user_list(obj: Context, as_json: bool) -> None:
    """Every account: name, role, email and whether it is confirmed, suspension, comments."""
    with errors_to_exit(), obj.engine() as engine:
        users = [{k: u[k] for k in ("id", "name", "role", "email", "email_verified_at", "suspended_at",
                                     "created_at", "comments")} for u in engine.store.list_users()]

    def text() -> str:
        rows = [f"{'id':>5}  {'name':24} {'role':10} {'email':32} {'state'}"]
        for u in users:
            state = "suspended" if u["suspended_at"] else ("confirmed" if u["email_verified_at"] else "")
            rows.append(f"{u['id']:>5}  {u['name']:24} {u['role']:10} {(u['email'] or '-'):32} {state}")
        return "\n".join(rows)

    emit(users, as_json, text)


@user_group.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(acc.ROLES))
@click.pass_obj
def user_set_role(obj: Context, name: str, role: str) -> None:
    """Make NAME a member, moderator or admin."""
    with errors_to_exit(), obj.engine() as engine:
        before = _accounts(engine).set_role(name, role)
    click.echo(f"user {before['name']}: {before['role']} -> {role}")


@user_group.command("set-password")
@click.argument("name")
@click.pass_obj
def user_set_password(obj: Context, name: str) -> None:
    """Set NAME's password (prompted, or the first line of stdin); every session of NAME ends."""
    with errors_to_exit(), obj.engine() as engine:
        accounts = _accounts(engine)
        user = accounts.get(name)
        password_hash = acc.new_password_hash(_password(False), user["name"], user["email"], accounts.min_score)
        accounts.set_password(user["id"], password_hash)
        engine.store.audit(None, "set-password", "user", user["id"])
    click.echo(f"user {user['name']}: password set, every session ended")


@user_group.command("suspend")
@click.argument("name")
@click.option("--undo", is_flag=True, help="Lift the suspension.")
@click.option("--reason", default="", help="Written to the audit log.")
@click.pass_obj
def user_suspend(obj: Context, name: str, undo: bool, reason: str) -> None:
    """Suspend NAME (no login, posts, votes or API tokens; sessions end), or lift it with --undo."""
    with errors_to_exit(), obj.engine() as engine:
        accounts = _accounts(engine)
        accounts.suspend(accounts.get(name)["id"], None, undo=undo, reason=reason)
    click.echo(f"user {name}: {'suspension lifted' if undo else 'suspended'}")


@user_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def user_delete(obj: Context, name: str, yes: bool) -> None:
    """Delete NAME and their data (library, votes, digests, tokens, profile); comments become [deleted]."""
    with errors_to_exit(), obj.engine() as engine:
        accounts = _accounts(engine)
        user = accounts.get(name)
        if not yes:
            click.confirm(f"Delete {user['name']} and all their data?", abort=True)
        accounts.delete(user["id"], actor_id=None)
    click.echo(f"user {user['name']} deleted; the name is free again")


def write_output(data: bytes, output: Path | None) -> None:
    """``data`` to ``output`` (written beside it and renamed, so never half written) or to stdout."""
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    tmp = output.with_name(output.name + ".partial")
    try:
        tmp.write_bytes(data)
        tmp.replace(output)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PaperboyError(f"cannot write {output}: {e.strerror or e}") from e


@click.group("account")
def account_group() -> None:
    """A whole account as one JSON file: export it here, import it into another paperboy."""


@account_group.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@click.pass_obj
def account_export(obj: Context, name: str, output: Path | None) -> None:
    """Export NAME's profile, library, ratings, interests, votes and comments, and the papers they
    name (never the password, tokens or sessions)."""
    from .services.portability import dumps, export_account

    with errors_to_exit(), obj.engine() as engine:
        doc = export_account(engine.store, _accounts(engine).get(name)["id"])
        write_output(dumps(doc), output)
    if output:
        click.echo(f"{output}: {len(doc['papers'])} papers, {len(doc['saves'])} saves", err=True)


@account_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "name", help="Import into this account (made if missing); default: the name in the file.")
@click.option("--no-embed", is_flag=True, help="Do not embed the papers it adds (run `paperboy embed` later).")
@click.option("--trusted", is_flag=True,
              help="You vouch for the file (e.g. your own account): its papers are public at once and its "
                   "votes and comments come too.")
@json_option
@click.pass_obj
def account_import(obj: Context, path: Path, name: str | None, no_embed: bool, trusted: bool, as_json: bool) -> None:
    """Import an account file made by `paperboy account export` (checked whole before anything is
    written; importing it twice adds nothing). A new account has no password: set one with
    `paperboy user set-password`. The file is editable, so by default its papers count as a member's
    upload (public once arXiv confirms them) and its votes and comments are left out; --trusted
    imports it as it is."""
    from .services.portability import MAX_BYTES, import_account

    with errors_to_exit(), obj.engine() as engine:
        if path.stat().st_size > MAX_BYTES:
            raise PaperboyError(f"{path}: an account file may be at most {MAX_BYTES >> 20} MB")
        res = import_account(engine, path.read_bytes(), name, embed=not no_embed, trusted=trusted)
    for warning in res["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    emit(res, as_json, f"{path.name}: {'new account' if res['created'] else 'account'} {res['user']}: "
         f"{res['papers']} papers ({res['papers_new']} new here), {res['saves']} saves, {res['feedback']} ratings, "
         f"{res['votes']} votes, {res['comments']} comments, {res['interest_prefs']} interests added")
