"""Human decisions: who is asked, what they see, and the answer as Airflow recorded it.

Airflow's human-in-the-loop operators take `assigned_users` when the DAG is parsed. In SB-8-7 some
people are known only during the run: the staff of the sub-units the IT Centre Director picked
(step 3). `Decision` and `BranchDecision` resolve their assignees, the form's pre-filled values and
the extra variables of their body template when the task starts; `DecisionNotifier` then e-mails
each assignee a link to the decision in the Airflow UI.

What a decision *was* is read back from Airflow's human-in-the-loop record only (`verified_answer`):
a response was received, and its author is among the assignees and holds the roster role. A task
state or an XCom written through the REST API is not an answer, so a forged "success" stops the
run before anything goes over SSH or SMTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator, HITLOperator
from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from sb87 import notices, steps
from sb87.airflow_api import api_session, run_path
from sb87.people.acting import ACTING_PREFIX, acting_for_in, answer_capacity, assigned_with_acting, split_assignees
from sb87.records import request_record, store
from sb87.settings import TEMPLATES_DIR, Person, organisation, settings

Assignees = Callable[[Mapping[str, Any]], list[Person]]
Extras = Callable[[Mapping[str, Any]], dict[str, Any]]


class DecisionNotVerified(AirflowFailException):
    """A decision task looks finished, but Airflow's record holds no answer by a person allowed to give it.

    Final: retrying cannot make a forged or missing answer real, so the task fails without retries.
    """


class DecisionNotifier(BaseNotifier):
    """E-mails the assignees of a waiting decision: what is asked, by when, and the link to answer it.

    Goes through the outbox (`send_notice_once`): queued in the project's database first, sent once
    per decision and run, retried by the sweeper while the SMTP server is down.
    """

    def notify(self, context: Mapping[str, Any]) -> None:
        task, ti = context["task"], context["ti"]
        org = organisation()
        # Acting officials are `acting:<id>` entries (sb87.people.acting); they are told like the principals.
        people = [org.person(uid) for uid in dict.fromkeys(
            u["id"].removeprefix(ACTING_PREFIX) for u in task.assigned_users)]
        base_url = org.raw["organisation"].get("ui_base_url") or None
        context_vars = {
            "subject": task.subject,
            "people": people,
            "link": HITLOperator.generate_link_to_ui_from_context(context=context, base_url=base_url),
            "request": ti.xcom_pull(task_ids=steps.VALIDATE),
            "org": org.raw["organisation"],
        }
        notices.send_notice_once(ti.run_id, "decision", context_vars, once_key=f"decision {ti.task_id}",
                         to=[(p.name, p.email) for p in people], conn_id=settings().smtp_conn_id)


class Decision(HITLOperator):
    """A `HITLOperator` bound to the roster (see the module doc).

    `role`: the roster role whose people answer; their ids become `assigned_users` unless
    `assignees(context)` picks people at run time. `prefill(context)` gives the form's starting values,
    `extras(context)` the body template's variables beyond `request`. Assignees are e-mailed.

    An answer given the instant a decision opens can make Airflow 3.3.2's scheduler fail the task as
    "killed externally" (it processes the parking worker's exit after the answer re-queued the task);
    so a decision retries once, and a retry whose previous try was answered completes with that answer
    instead of asking again.
    """

    def __init__(self, *, role: str, assignees: Assignees | None = None, prefill: Extras | None = None,
                 extras: Extras | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("notifiers", [DecisionNotifier()])
        kwargs.setdefault("assigned_users", [] if assignees else with_role(role))
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("retry_delay", timedelta(seconds=5))
        timeout = settings().decision_timeout_hours
        kwargs.setdefault("response_timeout", timedelta(hours=timeout) if timeout else None)
        super().__init__(**kwargs)
        self.role = role
        self.assignees = assignees
        self.prefill = prefill
        self.extras = extras

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        context["request"] = context["ti"].xcom_pull(task_ids=steps.VALIDATE)
        context.update(self.extras(context) if self.extras else {})
        super().render_template_fields(context, jinja_env)

    def execute(self, context: Mapping[str, Any]) -> Any:
        earlier = self._earlier_answer(context)
        if earlier is not None:
            self.log.info("the previous try of %s was answered; completing with that answer", self.task_id)
            return self.execute_complete(context, earlier)
        if self.assignees is not None:
            self.assigned_users = [p.as_hitl_user() for p in self.assignees(context)]
        if not self.assigned_users:
            # Airflow lets anyone answer a decision with no assignees: never open one like that.
            raise DecisionNotVerified(f"{self.task_id}: nobody in the roster can take this decision")
        # A decision opened while an order names an acting official is assigned to both (the auth manager
        # still decides at answer time: an order that ends takes the acting official's right away).
        principals = [u for u in self.assigned_users if not u["id"].startswith(ACTING_PREFIX)]
        self.assigned_users = assigned_with_acting(organisation().raw, principals, datetime.now(UTC))
        for key, value in (self.prefill(context) if self.prefill else {}).items():
            self.params[key] = value
        return super().execute(context)

    def _earlier_answer(self, context: Mapping[str, Any]) -> dict[str, Any] | None:
        ti = context["ti"]
        if ti.try_number <= 1:
            return None
        # After the race the retry keeps its task instance id, so the answer is still on the current
        # record (until `execute` re-opens it); a retry that got a new id has it in the try's history.
        record = hitl_record(ti.dag_id, ti.run_id, self.task_id)
        if not record or not record.get("response_received"):
            record = hitl_record(ti.dag_id, ti.run_id, self.task_id, try_number=ti.try_number - 1)
        if not record or not record.get("response_received"):
            return None
        return {"chosen_options": record["chosen_options"], "params_input": record.get("params_input") or {},
                "responded_by_user": record["responded_by_user"],
                "responded_at": datetime.fromisoformat(record["responded_at"])}

    def execute_complete(self, context: Mapping[str, Any], event: dict[str, Any]) -> Any:
        if "error" not in event:
            # An answer carries the whole form: fields a client left out keep the values it was shown.
            form = {key: self.params[key] for key in self.params}
            form.update(self.prefill(context) if self.prefill else {})
            form.update(event.get("params_input") or {})
            event = {**event, "params_input": form}
        return super().execute_complete(context, event)


class BranchDecision(Decision, HITLBranchOperator):
    """A `Decision` whose chosen option picks the branch (`options_mapping`), as `HITLBranchOperator`."""

    def execute_complete(self, context: Mapping[str, Any], event: dict[str, Any]) -> Any:
        form = {key: self.params[key] for key in self.params} | (event.get("params_input") or {})
        return HITLBranchOperator.execute_complete(self, context, {**event, "params_input": form})


def hitl_body(name: str) -> str:
    """The Markdown body template of a decision, `include/templates/hitl/<name>.md.j2`."""
    return (TEMPLATES_DIR / "hitl" / f"{name}.md.j2").read_text(encoding="utf-8")


def subject(text: str, limit_key: str | None = None) -> str:
    """A decision's subject template: what is asked, of which unit, and by when (the step's limit)."""
    due = f" ({{{{ due_from_now('{limit_key}') }}}})" if limit_key else ""
    return f"[SB-8-7] {text}{{{{ request.agency }}}}{due}"


def with_role(role: str) -> list[dict[str, str]]:
    """`assigned_users` for a decision that belongs to everyone with `role` in the roster.

    A role with nobody in it is a configuration error: the DAG refuses to load rather than open a
    decision that Airflow would let anyone answer.
    """
    people = organisation().with_role(role)
    if not people:
        raise ValueError(f"nobody in the roster has the role {role!r}: its decisions would be open to everyone")
    return [p.as_hitl_user() for p in people]


def hitl_record(dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> dict[str, Any] | None:
    """Airflow's human-in-the-loop record of a decision task (a given try's, or the current one)."""
    path = f"{run_path(dag_id, run_id)}/taskInstances/{task_id}/-1/hitlDetails"
    if try_number is not None:
        path += f"/tries/{try_number}"
    with api_session() as http:
        response = http.get(path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()


def verified_answer(dag_id: str, run_id: str, task_id: str, role: str) -> dict[str, Any]:
    """The answer to a decision as Airflow recorded it, checked: who, what, when.

    Raises `DecisionNotVerified` unless a response was received and its author, when they answered,
    was either a principal of the decision (an assignee that is not an `acting:` entry) holding `role`
    and not displaced by an acting official's order, or the acting official of an order then in force
    for one of the principals (`sb87.people.acting`). Returns {option, params, by_id, by, at, capacity}:
    `capacity` is "" for an answer in one's own post, else e.g. "รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ".
    The decision is entered in the request's record: who, when, which option, why, in which capacity
    (there the own post's title when not acting).
    """
    record = hitl_record(dag_id, run_id, task_id)
    if not record or not record.get("response_received"):
        raise DecisionNotVerified(f"{task_id}: Airflow holds no answer to this decision (was its state set by hand?)")
    org = organisation()
    by_id, by = org.who_answered(record)
    assigned = [u["id"] for u in record.get("assigned_users") or []]
    principals, _ = split_assignees(assigned)
    allowed = {p.id for p in org.with_role(role)}
    when = datetime.fromisoformat(record["responded_at"])
    capacity = answer_capacity(org.raw, by_id, [p for p in principals if p in allowed], when)
    if not principals or capacity is None:
        raise DecisionNotVerified(
            f"{task_id}: answered by {by_id!r}, who at {record['responded_at']} was neither an assignee with the "
            f"roster role {role!r} nor acting for one"
        )
    answer = {"option": record["chosen_options"][0], "params": dict(record.get("params_input") or {}),
              "by_id": by_id, "by": by, "at": record["responded_at"], "capacity": capacity}
    request_record.append(store.project_engine(), run_id, f"{request_record.DECISION} {task_id}",
                          request_record.DECISION,
                          {"task_id": task_id, "option": answer["option"], "by": by, "role": role,
                           "reason": answer["params"].get("reason") or "", "params": answer["params"]},
                          actor=by_id, at=when, capacity=capacity or org.person(by_id).position or role)
    return answer


def waiting_decisions(dag_id: str) -> list[dict[str, Any]]:
    """Airflow's human-in-the-loop records of `dag_id`'s decisions still waiting for an answer."""
    found: list[dict[str, Any]] = []
    with api_session() as http:
        while True:  # page by page: the api-server caps a page (`maximum_page_limit`, 100 by default)
            response = http.get(f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails",
                                params={"response_received": "false", "limit": 100, "offset": len(found)})
            response.raise_for_status()
            body = response.json()
            page = list(body["hitl_details"])
            found += page
            if not page or len(found) >= body["total_entries"]:
                return found


def announce_acting_officials(dag_id: str, now: datetime | None = None) -> list[dict[str, str]]:
    """Tell each acting official whose order is in force, by e-mail with the link, of every decision
    waiting for a principal they act for: an order that started after the decision opened (once per
    decision, person and order). Called by the deadline watch; returns what it queued."""
    now = now or datetime.now(UTC)
    org = organisation()
    base_url = org.raw["organisation"].get("ui_base_url") or ""
    told = []
    for record in waiting_decisions(dag_id):
        ti = record["task_instance"]
        principals, added = split_assignees(u["id"] for u in record.get("assigned_users") or [])
        for entry in (e for p in principals for e in acting_for_in(org.raw, p, now)):
            if entry.person in added or entry.person in principals:
                continue  # assigned when the decision opened, and told then by `DecisionNotifier`
            link = (f"{base_url.rstrip('/')}/dags/{ti['dag_id']}/runs/{ti['dag_run_id']}/tasks/{ti['task_id']}"
                    f"/required_actions?map_index={ti['map_index']}")
            person = org.person(entry.person)
            context_vars = {"subject": record["subject"], "people": [person], "link": link,
                            "request": _request_of(ti["dag_id"], ti["dag_run_id"]), "org": org.raw["organisation"],
                            "capacity": entry.capacity, "order": entry.order}
            key = f"decision {ti['task_id']} acting {entry.person} {entry.start.isoformat() if entry.start else ''}"
            notices.send_notice_once(ti["dag_run_id"], "decision", context_vars, once_key=key,
                                     to=[(person.name, person.email)], conn_id=settings().smtp_conn_id)
            told.append({"run_id": ti["dag_run_id"], "task_id": ti["task_id"], "to": entry.person,
                         "capacity": entry.capacity})
    return told


def _request_of(dag_id: str, run_id: str) -> dict[str, Any]:
    """The validated request (step 1's XCom) of a run, for a notice about one of its decisions."""
    with api_session() as http:
        response = http.get(f"{run_path(dag_id, run_id)}/taskInstances/{steps.VALIDATE}/xcomEntries/return_value",
                            params={"deserialize": "true"})
        response.raise_for_status()
        return dict(response.json()["value"])
