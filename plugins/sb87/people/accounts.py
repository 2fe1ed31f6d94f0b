"""FAB users and roles from the roster: `python -m sb87.people.accounts` (production auth).

The roster (`config/sb87.json`) stays the one list of who does what. Each roster role becomes a
FAB role: the IT Centre Director, the group/division director and staff get the permissions of
FAB's built-in "User" role (see DAGs and runs, file requests, answer decisions) plus the "Required
Actions" menu and the plugins list (the UI's navigation item of the operations board); operators get
those of "Op". Whether a person may answer a given decision is not a FAB permission: the decision
names its assignees from the roster (`sb87.people.auth`).

Safe to run on every start (the compose file's `airflow-init` does):
- roles are created when missing and gain missing permissions; they lose only the writes no roster
  role may have (`sb87.people.auth.WRITES_THAT_FORGE`), which an older release may have given them;
- roster people are created with a password from `SB87_INITIAL_PASSWORDS_FILE` (`{"user": "password"}`),
  or a generated one written back to that file (mode 600); an existing user keeps their password,
  and gets the roster's name, e-mail and SB87 roles (roles from outside SB-8-7 are kept);
- someone who left the roster loses the SB87 roles, and is deactivated if no role is left;
- the service account of connection `sb87_airflow_api` gets the "Op" role, "SB87 Audit Reader" (the
  audit log tells who ended a request by hand) and the connection's password (the connection is
  its source of truth); `SB87_ADMIN_USERNAME`, if set, an "Admin".
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow.models.connection import Connection

from sb87.airflow_api import API_CONN_ID
from sb87.people.auth import WRITES_THAT_FORGE
from sb87.settings import Organisation, organisation, settings

ROLE_NAMES = {
    "it_director": "SB87 IT Director",
    "group_director": "SB87 Group Director",
    "staff": "SB87 Staff",
    "operator": "SB87 Operator",
}
REQUIRED_ACTIONS_MENU = ("menu_access", "HITL Detail")
#: The pipeline's service account reads Airflow's audit log (who ended a request by hand,
#: `sb87.records.hand_ends`); FAB gives that only to Admin, so it has a role of its own for it.
AUDIT_READER = "SB87 Audit Reader"
#: The UI builds its navigation, the operations board's item included (sb87.board), from the plugins list.
PLUGINS_LIST = ("can_read", "Plugins")


@dataclass(frozen=True)
class Account:
    username: str
    email: str
    first_name: str
    last_name: str
    roles: tuple[str, ...]
    password: str | None = None  # set: the account's password is kept equal to it on every sync


def roster_accounts(org: Organisation) -> list[Account]:
    """One account per roster person, with the FAB roles of their roster roles."""
    accounts = []
    for person in org.people:
        unknown = [r for r in person.roles if r not in ROLE_NAMES]
        if unknown:
            raise ValueError(f"{person.id}: unknown roster role(s) {unknown}; known: {sorted(ROLE_NAMES)}")
        first, _, last = person.name.partition(" ")
        accounts.append(Account(person.id, person.email, first, last, tuple(ROLE_NAMES[r] for r in person.roles)))
    return accounts


def role_permissions(sm: Any) -> list[dict[str, Any]]:
    """The SB87 roles and their permissions, in the form `bulk_sync_roles` takes.

    Nobody on the roster may write a task's state or an XCom: a decision is an answer in Airflow's
    human-in-the-loop record, and a task marked "success" or an XCom posted by hand would forge one.
    Nor a run's state, note or clearing, nor delete a run or the DAG: only the pipeline ends a request.
    """
    def without_forgery(perms: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [p for p in perms if p not in WRITES_THAT_FORGE]

    people = without_forgery([*sm.VIEWER_PERMISSIONS, *sm.USER_PERMISSIONS, REQUIRED_ACTIONS_MENU, PLUGINS_LIST])
    perms = {"it_director": people, "group_director": people, "staff": people,
             "operator": without_forgery([*people, *sm.OP_PERMISSIONS])}
    return [*({"role": ROLE_NAMES[key], "perms": perms[key]} for key in ROLE_NAMES),
            {"role": AUDIT_READER, "perms": [("can_read", "Audit Logs")]}]


def _load_passwords(path: Path | None) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else {}


def _save_passwords(path: Path, passwords: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(passwords, fh, ensure_ascii=False, indent=1)


def sync(sm: Any, accounts: list[Account], passwords_file: Path | None) -> list[str]:
    """Bring FAB's roles and users in line with `accounts`; returns what changed, one line each."""
    sm.bulk_sync_roles(role_permissions(sm))
    for name in ROLE_NAMES.values():
        role = sm.find_role(name)
        for perm in list(role.permissions):
            if perm.action and perm.resource and (perm.action.name, perm.resource.name) in WRITES_THAT_FORGE:
                sm.remove_permission_from_role(role, perm)
    passwords = _load_passwords(passwords_file)
    wrote_password, report = False, []
    ours = set(ROLE_NAMES.values())
    for account in accounts:
        roles = [sm.find_role(name) for name in account.roles]
        if None in roles:
            raise ValueError(f"{account.username}: FAB has no role among {list(account.roles)}")
        user = sm.find_user(username=account.username)
        if user is None:
            password = account.password or passwords.get(account.username)
            if password is None:
                if passwords_file is None:
                    raise ValueError(f"no password for new user {account.username}: set SB87_INITIAL_PASSWORDS_FILE")
                password = passwords[account.username] = secrets.token_urlsafe(16)
                wrote_password = True
            if not sm.add_user(account.username, account.first_name, account.last_name, account.email, roles,
                               password):
                raise RuntimeError(f"FAB refused to create user {account.username}")
            report.append(f"created {account.username} ({', '.join(account.roles)})")
            continue
        kept = [r for r in user.roles if r.name not in ours and r.name not in account.roles]
        user.first_name, user.last_name, user.email = account.first_name, account.last_name, account.email
        user.roles, user.active = [*roles, *kept], True
        sm.update_user(user)
        if account.password:
            sm.reset_password(user.id, account.password)
        report.append(f"updated {account.username} ({', '.join(r.name for r in user.roles)})")
    listed = {a.username for a in accounts}
    for user in sm.get_all_users():
        if user.username in listed or not any(r.name in ours for r in user.roles):
            continue
        user.roles = [r for r in user.roles if r.name not in ours]
        user.active = bool(user.roles)
        sm.update_user(user)
        report.append(f"{user.username} is not in the roster: SB87 roles removed"
                      + ("" if user.active else ", deactivated"))
    if wrote_password and passwords_file is not None:
        _save_passwords(passwords_file, passwords)
        report.append(f"passwords of new users written to {passwords_file}")
    return report


def service_accounts() -> list[Account]:
    """The pipeline's own API account (connection `sb87_airflow_api`) and, if configured, an admin."""
    api = Connection.get_connection_from_secrets(API_CONN_ID)
    if not api.login or not api.password:
        raise ValueError(f"connection {API_CONN_ID} needs a login and a password (the service account)")
    found = [Account(api.login, f"{api.login}@localhost", "SB-8-7", "service", ("Op", AUDIT_READER), api.password)]
    if settings().admin_username:
        found.append(Account(settings().admin_username, f"{settings().admin_username}@localhost", "Airflow",
                             "admin", ("Admin",)))
    return found


def main() -> int:
    # Imported here: FAB's CLI helpers pull in Flask-AppBuilder (2.7 s measured), which only this
    # command needs, not the module's other functions.
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    passwords_file = Path(settings().initial_passwords_file) if settings().initial_passwords_file else None
    accounts = roster_accounts(organisation()) + service_accounts()
    with get_application_builder() as appbuilder:
        for line in sync(appbuilder.sm, accounts, passwords_file):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
