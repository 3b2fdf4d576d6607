"""The Airflow users of the compose stack, in the FAB auth manager's database (``airflow-init``).

One user per pair of variables whose password is set (``docker/init-env.sh`` writes the admin's;
the others are optional):

==================================  =====================================  ====================
variables                           role                                   may
==================================  =====================================  ====================
``_AIRFLOW_WWW_USER_USERNAME``      ``Admin``                              everything
(default ``admin``), ``_PASSWORD``
``_AIRFLOW_VIEWER_USERNAME``        ``_AIRFLOW_VIEWER_ROLE`` (``Viewer``)  read the UI, the
(default ``viewer``), ``_PASSWORD``                                        investor page and API
``_AIRFLOW_OPERATOR_USERNAME``      ``_AIRFLOW_OPERATOR_ROLE`` (``Op``)    also collect (trigger
(default ``operator``), ``_PASSWORD``                                      the weekly DAG)
==================================  =====================================  ====================

``_AIRFLOW_<WHO>_EMAIL`` sets a user's e-mail (default ``<username>@example.com``; FAB needs one,
unique). The built-in roles are synchronised first (``airflow sync-perm`` does the same), so they
exist on a fresh database. A user that already exists is kept as it is, like the official compose
file's ``airflow users create`` (change a password with ``airflow users reset-password``). A
password is never printed. Exit status 2 with a message naming the variable when a setting is bad.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

# (variable prefix, default username, default role)
USERS = (
    ("_AIRFLOW_WWW_USER", "admin", "Admin"),
    ("_AIRFLOW_VIEWER", "viewer", "Viewer"),
    ("_AIRFLOW_OPERATOR", "operator", "Op"),
)


@dataclass(frozen=True)
class WantedUser:
    prefix: str
    username: str
    password: str
    role: str
    email: str


class SettingError(ValueError):
    """A bad user setting; the message names the variable."""


def wanted_users(env) -> list[WantedUser]:
    """The users the variables ask for, in order (admin first); a user without a password is not
    wanted, except the admin, whose password is required."""
    found = []
    for prefix, default_name, default_role in USERS:
        password = env.get(f"{prefix}_PASSWORD", "")
        if not password:
            if prefix == "_AIRFLOW_WWW_USER":
                raise SettingError(f"{prefix}_PASSWORD is not set: the admin user needs a password "
                                   "(./docker/init-env.sh writes one to .env)")
            continue
        username = env.get(f"{prefix}_USERNAME", "").strip() or default_name
        role = env.get(f"{prefix}_ROLE", "").strip() or default_role
        email = env.get(f"{prefix}_EMAIL", "").strip() or f"{username}@example.com"
        found.append(WantedUser(prefix, username, password, role, email))
    seen: dict[str, str] = {}
    for user in found:
        other = seen.setdefault(user.username.lower(), user.prefix)
        if other != user.prefix:
            raise SettingError(f"{user.prefix}_USERNAME: {user.username!r} is already the name of the user "
                               f"of {other}_USERNAME")
    return found


def create_users(users: list[WantedUser]) -> None:
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        security = appbuilder.sm
        security.sync_roles()
        for user in users:
            role = security.find_role(user.role)
            if role is None:
                valid = sorted(r.name for r in security.get_all_roles())
                raise SettingError(f"{user.prefix}_ROLE: {user.role!r} is not a role of the FAB auth manager "
                                   f"(roles: {', '.join(valid)})")
            if security.find_user(username=user.username) is not None:
                print(f"Airflow user {user.username!r}: exists, kept")
                continue
            security.add_user(user.username, user.username, "(compose)", user.email, role, user.password)
            print(f"Airflow user {user.username!r}: created with role {user.role!r} "
                  f"(password from {user.prefix}_PASSWORD)")


def main() -> int:
    try:
        create_users(wanted_users(os.environ))
    except SettingError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
