"""A list page's rows as users see them: written in Python (admin_views.list_rows) from the
page's ids read first (SecuredModelView.get_list). Each row's actions lead to that row, pages
keep the list's order on every sort and search, merged-away customers stay out, and what a
customer is called is escaped as the template escaped it."""

from __future__ import annotations

import re
from html import unescape

import pytest

from admin_views.list_rows import ROW_ID, record_url
from models.enums import CustomerKind
from services.merge import merge_customers
from services.transactions import unit_of_work
from tests.test_merge import BOX

ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
NAME = re.compile(r'<td class="col-display_name"><a href="([^"]+)"[^>]*>([^<]*)</a>')


def rows(html: str) -> list[str]:
    return [row for row in ROW.findall(html) if 'name="rowid"' in row]


def names(html: str) -> list[str]:
    return [unescape(name) for _, name in NAME.findall(html)]


@pytest.fixture
def people(new_customer, maintainer):
    # 45 people: three pages of 20, names in a known order, every other one inactive.
    made = []
    for number in range(45):
        made.append(new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Jana",
                                 last_name=f"Kovac{number:02d}", email=f"jana{number}@example.com"))
    return made


def test_every_row_links_its_own_actions_and_page(maintainer_client, people):
    html = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert ROW_ID not in html  # the placeholder of the copied actions never reaches the page
    shown = rows(html)
    assert len(shown) == 20
    for row in shown:
        pk = re.search(r'name="rowid" class="action-checkbox" value="(\d+)"', row).group(1)
        links = re.findall(r'href="([^"]+)"', row)
        with_id = [link for link in links if "id=" in link]
        # View, Edit, History, Delete…, and the name leading to the customer's page.
        assert len(with_id) == 5 and all(re.search(rf"[?&;]id={pk}(&|$)", unescape(link))
                                         for link in with_id), row
        assert f"/admin/customers/overview/?id={pk}" in links


def test_pages_follow_the_name_order_to_the_last_page(maintainer_client, people):
    everyone = []
    for page in range(3):
        html = maintainer_client.get(f"/admin/customers/?page={page}").get_data(as_text=True)
        everyone += names(html)
    assert everyone == [f"Kovac{n:02d}, Jana" for n in range(45)]


def test_a_descending_sort_and_a_search_keep_their_order_across_pages(maintainer_client, people):
    html = maintainer_client.get("/admin/customers/?sort=1&desc=1&page=1").get_data(as_text=True)
    assert names(html) == [f"Kovac{n:02d}, Jana" for n in range(24, 4, -1)]
    found = maintainer_client.get("/admin/customers/?search=kovac1&page=0").get_data(as_text=True)
    assert names(found) == [f"Kovac{n:02d}, Jana" for n in range(10, 20)]


def test_a_merged_away_customer_is_on_no_page(maintainer_client, people, session, maintainer):
    with unit_of_work(session):
        merge_customers(session, maintainer, people[0], people[1], BOX, choices={}, decisions={})
    everyone = []
    for page in range(3):
        everyone += names(maintainer_client.get(f"/admin/customers/?page={page}").get_data(as_text=True))
    assert "Kovac01, Jana" not in everyone and len(everyone) == 44


def test_names_and_markup_in_a_name_are_escaped(maintainer_client, new_customer, maintainer):
    new_customer(maintainer, kind=CustomerKind.COMPANY, company_name='<b onmouseover="x()">Evil</b> & Co')
    html = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert '<b onmouseover' not in html
    assert "&lt;b onmouseover=&#34;x()&#34;&gt;Evil&lt;/b&gt; &amp; Co" in html


def test_an_operator_sees_only_their_customers_on_the_page(operator_client, new_customer, operator,
                                                           maintainer):
    mine = new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Mine", last_name="Aaa",
                        operators=[operator])
    new_customer(maintainer, kind=CustomerKind.PERSON, first_name="Other", last_name="Aab")
    html = operator_client.get("/admin/customers/").get_data(as_text=True)
    assert names(html) == ["Aaa, Mine"] and f"value=\"{mine.id}\"" in html


def test_other_lists_write_their_rows_the_same_way(maintainer_client, people):
    html = maintainer_client.get("/admin/contacts/").get_data(as_text=True)
    assert ROW_ID not in html and len(rows(html)) == 0  # people have no contacts
    operators = maintainer_client.get("/admin/operators/").get_data(as_text=True)
    shown = rows(operators)
    assert shown and all(re.search(r'href="/admin/operators/edit/\?id=(\d+)', row) for row in shown)


def test_a_record_url_is_the_url_for_of_each_id(app):
    from flask import url_for

    with app.test_request_context("/"):
        for record_id in (1, 42, 7777777777, 987654321012):
            assert record_url("customer_overview.index", record_id) == url_for(
                "customer_overview.index", id=record_id)
            assert record_url("customers.edit_view", record_id, url="/x?y=1") == url_for(
                "customers.edit_view", id=record_id, url="/x?y=1")
