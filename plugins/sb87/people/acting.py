"""Acting officials and leave: who is in office, who may answer a decision, who signs (docs/acting-officials.md).

The organisation file (`config/sb87.json`) holds, under `acting`:

* `appointments`: the orders that name an acting official — `acting` (roster id) acts for `for` (a
  roster id: that person's post; or a roster role: the post of everyone holding it), `kind`
  รักษาราชการแทน or ปฏิบัติราชการแทน, `from`/`to` Bangkok local times (`2026-12-07T08:30`; a bare date
  is the whole day), `order` (the order or memo that appointed them), and optionally
  `absent_may_answer` (whether the absent official may still answer while the order is in force;
  default: no for รักษาราชการแทน, yes for ปฏิบัติราชการแทน);
* `leave`: a person's leave (`person`, `from`, `to`, optional `kind` such as ลาพักผ่อน) with or without
  an appointment;
* `precedence`: per post (role or roster id) the people, in order, who come next when the holder is
  away and no order names an acting official: escalations and deadline notices go to the first of them
  in office (the standing order of precedence, ลำดับผู้รักษาราชการแทน; it gives no right to answer);
* `post_titles`: per role, the post's title as the acting line writes it (default: the position of
  the role's first holder).

A roster that breaks a rule is refused when it is read (`validate`, called by
`sb87.settings.organisation`), naming the entry: the DAG does not load and no decision opens.

Decision assignees: a roster id is a *principal* (the decision is theirs); `acting:<id>` marks an acting
official added while an order was in force (`assigned_users` in Airflow's human-in-the-loop record shows
both). Whether someone may answer is decided at answer time from the roster (`answer_capacity`), so an
order that starts while a decision waits takes effect at once, and one that ends takes the right away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sb87.timekeeping.thai_dates import thai_date_short

ACTING_IN_POST = "รักษาราชการแทน"
ACTING_BY_DELEGATION = "ปฏิบัติราชการแทน"
KINDS = (ACTING_IN_POST, ACTING_BY_DELEGATION)
ACTING_PREFIX = "acting:"
BANGKOK = ZoneInfo("Asia/Bangkok")
#: Roles whose people answer decisions (`sb87.steps`): each must have someone able to answer at all times.
DECISION_ROLES = ("it_director", "group_director", "staff")


class RosterError(ValueError):
    """The roster's acting officials or leave break a rule; the message names the entry."""


@dataclass(frozen=True)
class Appointment:
    index: int
    acting: str  # roster id of the acting official
    post: str  # roster id or role acted for
    kind: str
    start: datetime
    end: datetime
    order: str
    absent_may_answer: bool

    def in_force(self, when: datetime) -> bool:
        return self.start <= when < self.end

    @property
    def label(self) -> str:
        return (f"acting.appointments[{self.index}] ({self.acting} {self.kind} {self.post}, "
                f"{_local(self.start)} – {_local(self.end)}, {self.order})")


@dataclass(frozen=True)
class Leave:
    index: int
    person: str
    start: datetime
    end: datetime
    kind: str = "ลา"

    def in_force(self, when: datetime) -> bool:
        return self.start <= when < self.end

    @property
    def label(self) -> str:
        return f"acting.leave[{self.index}] ({self.person} {self.kind}, {_local(self.start)} – {_local(self.end)})"


@dataclass(frozen=True)
class Acting:
    """Someone acting for a post at a given time: what a board or a notice shows."""

    person: str  # roster id
    name: str
    email: str
    post: str  # role or roster id acted for
    post_title: str
    kind: str  # รักษาราชการแทน / ปฏิบัติราชการแทน, or "" for the next in precedence (no order)
    order: str
    start: datetime | None
    end: datetime | None

    @property
    def capacity(self) -> str:
        """`รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ`: the capacity an answer or a signature records."""
        return f"{self.kind} {self.post_title}" if self.kind else ""


def _local(when: datetime) -> str:
    return when.astimezone(BANGKOK).strftime("%Y-%m-%d %H:%M")


def _instant(value: Any, *, end: bool, where: str) -> datetime:
    """A Bangkok local time (`2026-12-07T08:30`) or date (the whole day) as an aware UTC instant."""
    if not isinstance(value, str):
        raise RosterError(f"{where}: {'to' if end else 'from'} must be a Bangkok date or date-time string")
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            local = datetime.combine(day + timedelta(days=1) if end else day, time(0), BANGKOK)
        else:
            local = datetime.fromisoformat(value)
            local = local.replace(tzinfo=BANGKOK) if local.tzinfo is None else local
    except ValueError as err:
        raise RosterError(f"{where}: {value!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from err
    return local.astimezone(UTC)


def _section(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    return raw.get("acting") or {}


def appointments(raw: Mapping[str, Any]) -> list[Appointment]:
    found = []
    for i, entry in enumerate(_section(raw).get("appointments") or []):
        where = f"acting.appointments[{i}]"
        if not isinstance(entry, Mapping):
            raise RosterError(f"{where}: must be an object")
        missing = [key for key in ("acting", "for", "kind", "from", "to", "order") if not entry.get(key)]
        if missing:
            raise RosterError(f"{where}: missing {', '.join(missing)}")
        kind = entry["kind"]
        if kind not in KINDS:
            raise RosterError(f"{where}: kind {kind!r} must be one of {', '.join(KINDS)}")
        may = entry.get("absent_may_answer", kind == ACTING_BY_DELEGATION)
        if not isinstance(may, bool):
            raise RosterError(f"{where}: absent_may_answer must be true or false")
        found.append(Appointment(i, str(entry["acting"]), str(entry["for"]), kind,
                                 _instant(entry["from"], end=False, where=where),
                                 _instant(entry["to"], end=True, where=where), str(entry["order"]), may))
    return found


def leaves(raw: Mapping[str, Any]) -> list[Leave]:
    found = []
    for i, entry in enumerate(_section(raw).get("leave") or []):
        where = f"acting.leave[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("person") or not entry.get("from") or not entry.get("to"):
            raise RosterError(f"{where}: needs person, from and to")
        found.append(Leave(i, str(entry["person"]), _instant(entry["from"], end=False, where=where),
                           _instant(entry["to"], end=True, where=where), str(entry.get("kind") or "ลา")))
    return found


def _people(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {u["id"]: u for u in raw.get("users", [])}


def _holders(raw: Mapping[str, Any], post: str) -> list[str]:
    """The roster ids whose post `post` is: the person, or everyone holding the role."""
    people = _people(raw)
    if post in people:
        return [post]
    return [pid for pid, u in people.items() if post in u.get("roles", ())]


def _posts_of(raw: Mapping[str, Any], person: str) -> set[str]:
    return {person, *(_people(raw).get(person, {}).get("roles", ()))}


def validate(raw: Mapping[str, Any]) -> None:
    """Refuse (`RosterError`, naming the entry) a roster whose acting officials or leave break a rule:
    an unknown person or post, a period that ends before it starts, two orders for the same post at the
    same time, a person's leave periods overlapping, or a moment when a decision role has nobody able
    to answer (every holder displaced by an order whose acting official is away too)."""
    people = _people(raw)
    roles = {r for u in people.values() for r in u.get("roles", ())}
    found = appointments(raw)
    for a in found:
        if a.acting not in people:
            raise RosterError(f"{a.label}: acting official {a.acting!r} is not in the roster (users)")
        if a.post not in people and a.post not in roles:
            raise RosterError(f"{a.label}: {a.post!r} is neither a person nor a role in the roster")
        if a.end <= a.start:
            raise RosterError(f"{a.label}: the period ends before it starts")
        if a.acting in _holders(raw, a.post):
            raise RosterError(f"{a.label}: {a.acting!r} cannot act for a post they hold")
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            if a.post == b.post and a.start < b.end and b.start < a.end:
                raise RosterError(f"{b.label}: overlaps {a.label} for the same post {a.post!r}")
    away = leaves(raw)
    for i, leave in enumerate(away):
        if leave.person not in people:
            raise RosterError(f"{leave.label}: {leave.person!r} is not in the roster (users)")
        if leave.end <= leave.start:
            raise RosterError(f"{leave.label}: the period ends before it starts")
        for other in away[:i]:
            if other.person == leave.person and other.start < leave.end and leave.start < other.end:
                raise RosterError(f"{leave.label}: overlaps {other.label}")
    # A precedence list naming someone who has left the roster is not refused: it is a standing list, and
    # a departure must not stop the service; `in_office` passes over whoever is not in `users`.
    for post, names in (_section(raw).get("precedence") or {}).items():
        if not isinstance(names, list) or not all(isinstance(pid, str) for pid in names):
            raise RosterError(f"acting.precedence[{post!r}]: must be a list of roster ids")
    # Who can answer changes only where a period starts or ends: checking those instants covers all time.
    moments = sorted({t for a in found for t in (a.start, a.end)} | {t for lv in away for t in (lv.start, lv.end)})
    for role in DECISION_ROLES:
        holders = _holders(raw, role)
        if not holders or role not in roles:
            continue
        for when in moments:
            if not who_may_answer(raw, holders, when):
                names = [a.label for a in found if a.in_force(when) and set(_holders(raw, a.post)) & set(holders)]
                raise RosterError(f"at {_local(when)} nobody could answer the decisions of role {role!r}: "
                                  f"{'; '.join(names) or 'every holder is displaced'}")


def post_title(raw: Mapping[str, Any], post: str) -> str:
    """The post's title as an acting line writes it."""
    titles = _section(raw).get("post_titles") or {}
    if post in titles:
        return str(titles[post])
    people = _people(raw)
    holders = _holders(raw, post)
    if holders and people[holders[0]].get("position"):
        return str(people[holders[0]]["position"])
    return str(people.get(post, {}).get("name", post))


def on_leave(raw: Mapping[str, Any], person: str, when: datetime) -> Leave | None:
    return next((lv for lv in leaves(raw) if lv.person == person and lv.in_force(when)), None)


def orders_in_force(raw: Mapping[str, Any], person: str, when: datetime) -> list[Appointment]:
    """Orders in force at `when` that name an acting official for `person`'s post (theirs or a role of theirs)."""
    posts = _posts_of(raw, person)
    return [a for a in appointments(raw) if a.post in posts and a.in_force(when)]


def displaced(raw: Mapping[str, Any], person: str, when: datetime) -> Appointment | None:
    """The order in force under which `person` may not answer their own decisions, if any."""
    return next((a for a in orders_in_force(raw, person, when) if not a.absent_may_answer), None)


def away(raw: Mapping[str, Any], person: str, when: datetime) -> bool:
    """On leave, or an order in force names an acting official for their post: not in office."""
    return on_leave(raw, person, when) is not None or bool(orders_in_force(raw, person, when))


def _acting_entry(raw: Mapping[str, Any], a: Appointment) -> Acting:
    person = _people(raw)[a.acting]
    return Acting(a.acting, str(person.get("name", a.acting)), str(person.get("email", "")), a.post,
                  post_title(raw, a.post), a.kind, a.order, a.start, a.end)


def acting_for_in(raw: Mapping[str, Any], who: str, when: datetime) -> list[Acting]:
    """Who acts for `who` (a roster id or a role) at `when`, by order in force, in the roster `raw`
    (`organisation().raw`): the acting officials the board shows under "who must act". Empty when nobody
    acts for that post. Takes the roster rather than reading it, as every function here does, because
    `sb87.settings` calls this module's `validate` while it loads the roster."""
    posts = _posts_of(raw, who) if who in _people(raw) else {who} | set(_holders(raw, who))
    found = []
    for a in appointments(raw):
        if a.post in posts and a.in_force(when) and not away(raw, a.acting, when):
            found.append(_acting_entry(raw, a))
    return found


def who_may_answer(raw: Mapping[str, Any], principals: Iterable[str], when: datetime) -> dict[str, str]:
    """{roster id: capacity} of everyone who may answer a decision whose principals are `principals`
    at `when`; capacity "" is their own post."""
    principals = list(principals)
    allowed: dict[str, str] = {}
    for pid in principals:
        if displaced(raw, pid, when) is None:
            allowed.setdefault(pid, "")
    for pid in principals:
        for entry in acting_for_in(raw, pid, when):
            allowed.setdefault(entry.person, entry.capacity)  # a principal answers in their own post
    return allowed


def split_assignees(ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """(principals, acting officials added at open) of a decision's `assigned_users` ids."""
    principals, acting = [], []
    for uid in ids:
        (acting if uid.startswith(ACTING_PREFIX) else principals).append(uid.removeprefix(ACTING_PREFIX))
    return principals, acting


def answer_capacity(raw: Mapping[str, Any], user_id: str, assigned_ids: Iterable[str], when: datetime) -> str | None:
    """The capacity in which `user_id` may answer, at `when`, a decision assigned to `assigned_ids`
    ("" their own, "รักษาราชการแทน …" acting), or None: they may not."""
    principals, _ = split_assignees(assigned_ids)
    return who_may_answer(raw, principals, when).get(user_id)


def assigned_with_acting(raw: Mapping[str, Any], principals: list[dict[str, str]],
                         when: datetime) -> list[dict[str, str]]:
    """`assigned_users` for a decision opening at `when`: the principals, then each acting official in
    force for one of them, as `acting:<id>` with the capacity in the name."""
    ids = [u["id"] for u in principals]
    extra = []
    for pid, capacity in who_may_answer(raw, ids, when).items():
        if capacity and pid not in ids and all(e["id"] != ACTING_PREFIX + pid for e in extra):
            name = str(_people(raw)[pid].get("name", pid))
            extra.append({"id": ACTING_PREFIX + pid, "name": f"{name} ({capacity})"})
    return [*principals, *extra]


@dataclass(frozen=True)
class InOffice:
    """Who receives a notice meant for someone: the person, an acting official, or the next in precedence."""

    person: str
    name: str
    email: str
    why: str  # empty when the notice goes to the person it was meant for


def in_office(raw: Mapping[str, Any], person: str, when: datetime) -> list[InOffice]:
    """Who gets a notice meant for `person` at `when`: themselves when in office; else the acting
    officials in force for their post; else the first in the post's precedence who is in office,
    with why. Empty only when nobody at all is in office for that post."""
    people = _people(raw)
    me = people[person]
    if not away(raw, person, when):
        return [InOffice(person, me["name"], me["email"], "")]
    reason = _absence(raw, person, when)
    acting = acting_for_in(raw, person, when)
    if acting:
        return [InOffice(a.person, a.name, a.email, f"{reason} จึงแจ้งท่านซึ่ง{a.capacity} ตาม{a.order}")
                for a in acting]
    precedence = _section(raw).get("precedence") or {}
    for post in [person, *people[person].get("roles", ())]:
        for pid in precedence.get(post, []):
            if pid != person and pid in people and not away(raw, pid, when):
                nxt = people[pid]
                return [InOffice(pid, nxt["name"], nxt["email"],
                                 f"{reason} และไม่มีคำสั่งให้ผู้ใดรักษาราชการแทน จึงแจ้งท่านซึ่งเป็นลำดับถัดไป"
                                 f"ของ{post_title(raw, post)}")]
    return []


def _absence(raw: Mapping[str, Any], person: str, when: datetime) -> str:
    name = _people(raw)[person]["name"]
    leave = on_leave(raw, person, when)
    if leave:
        return f"{name} {leave.kind} ถึง {_until(leave.end)}"
    return f"{name} ไม่อยู่ปฏิบัติราชการ"


def _until(end: datetime) -> str:
    """`27 พ.ย. 2569` for leave that ends with a whole day, else `27 พ.ย. 2569 เวลา 12.00 น.`."""
    local = end.astimezone(BANGKOK)
    if local.time() == time(0):
        return thai_date_short((local - timedelta(days=1)).date())
    return thai_date_short(local)
