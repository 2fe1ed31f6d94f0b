"""Human decisions: who is asked (from the roster, when the decision opens) and the e-mail that asks them.

Airflow's human-in-the-loop operators take `assigned_users` when the DAG is parsed. In SB-8-7 the
people are known only during the run: the staff of the sub-units the IT Centre Director picked
(step 3) and the staff the group director orders to proceed (step 4). `RosterDecision` and
`RosterBranchDecision` resolve their assignees, and the form's pre-filled values, when the task
starts; `DecisionNotifier` then e-mails each assignee a link to the decision in the Airflow UI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator, HITLOperator
from airflow.sdk import BaseNotifier

from sb87.settings import Person, organisation, settings

Assignees = Callable[[Mapping[str, Any]], list[Person]]
Prefill = Callable[[Mapping[str, Any]], dict[str, Any]]


class DecisionNotifier(BaseNotifier):
    """E-mails the assignees of a waiting decision: what is asked, by when, and the link to answer it.

    Sent once per decision and run (a retried task does not mail twice). A failed e-mail is logged
    and does not fail the decision.
    """

    def notify(self, context: Mapping[str, Any]) -> None:
        from sb87.notices import send_notice_once

        task, ti = context["task"], context["ti"]
        org = organisation()
        people = [org.person(user["id"]) for user in task.assigned_users or []]
        if not people:
            return
        base_url = org.raw["organisation"].get("ui_base_url") or None
        context_vars = {
            "subject": task.subject,
            "people": people,
            "link": HITLOperator.generate_link_to_ui_from_context(context=context, base_url=base_url),
            "request": ti.xcom_pull(task_ids="validate_request"),
            "org": org.raw["organisation"],
        }
        try:
            send_notice_once(ti.run_id, "decision", context_vars, once_key=f"decision {ti.task_id}",
                             to=[(p.name, p.email) for p in people], conn_id=settings().smtp_conn_id)
        except Exception:
            # The decision is open whatever happens to the e-mail; the deadline watch still warns.
            self.log.exception("could not e-mail the assignees of %s", ti.task_id)


class RosterDecision(HITLOperator):
    """A `HITLOperator` whose assignees and form defaults come from the run (see the module doc).

    `assignees(context)` returns the people to ask; `prefill(context)` the form's starting values.
    Without `assignees`, `assigned_users` applies as usual. Assignees are e-mailed by default.
    """

    def __init__(self, *, assignees: Assignees | None = None, prefill: Prefill | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("notifiers", [DecisionNotifier()])
        super().__init__(**kwargs)
        self.assignees = assignees
        self.prefill = prefill

    def execute(self, context: Mapping[str, Any]) -> Any:
        if self.assignees is not None:
            people = self.assignees(context)
            if not people:
                raise ValueError(f"{self.task_id}: nobody in the roster can take this decision")
            self.assigned_users = [p.as_hitl_user() for p in people]
        for key, value in (self.prefill(context) if self.prefill else {}).items():
            self.params[key] = value
        return super().execute(context)

    def _complete_form(self, context: Mapping[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        """An answer carries the whole form: fields a client left out keep the values it was shown.

        The task resumes in a fresh process, so the pre-filled values are computed again (from XCom).
        """
        if "error" in event:
            return event
        form = {key: self.params[key] for key in self.params}
        form.update(self.prefill(context) if self.prefill else {})
        form.update(event.get("params_input") or {})
        return {**event, "params_input": form}

    def execute_complete(self, context: Mapping[str, Any], event: dict[str, Any]) -> Any:
        return super().execute_complete(context, self._complete_form(context, event))


class RosterBranchDecision(RosterDecision, HITLBranchOperator):
    """A `HITLBranchOperator` whose assignees come from the run (see the module doc).

    A branch operator's XCom is the branch it took; the answer itself (option, form, who, when) is
    pushed under the key `answer` for the steps that need the reason or the reviewer.
    """

    def execute_complete(self, context: Mapping[str, Any], event: dict[str, Any]) -> Any:
        event = self._complete_form(context, event)
        if "error" not in event:
            keys = ("chosen_options", "params_input", "responded_by_user", "responded_at")
            context["ti"].xcom_push(key="answer", value={k: event.get(k) for k in keys})
        return HITLBranchOperator.execute_complete(self, context, event)


def with_role(role: str) -> list[dict[str, str]]:
    """`assigned_users` for a decision that belongs to everyone with `role` in the roster."""
    return [p.as_hitl_user() for p in organisation().with_role(role)]
