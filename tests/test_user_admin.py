"""Clinic admins manage users: the Users menu, the user list and the user view page."""

from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from django.test import Client
from django.test.html import Element, parse_html
from django.urls import reverse

from clinic_auth.twofactor import devices
from users.models import User
from tests.conftest import Browser

# --- reading pages --------------------------------------------------------


def find_all(node, tag: str, **attrs) -> list[Element]:
    """Elements named `tag` having all of `attrs` (aria_expanded means aria-expanded; "" a bare attribute)."""
    found = []
    if isinstance(node, Element):
        own = dict(node.attributes)
        wanted = {key.replace("_", "-"): value for key, value in attrs.items()}
        if node.name == tag and all(key in own and own[key] == value for key, value in wanted.items()):
            found.append(node)
        for child in node.children:
            found.extend(find_all(child, tag, **attrs))
    return found


def text_of(node) -> str:
    if isinstance(node, str):
        return node
    return " ".join(" ".join(text_of(child) for child in node.children).split())


def page(response) -> Element:
    assert response.status_code == 200, response.status_code
    return parse_html(response.content.decode())


def table_rows(response) -> list[list[str]]:
    (tbody,) = find_all(page(response), "tbody")
    return [[text_of(cell) for cell in find_all(row, "td")] for row in find_all(tbody, "tr")]


def names_in(response) -> list[str]:
    return [row[0] for row in table_rows(response)]


def usernames_in(response) -> list[str]:
    """Usernames listed; none when the page says nothing matched."""
    if not find_all(page(response), "tbody"):
        return []
    return [row[1] for row in table_rows(response)]


# --- fixtures -------------------------------------------------------------


@pytest.fixture
def admin_client(clinic_admin) -> Client:
    c = Browser()
    c.force_login(clinic_admin)
    return c


@pytest.fixture
def verified_admin_client(clinic_admin, enrol) -> Client:
    """An admin who has 2FA and passed it, so pages stay reachable with Mandatory 2FA on."""
    c = Client()
    enrol(clinic_admin, http_client=c)
    return c


@pytest.fixture
def other_clinic_admin(clinic_factory, user_factory) -> User:
    return user_factory(
        clinic=clinic_factory(name="Other Clinic"), role=User.Role.CLINIC_ADMIN, username="otheradmin"
    )


# --- navigation -----------------------------------------------------------


@pytest.mark.parametrize("page_name", ["clinic_settings", "clinic_edit"])
def test_users_dropdown_is_a_real_button_with_the_menu_in_the_html(admin_client, clinic, page_name):
    root = page(admin_client.get(reverse(page_name, args=[clinic.pk])))

    (dropdown,) = find_all(root, "li", data_dropdown="")
    (toggle,) = find_all(dropdown, "button")
    assert text_of(toggle) == "Users"
    assert dict(toggle.attributes)["type"] == "button"
    # Without JavaScript the menu is open and announced as such; app.js collapses it.
    assert dict(toggle.attributes)["aria-expanded"] == "true"
    menu_id = dict(toggle.attributes)["aria-controls"]
    (menu,) = find_all(dropdown, "ul", id=menu_id)
    assert "hidden" not in dict(menu.attributes)
    (users_link,) = find_all(menu, "a", href=reverse("user_list"))
    assert text_of(users_link) == "Users"

    assert admin_client.get(reverse("user_list")).status_code == 200


def test_staff_have_no_users_menu(client, staff):
    client.force_login(staff)
    response = client.get(reverse("home"))
    assert find_all(page(response), "a", href=reverse("user_list")) == []


# --- the list -------------------------------------------------------------


def test_list_shows_each_users_details_status_last_login_and_a_view_button(
    admin_client, clinic_admin, user_factory, enrol
):
    enrolled = user_factory(username="nurse.joy", first_name="Joy", last_name="Nurse", email="joy@example.com")
    enrol(enrolled, http_client=Client())
    User.objects.filter(pk=enrolled.pk).update(last_login=datetime(2024, 3, 5, 14, 7, tzinfo=dt_timezone.utc))
    never = user_factory(username="ben", first_name="Ben", last_name="Zed", email="ben@example.com")

    response = admin_client.get(reverse("user_list"))

    rows = {row[1]: row for row in table_rows(response)}
    assert rows["nurse.joy"][:6] == ["Nurse, Joy", "nurse.joy", "joy@example.com", "Staff", "Enabled", "5 Mar 2024, 14:07 UTC"]
    assert rows["ben"][:6] == ["Zed, Ben", "ben", "ben@example.com", "Staff", "Not set up", "Never"]
    assert rows["admin"][3] == "Clinic admin"
    root = page(response)
    for member in (enrolled, never, clinic_admin):
        (form,) = find_all(root, "form", action=reverse("user_detail", args=[member.pk]))
        (button,) = find_all(form, "button")
        assert text_of(button) == "View"
        assert admin_client.get(dict(form.attributes)["action"]).status_code == 200


def test_list_names_fall_back_to_what_is_known_and_the_role_says_invited_or_deactivated(admin_client, user_factory):
    user_factory(username="only.first", first_name="Ada", last_name="")
    user_factory(username="only.last", first_name="", last_name="Okafor")
    user_factory(username="no.name", first_name="", last_name="")
    invited = user_factory(username="invited", first_name="Ivy", last_name="New")
    invited.set_unusable_password()
    invited.save()
    user_factory(username="gone", first_name="Gus", last_name="Old", is_active=False)

    rows = {row[1]: row for row in table_rows(admin_client.get(reverse("user_list"), {"status": "all"}))}

    assert [rows[name][0] for name in ("only.first", "only.last", "no.name")] == ["Ada", "Okafor", "no.name"]
    assert rows["invited"][3] == "Staff Invited"
    assert rows["gone"][3] == "Staff Deactivated"
    assert rows["only.first"][3] == "Staff"


def test_list_says_required_but_not_set_up_when_the_clinic_has_mandatory_2fa(
    verified_admin_client, clinic, staff
):
    clinic.mandatory_2fa = True
    clinic.save()

    rows = {row[1]: row for row in table_rows(verified_admin_client.get(reverse("user_list")))}

    assert rows["staff"][4] == "Required but not set up"
    assert rows["admin"][4] == "Enabled"


def test_counts_show_how_many_users_of_this_clinic_have_2fa(
    admin_client, user_factory, enrol, clinic_factory
):
    for member in [user_factory(), user_factory()]:
        enrol(member, http_client=Client())
    user_factory()
    outsider = user_factory(clinic=clinic_factory())
    enrol(outsider, http_client=Client())

    response = admin_client.get(reverse("user_list"))

    # 2 enrolled of admin + 3 members; the other clinic's user is not counted.
    assert "2 of 4 users have 2FA enabled" in text_of(page(response))


@pytest.mark.parametrize(
    "query, expected",
    [
        ("mar", ["Lopez, Marta", "Said, Omar"]),  # first name and last name, partial
        ("LOPEZ", ["Lopez, Marta"]),  # case-insensitive
        ("jdoe", ["Doe, Jon"]),  # username
        ("@Example.ORG", ["Said, Omar"]),  # email
        ("  marta   LOP ", ["Lopez, Marta"]),  # full name: every word matches some field
        ("marta doe", []),
        ("martalopez", []),  # one word never spans two fields
        ("nobody-like-this", []),
    ],
)
def test_search_filters_by_name_username_or_email(admin_client, user_factory, clinic_factory, query, expected):
    user_factory(first_name="Marta", last_name="Lopez", username="mlopez", email="ml@example.com")
    user_factory(first_name="Jon", last_name="Doe", username="jdoe", email="jon@example.com")
    user_factory(first_name="Priya", last_name="Omarova", username="priya", email="p@example.org", clinic=clinic_factory())
    user_factory(first_name="Omar", last_name="Said", username="osaid", email="omar@example.org")

    response = admin_client.get(reverse("user_list"), {"q": query})

    if expected:
        assert names_in(response) == expected
    else:
        assert "No users match" in text_of(page(response))


def test_search_finds_a_renamed_user_by_the_new_name_only(admin_client, user_factory):
    member = user_factory(first_name="Marta", last_name="Lopez", username="mlopez", email="ml@example.com")
    member.username, member.last_name = "mokafor", "Okafor"
    member.email = "marta.okafor@example.com"
    member.save()

    assert names_in(admin_client.get(reverse("user_list"), {"q": "okafor"})) == ["Okafor, Marta"]
    assert "No users match" in text_of(page(admin_client.get(reverse("user_list"), {"q": "lopez"})))


def test_list_is_paginated_by_50(admin_client, clinic):
    User.objects.bulk_create(
        User(clinic=clinic, username=f"bulk{n:03}", last_name=f"Bulk{n:03}", password="!") for n in range(120)
    )  # plus the admin: 121 users

    first = admin_client.get(reverse("user_list"))
    second = admin_client.get(reverse("user_list"), {"page": 2})
    third = admin_client.get(reverse("user_list"), {"page": 3})

    assert [len(table_rows(r)) for r in (first, second, third)] == [50, 50, 21]
    assert "Page 1 of 3" in text_of(page(first))
    assert find_all(page(first), "a", href="?q=&sort=name&page=2")
    seen = names_in(first) + names_in(second) + names_in(third)
    assert len(set(seen)) == 121


def test_search_and_sort_survive_paging(admin_client, clinic):
    User.objects.bulk_create(
        User(clinic=clinic, username=f"nurse{n:03}", last_name=f"Nurse{n:03}", password="!") for n in range(60)
    )

    response = admin_client.get(reverse("user_list"), {"q": "NURSE", "sort": "-name"})

    assert len(table_rows(response)) == 50
    (next_link,) = [a for a in find_all(page(response), "a", href="?q=NURSE&sort=-name&page=2") if text_of(a) == "Next"]
    second = admin_client.get(reverse("user_list") + dict(next_link.attributes)["href"])
    assert names_in(second) == [f"Nurse{n:03}" for n in range(9, -1, -1)]


def test_sort_by_name_both_ways(admin_client, user_factory):
    for last in ["Charlie", "Alpha", "Bravo"]:
        user_factory(first_name="", last_name=last)

    ascending = names_in(admin_client.get(reverse("user_list"), {"sort": "name"}))
    descending = names_in(admin_client.get(reverse("user_list"), {"sort": "-name"}))

    assert ascending == ["Admin, Dana", "Alpha", "Bravo", "Charlie"]
    assert descending == list(reversed(ascending))
    # The default order is by name too.
    assert names_in(admin_client.get(reverse("user_list"))) == ascending


def test_sort_by_2fa_status_both_ways(admin_client, user_factory, enrol):
    enrolled = [user_factory(first_name="On", last_name=f"Zulu{n}") for n in range(2)]
    for member in enrolled:
        enrol(member, http_client=Client())
    user_factory(first_name="Off", last_name="Alpha")

    not_first = table_rows(admin_client.get(reverse("user_list"), {"sort": "2fa"}))
    enrolled_first = table_rows(admin_client.get(reverse("user_list"), {"sort": "-2fa"}))

    assert [row[4] for row in not_first] == ["Not set up", "Not set up", "Enabled", "Enabled"]
    assert [row[4] for row in enrolled_first] == ["Enabled", "Enabled", "Not set up", "Not set up"]
    assert [row[0] for row in enrolled_first] == ["Zulu0, On", "Zulu1, On", "Admin, Dana", "Alpha, Off"]


def test_unknown_sort_or_page_falls_back_instead_of_failing(admin_client, staff):
    response = admin_client.get(reverse("user_list"), {"sort": "password", "page": "999"})

    assert names_in(response) == ["Admin, Dana", "Staff, Sam"]


def test_an_unknown_sort_keeps_the_search(admin_client, staff):
    response = admin_client.get(reverse("user_list"), {"q": "sam", "sort": "password"})

    assert names_in(response) == ["Staff, Sam"]


# --- the view page --------------------------------------------------------


def test_view_page_shows_details_and_the_disable_button_for_an_enrolled_user(admin_client, user_factory, enrol):
    member = user_factory(username="nurse.joy", first_name="Joy", last_name="Nurse", email="joy@example.com")
    enrol(member, http_client=Client())
    User.objects.filter(pk=member.pk).update(last_login=datetime(2024, 3, 5, 14, 7, tzinfo=dt_timezone.utc))

    root = page(admin_client.get(reverse("user_detail", args=[member.pk])))

    body = text_of(root)
    for detail in ["Joy Nurse", "nurse.joy", "joy@example.com", "Staff", "Enabled", "5 Mar 2024, 14:07 UTC"]:
        assert detail in body
    (section,) = find_all(root, "section", aria_labelledby="disable-2fa-heading")
    assert text_of(find_all(section, "h2")[0]) == "Disable 2FA"
    (form,) = find_all(section, "form", action=reverse("user_disable_2fa", args=[member.pk]))
    assert text_of(find_all(form, "button")[0]) == "Disable Two-Factor Authentication"


def test_view_page_of_a_user_without_2fa_has_no_disable_button(admin_client, staff):
    root = page(admin_client.get(reverse("user_detail", args=[staff.pk])))

    (section,) = find_all(root, "section", aria_labelledby="disable-2fa-heading")
    assert find_all(section, "button") == []
    assert "has not set up two-factor authentication, so there is nothing to disable" in text_of(section)


def test_own_view_page_points_to_my_profile_instead_of_a_disable_button(verified_admin_client, clinic_admin):
    root = page(verified_admin_client.get(reverse("user_detail", args=[clinic_admin.pk])))

    (section,) = find_all(root, "section", aria_labelledby="disable-2fa-heading")
    assert find_all(section, "button") == []
    assert find_all(section, "a", href=reverse("profile"))


# --- who may see these pages ----------------------------------------------


def member_urls(pk: int) -> list[str]:
    return [reverse("user_detail", args=[pk]), reverse("user_disable_2fa", args=[pk])]


def test_staff_get_403_everywhere(client, staff, user_factory):
    colleague = user_factory()
    client.force_login(staff)

    for url in [reverse("user_list"), *member_urls(colleague.pk), *member_urls(staff.pk)]:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("user_disable_2fa", args=[colleague.pk])).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, staff):
    for url in [reverse("user_list"), *member_urls(staff.pk)]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))


def test_admin_of_another_clinic_gets_404_for_every_id_outside_their_clinic(
    client, other_clinic_admin, clinic_admin, staff, user_factory, enrol
):
    member = user_factory(username="target")
    enrol(member, http_client=Client())
    own_clinic_ids = set(User.objects.filter(clinic=other_clinic_admin.clinic).values_list("pk", flat=True))
    highest = User.objects.order_by("-pk").values_list("pk", flat=True).first()
    client.force_login(other_clinic_admin)

    for pk in range(1, highest + 3):
        if pk in own_clinic_ids:
            continue
        for url in member_urls(pk):
            assert client.get(url).status_code == 404, url
        assert client.post(reverse("user_disable_2fa", args=[pk])).status_code == 404
    assert devices.is_enrolled(member)


def test_admin_of_another_clinic_never_sees_this_clinics_users_in_the_list(client, other_clinic_admin, staff):
    client.force_login(other_clinic_admin)

    for params in [{}, {"q": "staff"}, {"q": staff.email}, {"sort": "-2fa", "page": "2"}]:
        response = client.get(reverse("user_list"), params)
        assert usernames_in(response) in ([], ["otheradmin"]), params
        summary = "0 users match" if "q" in params else "0 of 1 users have 2FA enabled"
        assert summary in text_of(page(response))


def test_operator_without_a_clinic_is_refused(client, db, enrol):
    operator = User.objects.create_superuser("root", "root@example.com", "x")
    # Operators must enrol before any page; once verified, they still manage no clinic's users.
    client.force_login(operator)
    assert client.get(reverse("user_list")).url.startswith(reverse("two_factor_setup"))
    enrol(operator)

    assert client.get(reverse("user_list")).status_code == 403


# --- what the list says while searching and paging ----------


def test_a_search_says_how_many_users_it_found_and_offers_to_clear_it(admin_client, user_factory):
    user_factory(first_name="Marta", last_name="Lopez", username="mlopez")
    user_factory(first_name="Omar", last_name="Said", username="osaid")

    root = page(admin_client.get(reverse("user_list"), {"q": "lopez", "sort": "-name"}))
    (summary,) = find_all(root, "p", **{"class": "summary"})

    assert text_of(summary) == "1 user matches “lopez” · Clear search"
    assert "have 2FA enabled" not in text_of(root)  # the clinic's count would be read as the result
    (clear,) = find_all(summary, "a")
    assert dict(clear.attributes)["href"] == "?sort=-name"  # keeps the order, drops the search
    assert usernames_in(admin_client.get(reverse("user_list") + "?sort=-name")) == ["osaid", "mlopez", "admin"]


def test_paging_offers_first_previous_next_and_last(admin_client, clinic):
    User.objects.bulk_create(
        User(clinic=clinic, username=f"bulk{n:03}", last_name=f"Bulk{n:03}", password="!") for n in range(120)
    )

    def links(number):
        (nav,) = find_all(page(admin_client.get(reverse("user_list"), {"page": number})), "nav", aria_label="Pages")
        return [(text_of(a), dict(a.attributes)["href"]) for a in find_all(nav, "a")], text_of(nav)

    first, first_text = links(1)
    middle, middle_text = links(2)
    last, last_text = links(3)
    assert first == [("Next", "?q=&sort=name&page=2"), ("Last page", "?q=&sort=name&page=3")]
    assert middle == [
        ("First page", "?q=&sort=name&page=1"),
        ("Previous", "?q=&sort=name&page=1"),
        ("Next", "?q=&sort=name&page=3"),
        ("Last page", "?q=&sort=name&page=3"),
    ]
    assert last == [("First page", "?q=&sort=name&page=1"), ("Previous", "?q=&sort=name&page=2")]
    assert "Page 2 of 3" in middle_text


def test_the_member_page_shows_only_what_applies(client, clinic_admin, user_factory, enrol, django_capture_on_commit_callbacks):
    """An invited member: the invitation first, no empty cards of sign-ins and 2FA. A deactivated
    member: no browsers and no Disable Two-Factor Authentication. An active one: both."""
    from users import membership

    enrol(clinic_admin)
    with django_capture_on_commit_callbacks(execute=True):
        invited = membership.member_invite(
            clinic=clinic_admin.clinic, invited_by=clinic_admin, username="joy", email="joy@example.com",
            first_name="Joy", last_name="Nurse", role="staff", base_url="http://testserver", ip=None,
        )
    leaver = user_factory(username="leaver", is_active=False)
    active = user_factory(username="active")
    enrol(active, http_client=Client())
    pages = {user.username: client.get(reverse("user_detail", args=[user.pk])).content.decode() for user in (invited, leaver, active)}

    invited_page = pages["joy"]
    assert 'id="invitation-heading"' in invited_page
    assert invited_page.index('id="invitation-heading"') < invited_page.index('id="role-heading"')
    assert 'id="sessions-heading"' not in invited_page and 'id="disable-2fa-heading"' not in invited_page
    assert 'id="sessions-heading"' not in pages["leaver"] and "Disable Two-Factor Authentication" not in pages["leaver"]
    assert "Reactivat" in pages["leaver"]
    assert 'id="sessions-heading"' in pages["active"] and "Disable Two-Factor Authentication" in pages["active"]


def test_counts_reminders_and_needs_set_up_are_of_active_members_only(client, clinic, clinic_admin, user_factory, enrol):
    """A deactivated member without 2FA is not "2 of 3", is not offered a reminder, is not listed
    as needing set-up, and is not "Required but not set up"."""
    enrol(clinic_admin)
    leaver = user_factory(username="leaver", first_name="Lee", last_name="Leaver", is_active=False)
    clinic.mandatory_2fa = True
    clinic.save()
    users_page = client.get(reverse("user_list")).content.decode()
    assert "1 of 1 users have 2FA enabled" in users_page and "(1 deactivated user not counted)" in users_page
    assert "Remind members who have not set up 2FA" not in users_page
    row = users_page[users_page.index("Leaver, Lee"):]
    row = row[: row.index("</tr>")]
    assert "Required but not set up" not in row and "Not set up" in row
    needs_set_up = client.get(reverse("user_list"), {"twofa": "none"}).content.decode()
    assert "Leaver, Lee" not in needs_set_up
    edit_page = client.get(reverse("clinic_edit", args=[clinic.pk])).content.decode()
    assert "members has not set up 2FA" not in edit_page and "member has not set up 2FA" not in edit_page
    member_page = client.get(reverse("user_detail", args=[leaver.pk])).content.decode()
    assert "Required but not set up" not in member_page
    # An active member without 2FA counts, is offered the reminder, and is listed.
    user_factory(username="newbie", first_name="Nia", last_name="Newbie")
    users_page = client.get(reverse("user_list")).content.decode()
    assert "1 of 2 users have 2FA enabled" in users_page and "Remind members who have not set up 2FA" in users_page
    assert "Newbie, Nia" in client.get(reverse("user_list"), {"twofa": "none"}).content.decode()
    assert "1 of 2 members has not set up 2FA" in client.get(reverse("clinic_edit", args=[clinic.pk])).content.decode()
