"""Read-only queries for the clinic's user pages; each costs a fixed number of queries."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import cached_property

import ua_parser
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import is_password_usable
from django.contrib.sessions.models import Session
from django.core.paginator import Page, Paginator
from django.db import connections, router
from django.db.models import BooleanField, Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext

from clinic_auth import rows
from clinic_auth.twofactor import devices
from clinic_auth.twofactor import session as twofa_session
from clinic_auth.twofactor import texts as twofa_texts
from clinics.models import Clinic

from .models import Invitation, User, UserSession

SORTS = {
    "name": ("last_name", "first_name", "username"),
    "-name": ("-last_name", "-first_name", "-username"),
    "2fa": ("twofa_enrolled", "last_name", "first_name", "username"),
    "-2fa": ("-twofa_enrolled", "last_name", "first_name", "username"),
}


def signed_in_user(pk) -> User | None:
    """The signed-in user with their clinic, in one query: every page shows the clinic's name and the
    2FA rules read its policy. Every request runs it, so through a cursor (clinic_auth/rows.py), not
    select_related("clinic").get(), which cost 7 times the CPU to build."""
    users, clinics = User._meta.db_table, Clinic._meta.db_table
    sql = (
        f'SELECT {rows.select_list(User)}, {rows.select_list(Clinic)} FROM "{users}" LEFT OUTER JOIN "{clinics}" '
        f'ON "{users}"."{User._meta.get_field("clinic").column}" = "{clinics}"."{Clinic._meta.pk.column}" '
        f'WHERE "{users}"."{User._meta.pk.column}" = %s'
    )
    found = rows.fetch([User, Clinic], sql, [User._meta.pk.to_python(pk)], using=router.db_for_read(User))
    if not found:
        return None
    user, clinic = found[0]
    user.clinic = clinic  # cached on the user as select_related leaves it, None without a clinic
    return user


def clinic_users(clinic: Clinic) -> QuerySet[User]:
    return User.objects.filter(clinic=clinic)


STATUSES = {"active": {"is_active": True}, "deactivated": {"is_active": False}}
TWOFA_FILTERS = {"enabled": True, "none": False}  # the Users list's 2FA-status filter ("" = all)


def matching_users(*, clinic: Clinic, query: str = "", status: str = "", twofa: str = "") -> QuerySet[User]:
    """The clinic's users that match the search and the Show and 2FA-status filters, without the 2FA columns."""
    users = clinic_users(clinic)
    if status in STATUSES:
        users = users.filter(**STATUSES[status])
    if twofa in TWOFA_FILTERS:
        users = users.filter(twofa_enrolled=TWOFA_FILTERS[twofa])
    if twofa == "none":  # "needs set-up": a deactivated member needs none
        users = users.filter(is_active=True)
    # Every word must match some field (username, names, email: User.search_text), so
    # "joy nurse" finds Joy Nurse by her full name.
    for term in query.split():
        # The column is stored in upper case; the database upper-cases the word the same way.
        users = users.filter(search_text__contains=Upper(Value(term)))
    return users


def user_list(*, clinic: Clinic, query: str = "", sort: str = "name", status: str = "", twofa: str = "") -> QuerySet[User]:
    users = devices.with_methods(matching_users(clinic=clinic, query=query, status=status, twofa=twofa))
    return users.order_by(*SORTS.get(sort, SORTS["name"]))


class KeysetPaginator(Paginator):
    """Django's Paginator (page numbers, count, the same Page objects), but a page is found by its key.

    With OFFSET, page 200 makes the database sort the whole clinic and work out the 2FA columns of
    the 9,950 rows before it. Here the page query starts at the first row's sort key
    (last name, first name, username: unique, so a total order) and reads 50 rows along an
    index; the 2FA columns are computed for those 50 only. The key itself comes from a subquery
    of the same statement that reads just the key columns, from whichever end of the list is
    nearer, so the query count is the same on every page.

    A row-value comparison only walks columns that all go one way, and the 2FA sorts put
    twofa_enrolled in one direction and the names in the other ("-2fa": enrolled first, then
    A to Z). So the list is seen as runs ("groups"): for the 2FA sorts, one per 2FA status in
    the order shown, each in name order along (clinic, twofa_enrolled, last name, ...); for
    the name sorts, one run of everyone. The count query counts each run, so every page knows
    which runs it covers and where in each it starts and ends; the one page that spans two runs
    is the last rows of the first plus the first rows of the second.
    """

    def __init__(self, object_list, per_page, *, keys: QuerySet, sort: str, whole_clinic: bool = False, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.keys = keys
        self.sort = sort
        self.whole_clinic = whole_clinic  # nothing filters the list: status_counts are the clinic's

    @cached_property
    def status_counts(self) -> dict[str, int]:
        """The rows of the list, and how many of them are enrolled (the page's one count query)."""
        return _status_counts(self.keys)

    @cached_property
    def groups(self) -> list[tuple[Q, int]]:
        """(filter, number of rows) of each run, in the order shown."""
        counts = self.status_counts
        if SORTS[self.sort][0].lstrip("-") != "twofa_enrolled":
            return [(Q(), counts["total"])]
        sizes = {True: counts["enrolled"], False: counts["total"] - counts["enrolled"]}
        first = self.sort.startswith("-")
        return [(Q(twofa_enrolled=status), sizes[status]) for status in (first, not first)]

    @cached_property
    def count(self) -> int:
        return sum(size for _, size in self.groups)

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        within = [name for name in SORTS[self.sort] if name.lstrip("-") != "twofa_enrolled"]
        runs, start = [], 0  # (filter, size, first row on the page, last row on the page) of each run it shows
        for group, size in self.groups:
            first, last = max(bottom - start, 0), min(top - start, size) - 1
            if first <= last:
                runs.append((group, size, first, last))
            start += size
        if not runs:
            return Page(self.object_list[bottom:top], number, self)
        if len(runs) == 1:
            group, size, first, _ = runs[0]
            rows = self.object_list.filter(group)
            if first > 0:
                rows = rows.filter(self._from_row(group, size, within, first))
            # Within one run twofa_enrolled is fixed: order as the index does, so the database walks it.
            return Page(rows.order_by(*within)[: top - bottom], number, self)
        # The page spans two runs: the last rows of the first and the first rows of the second, each
        # read from its own end of the index with a LIMIT. (One WHERE with an OR of two ranges is
        # planned as a scan of the whole clinic: the planner cannot tell either range is short.)
        (first_run, first_size, first, _), (second_run, _, _, last) = runs
        ends = [
            self.keys.filter(first_run).order_by(*_reversed(within)).values("pk")[: first_size - first],
            self.keys.filter(second_run).order_by(*within).values("pk")[: last + 1],
        ]
        compiled = [end.query.sql_with_params() for end in ends]
        union = " UNION ALL ".join(f"SELECT * FROM ({sql}) AS run_{n}" for n, (sql, _) in enumerate(compiled))
        pk = f'"{User._meta.db_table}"."{User._meta.pk.column}"'
        on_page = RawSQL(f"{pk} IN ({union})", tuple(p for _, params in compiled for p in params), output_field=BooleanField())
        return Page(self.object_list.filter(Q(on_page))[: top - bottom], number, self)

    def _from_row(self, group: Q, size: int, order: list[str], position: int) -> Q:
        """The run's rows from its row at `position` on, by a row-value comparison with that row's key."""
        fields = [name.lstrip("-") for name in order]
        keys = self.keys.filter(group)
        if position <= size // 2:
            seek = keys.order_by(*order).values_list(*fields)[position : position + 1]
        else:  # nearer the end: walk the index backwards
            from_end = size - 1 - position
            seek = keys.order_by(*_reversed(order)).values_list(*fields)[from_end : from_end + 1]
        sql, params = seek.query.sql_with_params()
        table = User._meta.db_table
        columns = ", ".join(f'"{table}"."{User._meta.get_field(name).column}"' for name in fields)
        comparison = "<=" if order[0].startswith("-") else ">="
        return Q(RawSQL(f"({columns}) {comparison} ({sql})", params, output_field=BooleanField()))


def _reversed(order: list[str]) -> list[str]:
    return [name[1:] if name.startswith("-") else f"-{name}" for name in order]


ROW_FIELDS = ("pk", "first_name", "last_name", "username", "email", "role", "is_active", "password", "twofa_enrolled",
              "last_login", "has_app", "key_count")


def user_rows(members: QuerySet[User]) -> list[dict]:
    """A page of the Users list (user_page's object_list) as plain values, ready to show, in one query.

    Read as dicts rather than as 50 model instances whose methods, filters and includes the
    template would call row by row: the page's Python was most of its time (`make bench`
    part 3). The keys the template's includes read (pk, is_active, has_usable_password) are the
    model's own names.
    """
    roles = dict(User._meta.get_field("role").flatchoices)
    rows = []
    for values in members.values(*ROW_FIELDS):
        first, last = values["first_name"], values["last_name"]
        rows.append({
            "pk": values["pk"],
            "name": f"{last}, {first}" if first and last else (f"{first} {last}".strip() or values["username"]),
            "username": values["username"],
            "email": values["email"],
            "role": roles.get(values["role"], values["role"]),
            "is_active": values["is_active"],
            "has_usable_password": is_password_usable(values["password"]),
            "twofa_enrolled": values["twofa_enrolled"],
            "last_login": values["last_login"],
            "methods": twofa_texts.methods_summary(has_app=values["has_app"], key_count=values["key_count"] or 0),
        })
    return rows


def user_page(*, clinic: Clinic, query: str = "", sort: str = "name", status: str = "", twofa: str = "", page, per_page: int):
    """One page of the Users list (two queries: the count, then the page), by key rather than OFFSET."""
    sort = sort if sort in SORTS else "name"
    users = user_list(clinic=clinic, query=query, sort=sort, status=status, twofa=twofa)
    keys = matching_users(clinic=clinic, query=query, status=status, twofa=twofa)
    whole_clinic = not query.split() and status not in STATUSES and twofa not in TWOFA_FILTERS
    paginator = KeysetPaginator(users, per_page, keys=keys, sort=sort, whole_clinic=whole_clinic)
    return paginator.get_page(page)


def enrolment_counts(clinic: Clinic, *, page: Page | None = None) -> dict[str, int]:
    """Members and enrolled members, from the clinic's own rows of the (clinic, twofa_enrolled, ...) index.

    A page of the unfiltered Users list has counted exactly these already (no second query).
    """
    if page is not None and getattr(page.paginator, "whole_clinic", False):
        return page.paginator.status_counts
    return _status_counts(clinic_users(clinic))


def _status_counts(users: QuerySet[User]) -> dict[str, int]:
    """The rows, the enrolled ones, and the same two of active members only (what the summary, the
    reminders and Mandatory 2FA's readiness count: a deactivated member needs no set-up). One
    scan of the (clinic, is_active, twofa_enrolled) index, no member's row read."""
    return users.aggregate(
        total=Count("*"),
        enrolled=Count("twofa_enrolled", filter=Q(twofa_enrolled=True)),
        active=Count("is_active", filter=Q(is_active=True)),
        active_enrolled=Count("is_active", filter=Q(is_active=True, twofa_enrolled=True)),
    )


@dataclass(frozen=True)
class SignedInSession:
    id: int
    browser: str
    operating_system: str
    ip_address: str | None
    signed_in_at: datetime
    last_active_at: datetime
    is_current: bool
    waiting_for_code: bool  # the password was entered here, the second factor not yet


def signed_in_sessions(user: User, *, current_session_key: str | None = None) -> list[SignedInSession]:
    """The user's browsers that are signed in right now, this one first, then newest activity (one query).

    Alive means what the session middleware itself would accept: the session row
    exists and has not expired, it still carries this user's current auth hash (a
    password change or 2FA reset ends every other session), and neither the idle
    nor the absolute timeout has passed. A browser is listed once its sign-in
    completed; one that gave the password but not yet its code is listed, marked so,
    only while PENDING_LOGIN_TIMEOUT has not passed (after it, that browser is signed
    out at its next request).
    """
    now = timezone.now()
    entries, sessions = UserSession._meta.db_table, Session._meta.db_table
    expiry = Session._meta.get_field("expire_date")
    moment = UserSession._meta.get_field("signed_in_at")
    using = router.db_for_read(UserSession)
    pending_since = now - timedelta(seconds=settings.CLINICAUTH_PENDING_LOGIN_TIMEOUT)
    # Through a cursor (clinic_auth/rows.py): My Profile lists the browsers on every view.
    found = rows.fetch(
        [UserSession],
        f'SELECT {rows.select_list(UserSession)}, "{sessions}"."session_data" FROM "{entries}" '
        f'INNER JOIN "{sessions}" ON "{sessions}"."session_key" = "{entries}"."session_key" '
        f'AND "{sessions}"."expire_date" > %s WHERE "{entries}"."user_id" = %s AND "{entries}"."ended_at" IS NULL '
        f'AND ("{entries}"."completed_at" IS NOT NULL OR "{entries}"."signed_in_at" > %s)',
        [
            expiry.get_db_prep_value(now, connections[using]),
            user.pk,
            moment.get_db_prep_value(pending_since, connections[using]),
        ],
        using=using,
    )
    current_hash = user.get_session_auth_hash()
    store = Session.get_session_store_class()()
    alive = []
    for row, session_data in found:
        if session_data is None:
            continue
        data = store.decode(session_data)
        if str(data.get(SESSION_KEY)) != str(user.pk) or not constant_time_compare(data.get(HASH_SESSION_KEY, ""), current_hash):
            continue
        signed_in = row.signed_in_at
        login_at = data.get(twofa_session.LOGIN_AT_KEY, int(signed_in.timestamp()))
        last_seen = data.get(twofa_session.LAST_SEEN_KEY, login_at)
        if now.timestamp() - last_seen > settings.SESSION_IDLE_TIMEOUT or now.timestamp() - login_at > settings.SESSION_ABSOLUTE_TIMEOUT:
            continue
        agent = ua_parser.parse(row.user_agent) if row.user_agent else None
        alive.append(
            SignedInSession(
                id=row.pk,
                browser=_describe(agent.user_agent if agent else None),
                operating_system=_describe(agent.os if agent else None),
                ip_address=row.ip_address,
                signed_in_at=row.signed_in_at,
                last_active_at=datetime.fromtimestamp(last_seen, tz=dt_timezone.utc),
                is_current=row.session_key == current_session_key,
                waiting_for_code=row.completed_at is None,
            )
        )
    return sorted(alive, key=lambda s: (not s.is_current, -s.last_active_at.timestamp()))


def _describe(part) -> str:
    if part is None or not part.family or part.family == "Other":
        return gettext("Unknown")
    return f"{part.family} {part.major}" if part.major else part.family


INVITATION_FIELDS = ("created_at", "expires_at", "accepted_at", "revoked_at")


def with_latest_invitation(users: QuerySet[User]) -> QuerySet[User]:
    """Each user's most recent invitation, read in the same query as the user (the member page's budget)."""
    latest = Invitation.objects.filter(user=OuterRef("pk")).order_by("-created_at", "-id")
    return users.annotate(
        **{f"invitation_{name}": Subquery(latest.values(name)[:1]) for name in INVITATION_FIELDS}
    )


def member_page_rows(members: QuerySet[User]) -> QuerySet[User]:
    """A member as their page shows them: with their 2FA methods and latest invitation, in one query."""
    return with_latest_invitation(devices.with_methods(members))


def latest_invitation(member: User) -> Invitation | None:
    """The member's most recent invitation, while they have not set a password yet."""
    if member.has_usable_password():
        return None
    if hasattr(member, "invitation_created_at"):  # loaded through with_latest_invitation
        if member.invitation_created_at is None:
            return None
        return Invitation(user=member, **{name: getattr(member, f"invitation_{name}") for name in INVITATION_FIELDS})
    return Invitation.objects.filter(user=member).order_by("-created_at", "-id").first()


def password_reset_candidates(identifier: str) -> list[User]:
    """Active accounts a "forgot password" entry names, by username or e-mail, case-insensitively.

    Accounts without a usable password (an invitation not yet accepted) get no reset link.
    """
    identifier = identifier.strip()
    if not identifier:
        return []
    users = User.objects.filter(Q(username__iexact=identifier) | Q(email__iexact=identifier), is_active=True)
    return [user for user in users.order_by("pk") if user.has_usable_password() and user.email]
