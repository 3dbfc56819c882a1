"""The benchmark registry's lookups, operators and assignments (bench/enrich.py), set-based on top
of the fast loader's customers, are what the product's own pages accept and show."""

from __future__ import annotations

from sqlalchemy import func, select

from bench.enrich import OPERATORS, enrich
from bench.fast_load import load
from extensions import db
from models import Customer, Operator, customer_operator
from tests.conftest import csrf_from, fresh_app
from tests.labelled_duplicates import Background


def _sign_in(client, email: str) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"email": email, "password": "bench operator password",
                                         "csrf_token": token})
    assert answer.status_code == 302


def test_enriched_customers_have_lookups_and_operators_who_see_their_own(database_url):
    with fresh_app(database_url) as app:
        load(database_url, Background(200, 500, seed=7))
        db.session.remove()
        report = enrich(database_url)
        session = db.session
        operators = session.scalars(select(Operator).where(Operator.email.like("operator%"))).all()
        assert len(operators) == OPERATORS
        assigned = session.scalar(select(func.count()).select_from(customer_operator))
        assert assigned == report["customer_operator"] > 0
        with_sla = session.scalar(select(func.count()).where(Customer.sla_level_id.is_not(None)))
        assert 0 < with_sla < 200
        first = operators[0]
        own = session.scalars(select(Customer.display_name).join(customer_operator)
                              .where(customer_operator.c.operator_id == first.id)).all()
        others = session.scalars(select(Customer.display_name).where(
            ~Customer.operators.any(Operator.id == first.id))).all()
        assert own and others
        client = app.test_client()
        _sign_in(client, first.email)
        page = client.get("/admin/customers/?page_size=100").get_data(as_text=True)
        assert all(name in page for name in own[:5])
        assert not any(f">{name}<" in page for name in set(others) - set(own))
