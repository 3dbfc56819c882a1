"""Demo data for a new installation: lookups, operators, companies with contacts and people."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from models import (
    Building,
    Customer,
    CustomerStatus,
    Department,
    Operator,
    Request,
    SecurityGroup,
    Site,
    SlaLevel,
    Team,
    Workgroup,
)
from models.enums import CustomerKind, EmployeeType, OperatorRole, PhoneType
from services.customers import SaveOptions, create_customer
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import DbSession, flush


def _lookups(session: DbSession) -> dict[str, dict[str, Any]]:
    made: dict[str, dict[str, Any]] = {}
    for model, names in (
        (SlaLevel, ["Bronze", "Silver", "Gold", "Platinum"]),
        (Department, ["Finance", "IT", "Sales", "Human Resources"]),
        (Workgroup, ["Head office", "Branch offices"]),
        (Team, ["Service desk", "Field engineers"]),
        (SecurityGroup, ["Portal users", "Portal administrators"]),
        (CustomerStatus, ["On hold"]),
    ):
        made[model.__name__] = {}
        for name in names:
            row = session.scalar(select(model).where(model.name == name)) or model(name=name)
            session.add(row)
            made[model.__name__][name] = row
    sites = {"Bratislava HQ": ["Tower A", "Tower B"], "Košice branch": ["Main building"]}
    made["Site"], made["Building"] = {}, {}
    for site_name, buildings in sites.items():
        site = Site(name=site_name)
        session.add(site)
        made["Site"][site_name] = site
        for building_name in buildings:
            building = Building(name=building_name, site=site)
            session.add(building)
            made["Building"][building_name] = building
    flush(session)
    return made


def load_demo_data(session: DbSession, options: SaveOptions) -> bool:
    """Load the demo into an empty database; returns False (and does nothing) when customers
    exist already. Demo operators get random passwords nobody knows: a maintainer sets them."""
    if session.scalar(select(Customer.id).limit(1)) is not None:
        return False
    ensure_reference_data(session)
    lk = _lookups(session)
    team = lk["Team"]
    operators = {}
    for email, first, last, team_name in (
        ("jana.operatorova@example.com", "Jana", "Operátorová", "Service desk"),
        ("marek.technik@example.com", "Marek", "Technik", "Field engineers"),
    ):
        op = session.scalar(select(Operator).where(Operator.email == email)) or create_operator(
            session, email=email, password=secrets.token_urlsafe(16), first_name=first,
            last_name=last, role=OperatorRole.OPERATOR,
        )
        op.teams = [team[team_name]]
        operators[first] = op
    flush(session)

    hq, towers = lk["Site"]["Bratislava HQ"], lk["Building"]
    acme = create_customer(
        session, None, options, kind=CustomerKind.COMPANY, company_name="ACME Slovakia s.r.o.",
        registration_number="35 123 456", vat_id="SK2020123456", email="office@acme.example.sk",
        primary_phone="+421 2 5010 1234", primary_phone_type=PhoneType.WORK,
        sla_level=lk["SlaLevel"]["Gold"], site=hq, building=towers["Tower A"],
        operators=[operators["Jana"]],
        contacts=[
            dict(first_name="Zuzana", last_name="Horváthová", email="zuzana.horvathova@acme.example.sk",
                 phone="0903 111 222", phone_type=PhoneType.MOBILE, title="Office manager", is_main=True),
            dict(first_name="Tomáš", last_name="Novák", email="tomas.novak@acme.example.sk",
                 title="Accountant", is_main=False),
        ],
    )
    create_customer(
        session, None, options, kind=CustomerKind.COMPANY, company_name="Tatra Logistics a.s.",
        registration_number="44 987 654", email="it@tatra-logistics.example.sk",
        sla_level=lk["SlaLevel"]["Silver"], operators=[operators["Marek"]],
        contacts=[dict(first_name="Ján", last_name="Šimko", email="jan.simko@tatra-logistics.example.sk",
                       is_main=True)],
    )
    boss = create_customer(
        session, None, options, kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá",
        employee_type=EmployeeType.FULL_TIME, title="Chief financial officer",
        department=lk["Department"]["Finance"], email="eva.mala@example.sk",
        primary_phone="+421 905 123 456", primary_phone_type=PhoneType.MOBILE,
        sla_level=lk["SlaLevel"]["Platinum"], site=hq, building=towers["Tower B"],
        location_code="B-4.12", operators=[operators["Jana"]],
    )
    create_customer(
        session, None, options, kind=CustomerKind.PERSON, first_name="Peter", middle_name="J",
        last_name="Kováč", employee_type=EmployeeType.CONTRACTOR, title="Accountant",
        department=lk["Department"]["Finance"], manager=boss, email="peter.kovac@example.sk",
        secondary_email="kovac.peter@gmail.example", primary_phone="02 5020 3040",
        primary_phone_type=PhoneType.WORK, secondary_phone="0911 222 333",
        secondary_phone_type=PhoneType.HOME, sla_level=lk["SlaLevel"]["Bronze"], site=hq,
        building=towers["Tower B"], location_code="B-4.15", notes="Prefers e-mail.",
    )
    create_customer(
        session, None, options, kind=CustomerKind.PERSON, first_name="Ľubica", last_name="Čierna",
        employee_type=EmployeeType.PART_TIME, email="lubica.cierna@example.sk",
        department=lk["Department"]["Sales"], site=lk["Site"]["Košice branch"],
        building=towers["Main building"],
    )
    printer = Request(customer=acme, subject="Printer on 3rd floor does not print",
                      description="The printer by the kitchen shows 'Paper jam' with no paper in it.",
                      contacts=[acme.contacts[0]], created_by=operators["Jana"])
    session.add(printer)
    flush(session)
    _demo_discussion(session, printer, acme, operators["Jana"])
    return True


def _demo_discussion(session: DbSession, request: Request, company: Customer, operator: Operator) -> None:
    """A short thread on the demo request (nothing is mailed: notify off) and portal access for
    the company's main contact, whose first password nobody knows: an operator resets it on the
    contact's Portal access page and hands it over."""
    from models.enums import RequestStatus, Via
    from services.discussion import Author, add_comment, change_status
    from services.portal import create_portal_account

    zuzana = next(c for c in company.contacts if c.is_main)
    customer_side = Author.of_sender(Via.EMAIL, zuzana.email or "", company, zuzana)
    desk = Author.of_operator(operator)
    add_comment(session, request, customer_side, "It happens on every print job since this morning.",
                notify=False)
    change_status(session, request, desk, RequestStatus.IN_PROGRESS,
                  comment="Marek will look at it this afternoon.", notify=False)
    add_comment(session, request, desk, "Spare fuser unit is in the store room, shelf B.", internal=True,
                notify=False)
    create_portal_account(session, company, None, username=zuzana.email or "zuzana", contact=zuzana,
                          password=secrets.token_urlsafe(16), security_group=None)
