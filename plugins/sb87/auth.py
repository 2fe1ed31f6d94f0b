"""Production auth: Airflow's FAB auth manager, with decisions bound to the roster by user name.

The roster (`config/sb87.json`) names people by user id, and the human-in-the-loop tasks assign
them by that id. SimpleAuthManager's user id *is* the user name, so the two agree out of the box.
FAB's user id is the row number of `ab_user` ("7"), which no roster can know in advance, so
Airflow's default check (`user.get_id() in assigned_users`) would refuse every FAB user. Here a
FAB user may answer a decision when their user name is among its assignees; nobody else can (403).

Configure with `AIRFLOW__CORE__AUTH_MANAGER=sb87.auth.RosterFabAuthManager`; `python -m
sb87.roster_accounts` creates the FAB roles and the roster's users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

if TYPE_CHECKING:
    from airflow.providers.fab.auth_manager.models import User


class RosterFabAuthManager(FabAuthManager):
    """`FabAuthManager` whose human-in-the-loop check matches the roster's user ids (FAB user names)."""

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: User) -> bool:
        return user.get_name() in assigned_users
