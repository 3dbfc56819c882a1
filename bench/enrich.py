"""What the list's filters need beyond the generated registry (bench.fast_load): SLA levels,
departments, sites with buildings, 24 operators, and each customer's SLA level, department, site
and responsible operators, set by a few set-based statements instead of Python per row.

Every value is one the product accepts: lookup rows as the settings pages write them, a
customer's lookups by their ids, operators made by services.operators.create_operator (one
password hash, shared). Spreads are fixed by the customer id, so every run and both databases
hold the same registry.
"""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from bench.dataset import DEPARTMENTS, SITES, SLA_LEVELS

OPERATORS = 24
# Shares by customer id: SLA level on ids ending in 0–6 (70 %), department on persons with an
# even id, a site on every third customer, responsible operators on two in five (one or two each).
UPDATES = [
    "UPDATE customer SET sla_level_id = 1 + (id % 10) % 4 WHERE id % 10 < 7",
    "UPDATE customer SET department_id = 1 + (id / 2) % :departments WHERE kind = 'person' AND id % 2 = 0",
    "UPDATE customer SET site_id = 1 + (id / 3) % :sites WHERE id % 3 = 0",
]
ASSIGN = [  # operator ids are 1 + offset of the first bench operator
    "INSERT INTO customer_operator (customer_id, operator_id) "
    "SELECT id, :first + (id / 5) % :operators FROM customer WHERE id % 5 IN (1, 3)",
    "INSERT INTO customer_operator (customer_id, operator_id) "
    "SELECT id, :first + (id / 5 + 7) % :operators FROM customer WHERE id % 5 = 3",
]


def _operators(url: str) -> int:
    """OPERATORS operators by the product's own create_operator; returns the first one's id."""
    from bench.loader import make_app
    from extensions import db
    from services.operators import create_operator
    from services.transactions import unit_of_work

    app = make_app(url)
    with app.app_context():
        with unit_of_work(db.session):
            made = [create_operator(db.session, email=f"operator{n}@desk.example.sk",
                                    password="bench operator password", first_name="Operator",
                                    last_name=f"Number {n}") for n in range(1, OPERATORS + 1)]
            db.session.flush()
            first = made[0].id
        db.session.remove()
        db.engine.dispose()
    return first


def enrich(url: str) -> dict[str, float | int]:
    """Add the lookups, operators and assignments to a loaded registry at `url`; returns seconds
    and row counts."""
    started = time.perf_counter()
    first = _operators(url)  # before the statements below: SQLite has one writer at a time
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for name, _ in ((n, s) for _, n, s in SLA_LEVELS):
                connection.execute(text("INSERT INTO sla_level (name) VALUES (:name)"), {"name": name})
            for name in DEPARTMENTS:
                connection.execute(text("INSERT INTO department (name) VALUES (:name)"), {"name": name})
            for site, buildings in SITES.items():
                site_id = connection.execute(text("INSERT INTO site (name) VALUES (:name) RETURNING id"),
                                             {"name": site}).scalar_one()
                for building in buildings:
                    connection.execute(text("INSERT INTO building (site_id, name) VALUES (:site, :name)"),
                                       {"site": site_id, "name": building})
            sizes = {"departments": len(DEPARTMENTS), "sites": len(SITES)}
            for statement in UPDATES:
                connection.execute(text(statement), sizes)
            assigned = 0
            for statement in ASSIGN:
                assigned += connection.execute(text(statement), {"first": first,
                                                                 "operators": OPERATORS}).rowcount
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            analyze = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
            connection.execute(text(analyze))
    finally:
        engine.dispose()
    return {"seconds": time.perf_counter() - started, "customer_operator": assigned}
