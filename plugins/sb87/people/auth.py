"""Auth managers that keep SB-8-7's decisions in the hands of the people the roster names.

Two rules, in the embedded default (SimpleAuthManager) and in production (FAB):

* A decision is answered only by its assignees. The roster names people by user id.
  SimpleAuthManager's user id *is* the user name; FAB's is the row number of `ab_user` ("7"), which no
  roster can know, so Airflow's default check (`user.get_id() in assigned_users`) would refuse every
  FAB user. `RosterFabAuthManager` matches the FAB user name instead.
* Nobody but an Airflow admin writes a task instance's state or an XCom. A decision's outcome is the
  answer in Airflow's human-in-the-loop record; `PATCH …/taskInstances/director_decision
  {"new_state": "success"}` or `POST …/xcomEntries` would otherwise let any user forge or kill one.
* Only the pipeline ends a request, and nobody on the roster erases one: writes on a run (its state,
  its note, which carries the step summary, clearing it) and deleting a run or the DAG are the admin's
  and, for the run note, the pipeline's own service account's (Simple: role `op`). Staff keep what
  their work needs: triggering a request, answering their own decisions, reading.
  Under FAB the SB87 roles simply lack these permissions (`sb87.people.accounts`).

* Acting officials (`sb87.people.acting`): at answer time the roster decides. A decision's principals
  answer unless an order in force displaces them; the acting official of an order in force for one of
  them answers too, also when the order started after the decision opened; when it ends, they no
  longer can (`acting:<id>` entries in `assigned_users` grant nothing by themselves).

Configure with `AIRFLOW__CORE__AUTH_MANAGER=sb87.people.auth.RosterSimpleAuthManager` (embedded default) or
`sb87.people.auth.RosterFabAuthManager` (production; `python -m sb87.people.accounts` makes roles and users).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

from sb87.people.acting import answer_capacity, split_assignees
from sb87.settings import organisation

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.providers.fab.auth_manager.models import User

#: (method, access entity) pairs no roster role may use on a DAG.
FORGING_WRITES = {
    (method, entity)
    for method in ("POST", "PUT", "DELETE")
    for entity in (DagAccessEntity.TASK_INSTANCE, DagAccessEntity.XCOM)
}

#: (method, access entity) pairs that end, rewind or erase a request: a run's state, note or clearing
#: (PUT on a run, single or bulk), deleting a run, deleting the DAG with every run. POST on a run
#: (triggering a request) stays.
ENDING_WRITES = {("PUT", DagAccessEntity.RUN), ("DELETE", DagAccessEntity.RUN), ("DELETE", None)}

#: The same, as FAB (action, resource) permissions: no roster role has any of them.
WRITES_THAT_FORGE = {
    (action, resource)
    for action in ("can_create", "can_edit", "can_delete")
    for resource in ("Task Instances", "XComs")
} | {("can_edit", "DAG Runs"), ("can_delete", "DAG Runs"), ("can_delete", "DAGs")}


log = logging.getLogger(__name__)


def may_answer(user_id: str, assigned_users: set[str]) -> bool:
    """Whether roster id `user_id` may answer now a decision assigned to `assigned_users`, by the roster as
    it is now (acting officials' orders included)."""
    try:
        raw = organisation().raw
    except (OSError, ValueError) as err:
        # The DAG does not load with such a roster; answers already waiting stay with their principals.
        log.error("roster unreadable (%s): only the decision's principals may answer", err)
        return user_id in split_assignees(assigned_users)[0]
    return answer_capacity(raw, user_id, assigned_users, datetime.now(UTC)) is not None


class RosterSimpleAuthManager(SimpleAuthManager):
    """SimpleAuthManager where only the `admin` role writes task states or XComs, and only `admin` and the
    pipeline's service account (role `op`) write or delete runs."""

    def is_authorized_dag(self, *, method: Any, user: SimpleAuthManagerUser, access_entity: Any = None,
                          details: Any = None) -> bool:
        if (method, access_entity) in FORGING_WRITES and not self._is_admin(user):
            return False
        if (method, access_entity) in ENDING_WRITES and (user.role or "").upper() not in ("ADMIN", "OP"):
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: SimpleAuthManagerUser) -> bool:
        return may_answer(user.get_id(), assigned_users)


class RosterFabAuthManager(FabAuthManager):
    """`FabAuthManager` whose human-in-the-loop check matches the roster's user ids (FAB user names)
    and follows acting officials' orders."""

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: User) -> bool:
        return may_answer(user.get_name(), assigned_users)
