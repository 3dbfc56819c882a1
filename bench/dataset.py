"""A reproducible registry of Slovak and Czech customers, built once and loaded into each database.

Rows are plain dicts for bulk Core inserts. The derived columns (display_name, sort_name) and the
search tokens come from the models' own `refresh_derived` on transient objects that never touch a
session, so the benchmark searches exactly the index the application would have written.
"""

from __future__ import annotations

import csv
import io
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models import Contact, Customer
from models.enums import CustomerKind, EmployeeType, PhoneType
from models.search_index import fold

KNOWN_CUSTOMER = {"first_name": "Peter", "last_name": "Kováč"}  # the one hit of `?search=kovac`

MALE_FIRST = ["Peter", "Ján", "Martin", "Tomáš", "Michal", "Jozef", "Lukáš", "Marek", "Juraj",
              "Ondřej", "Jiří", "Pavel", "Štefan", "Dušan", "Ľubomír", "Radovan", "Matúš",
              "Vojtěch", "Jakub", "Miroslav", "Zdeněk", "Roman", "Igor", "Branislav", "Róbert"]
FEMALE_FIRST = ["Jana", "Mária", "Zuzana", "Katarína", "Lucia", "Eva", "Petra", "Veronika",
                "Simona", "Lenka", "Barbora", "Tereza", "Ľudmila", "Dagmar", "Alžbeta",
                "Michaela", "Jitka", "Kristína", "Andrea", "Žaneta"]
# (male, female) surname forms. No Kováč: `kovac` must stay a selective search.
SURNAMES = [("Novák", "Nováková"), ("Horváth", "Horváthová"), ("Varga", "Vargová"),
            ("Tóth", "Tóthová"), ("Nagy", "Nagyová"), ("Baláž", "Balážová"),
            ("Molnár", "Molnárová"), ("Lukáč", "Lukáčová"), ("Novotný", "Novotná"),
            ("Dvořák", "Dvořáková"), ("Černý", "Černá"), ("Procházka", "Procházková"),
            ("Kučera", "Kučerová"), ("Veselý", "Veselá"), ("Horák", "Horáková"),
            ("Němec", "Němcová"), ("Pokorný", "Pokorná"), ("Pospíšil", "Pospíšilová"),
            ("Hájek", "Hájková"), ("Jelínek", "Jelínková"), ("Král", "Králová"),
            ("Růžička", "Růžičková"), ("Beneš", "Benešová"), ("Fiala", "Fialová"),
            ("Sedláček", "Sedláčková"), ("Doležal", "Doležalová"), ("Zeman", "Zemanová"),
            ("Kolář", "Kolářová"), ("Šimko", "Šimková"), ("Hudák", "Hudáková"),
            ("Oravec", "Oravcová"), ("Krajčír", "Krajčírová"), ("Štefánik", "Štefániková"),
            ("Polák", "Poláková"), ("Ďurica", "Ďuricová"), ("Čierny", "Čierna"),
            ("Šťastný", "Šťastná"), ("Ševčík", "Ševčíková"), ("Bartoš", "Bartošová"),
            ("Kollár", "Kollárová"), ("Gregor", "Gregorová"), ("Mráz", "Mrázová"),
            ("Urban", "Urbanová"), ("Vlček", "Vlčková"), ("Novosad", "Novosadová")]
BUSINESSES = ["Stavby", "Softvér", "Logistika", "Strojárne", "Energetika", "Obchod", "Služby",
              "Technológie", "Účtovníctvo", "Pekáreň", "Tlačiareň", "Doprava", "Reality",
              "Elektro", "Agro", "Nábytok", "Údržba", "Zdravotníctvo", "Čistiareň", "Sklárne"]
CITIES = ["Bratislava", "Košice", "Žilina", "Prešov", "Nitra", "Banská Bystrica", "Trnava",
          "Trenčín", "Brno", "Ostrava", "Plzeň", "Olomouc", "Praha", "České Budějovice",
          "Hradec Králové", "Liberec", "Poprad", "Zvolen"]
LEGAL_FORMS = ["s.r.o.", "a.s.", "spol. s r.o.", "k.s.", "v.o.s."]
MAIL_DOMAINS = ["gmail.com", "azet.sk", "zoznam.sk", "post.sk", "seznam.cz", "centrum.cz"]
JOB_TITLES = ["Vedúci oddelenia", "Projektový manažér", "Technik", "Asistentka", "Riaditeľ",
              "Analytik", "Referent", "Účtovníčka", "Správca siete", "Obchodný zástupca"]
SK_MOBILE = ["903", "904", "905", "907", "908", "910", "911", "915", "917", "918", "940", "944",
             "948", "949"]
CZ_MOBILE = ["601", "602", "603", "604", "605", "606", "608", "702", "720", "721", "730", "731",
             "732", "773", "774", "775", "776", "777"]

# Lookups get fixed ids, so customer rows can refer to them before any database exists.
STATUSES = [  # id, name, is_default, is_active, share of customers
    (1, "Active", True, True, 0.85), (2, "Inactive", False, False, 0.10),
    (3, "On hold", False, True, 0.05)]
SLA_LEVELS = [(1, "Bronze", 0.30), (2, "Silver", 0.20), (3, "Gold", 0.15), (4, "Platinum", 0.05)]
DEPARTMENTS = ["Finance", "IT", "Sales", "Human Resources", "Logistics", "Legal"]
SITES = {"Bratislava HQ": ["Tower A", "Tower B"], "Košice branch": ["Main building"],
         "Brno office": ["Spielberk A"], "Žilina depot": ["Hall 1", "Hall 2"]}
OPERATORS = 24


@dataclass
class Dataset:
    """Everything one load inserts; token and link rows are tuples to keep millions of them small."""

    lookups: dict[str, list[dict]] = field(default_factory=dict)
    operators: list[dict] = field(default_factory=list)
    customers: list[dict] = field(default_factory=list)
    customer_tokens: list[tuple[str, int, str | None]] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    contact_tokens: list[tuple[str, int, str | None]] = field(default_factory=list)
    customer_operators: list[tuple[int, int]] = field(default_factory=list)
    known_customer_id: int = 0
    build_seconds: float = 0.0


def _phone(rng: random.Random) -> str:
    """An E.164 number the product accepts (tests/test_bench_data.py checks a sample through the
    domain's own validation): mostly Slovak mobiles (+421903…), some Czech ones, some Bratislava
    lines. A Bratislava line is 02 and eight digits of which the first is 2–9 (phonenumbers' SK
    plan: +421 20… and +421 21… are no numbers; drawing them had made a fifth of the companies
    unsaveable through the edit form, with a contact or phone of their own refused)."""
    roll = rng.random()
    if roll < 0.6:
        return f"+421{rng.choice(SK_MOBILE)}{rng.randrange(10**6):06d}"
    if roll < 0.85:
        return f"+420{rng.choice(CZ_MOBILE)}{rng.randrange(10**6):06d}"
    return f"+4212{rng.randrange(2 * 10**7, 10**8):08d}"


def _person_name(rng: random.Random) -> tuple[str, str]:
    male = rng.random() < 0.5
    surname = rng.choice(SURNAMES)[0 if male else 1]
    return rng.choice(MALE_FIRST if male else FEMALE_FIRST), surname


def _email(first: str, last: str, domain: str, n: int | None = None) -> str:
    local = f"{fold(first)}.{fold(last)}".replace(" ", "")
    return f"{local}{n if n is not None else ''}@{domain}"


def _lookups() -> dict[str, list[dict]]:
    buildings, sites = [], []
    for site_id, (site, names) in enumerate(SITES.items(), start=1):
        sites.append({"id": site_id, "name": site})
        for name in names:
            buildings.append({"id": len(buildings) + 1, "site_id": site_id, "name": name})
    return {
        "customer_status": [{"id": i, "name": n, "is_default": d, "is_active": a}
                            for i, n, d, a, _ in STATUSES],
        "sla_level": [{"id": i, "name": n} for i, n, _ in SLA_LEVELS],
        "department": [{"id": i, "name": n} for i, n in enumerate(DEPARTMENTS, start=1)],
        "site": sites,
        "building": buildings,
    }


def _operators(rng: random.Random, password_hash: str, now: datetime) -> list[dict]:
    rows = []
    for op_id in range(1, OPERATORS + 1):
        first, last = _person_name(rng)
        rows.append({"id": op_id, "email": _email(first, last, "desk.example.sk", op_id),
                     "first_name": first, "last_name": last, "password_hash": password_hash,
                     "role": "operator", "is_active": True, "created_at": now, "updated_at": now})
    return rows


def _pick_weighted(rng: random.Random, choices: list[tuple[int | None, float]]) -> int | None:
    roll, total = rng.random(), 0.0
    for value, share in choices:
        total += share
        if roll < total:
            return value
    return None


def _customer_fields(rng: random.Random, cid: int, company: bool) -> dict:
    """The typed fields of one customer (what a form or import would give)."""
    row: dict = dict.fromkeys(("company_name", "registration_number", "vat_id", "first_name",
                               "middle_name", "last_name", "employee_type", "title",
                               "department_id", "secondary_email", "secondary_phone"))
    if company:
        city, business = rng.choice(CITIES), rng.choice(BUSINESSES)
        name = (f"{business} {city} {rng.choice(LEGAL_FORMS)}" if rng.random() < 0.7 else
                f"{rng.choice(SURNAMES)[0]} & {rng.choice(SURNAMES)[0]} {business}")
        domain = "".join(fold(name).split()[:2]).replace("&", "") + ".sk"
        row.update(kind=CustomerKind.COMPANY, company_name=name, email=f"info@{domain}",
                   registration_number=str(30_000_000 + cid), vat_id=f"SK20{20_000_000 + cid}")
    else:
        first, last = _person_name(rng)
        row.update(kind=CustomerKind.PERSON, first_name=first, last_name=last,
                   email=_email(first, last, rng.choice(MAIL_DOMAINS), rng.randrange(100)),
                   employee_type=rng.choice(list(EmployeeType)), title=rng.choice(JOB_TITLES),
                   department_id=rng.randint(1, len(DEPARTMENTS)) if rng.random() < 0.7 else None)
        if rng.random() < 0.05:
            row["middle_name"] = rng.choice(MALE_FIRST + FEMALE_FIRST)[0]
    if rng.random() < 0.1:
        row["secondary_email"] = f"office{cid}@{rng.choice(MAIL_DOMAINS)}"
    if rng.random() < 0.15:
        row["secondary_phone"] = _phone(rng)
    row["primary_phone"] = _phone(rng)
    return row


def _with_derived(model, row: dict) -> tuple[dict, list[tuple[str, str | None]]]:
    """Fill display_name/sort_name and return the tokens (with the name each is listed under),
    computed by the model's own code."""
    transient = model(**row)
    transient.refresh_derived()
    row.update(display_name=transient.display_name, sort_name=transient.sort_name, version=1)
    return row, [(t.token, t.sort_name) for t in transient.search_tokens]


def _customer_row(rng: random.Random, cid: int, company: bool, now: datetime) -> dict:
    row = _customer_fields(rng, cid, company)
    created = now - timedelta(days=rng.randrange(5 * 365), seconds=rng.randrange(86400))
    sites = len(SITES)
    site_id = rng.randint(1, sites) if rng.random() < 0.5 else None
    row.update(
        id=cid, status_id=_pick_weighted(rng, [(s[0], s[4]) for s in STATUSES]),
        sla_level_id=_pick_weighted(rng, [(s[0], s[2]) for s in SLA_LEVELS]),
        site_id=site_id, building_id=None, primary_phone_type=PhoneType.MOBILE,
        secondary_phone_type=PhoneType.WORK if row["secondary_phone"] else None,
        created_by_id=rng.randint(1, OPERATORS) if rng.random() < 0.8 else None,
        created_at=created, updated_at=created)
    return row


def _assign_operators(rng: random.Random, data: Dataset, cid: int) -> None:
    roll = rng.random()
    count = 2 if roll < 0.10 else 1 if roll < 0.45 else 0
    for op_id in rng.sample(range(1, OPERATORS + 1), count):
        data.customer_operators.append((cid, op_id))


def _contacts(rng: random.Random, data: Dataset, companies: list[dict], total: int) -> None:
    """Spread `total` contacts over the companies at random, at least one each (the product
    creates no company without a contact to receive e-mail); each company's first is main."""
    per_company = [1] * len(companies)
    for _ in range(max(0, total - len(companies))):
        per_company[rng.randrange(len(companies))] += 1
    for company, count in zip(companies, per_company, strict=True):
        domain = company["email"].split("@", 1)[1]
        for n in range(count):
            first, last = _person_name(rng)
            row = {"id": len(data.contacts) + 1, "customer_id": company["id"],
                   "first_name": first, "last_name": last, "email": _email(first, last, domain),
                   "phone": _phone(rng) if rng.random() < 0.8 else None,
                   "title": rng.choice(JOB_TITLES), "is_main": n == 0,
                   "created_at": company["created_at"], "updated_at": company["created_at"]}
            row["phone_type"] = PhoneType.WORK if row["phone"] else None
            row, tokens = _with_derived(Contact, row)
            data.contacts.append(row)
            data.contact_tokens += [(t, row["id"], listed) for t, listed in tokens]


def build(customers: int, contacts: int, password_hash: str, seed: int = 20240501) -> Dataset:
    """The whole registry: ~40% companies (they alone have contacts), ~60% persons."""
    started = time.perf_counter()
    rng = random.Random(seed)
    now = datetime(2025, 1, 1)
    data = Dataset(lookups=_lookups(), operators=_operators(rng, password_hash, now))
    data.known_customer_id = customers // 2 or 1
    for cid in range(1, customers + 1):
        row = _customer_row(rng, cid, rng.random() < 0.4, now)
        if cid == data.known_customer_id:
            row = _customer_row(rng, cid, False, now)
            row.update(KNOWN_CUSTOMER, email="peter.kovac@azet.sk", middle_name=None)
        if row["site_id"] is not None and rng.random() < 0.6:
            row["building_id"] = rng.choice([b["id"] for b in data.lookups["building"]
                                             if b["site_id"] == row["site_id"]])
        row, tokens = _with_derived(Customer, row)
        data.customers.append(row)
        data.customer_tokens += [(t, cid, listed) for t, listed in tokens]
        _assign_operators(rng, data, cid)
    companies = [c for c in data.customers if c["kind"] == CustomerKind.COMPANY]
    if companies:
        _contacts(rng, data, companies, contacts)
    data.build_seconds = time.perf_counter() - started
    return data


# -- rows of a CSV import (bench.load runs imports of them while users work) ----------------------

IMPORT_HEADERS = ["kind", "company_name", "registration_number", "first_name", "last_name", "email",
                  "primary_phone", "title", "contact_first_name", "contact_last_name", "contact_email",
                  "contact_phone", "contact_is_main"]


def _typed_phone(rng: random.Random) -> str:
    """A valid number written as people write it: E.164, spaced, or national with the 0."""
    e164 = _phone(rng)
    style = rng.random()
    if style < 0.4:
        return e164
    if style < 0.8:
        return f"{e164[:4]} {e164[4:7]} {e164[7:10]} {e164[10:]}"
    return "0" + e164[4:] if e164.startswith("+421") else e164


def import_rows(count: int, batch: int, seed: int = 20240601) -> list[dict[str, str]]:
    """`count` new customers for an import file (number `batch` of a series: its keys — company
    IDs and e-mails — are unique across the series and unused by `build`): about 60 % persons,
    40 % companies with their main contact. Headers are IMPORT_HEADERS, which the import maps
    by itself; every value is one the product accepts (tests/test_bench_data.py)."""
    rng = random.Random(seed * 1000 + batch)
    rows = []
    for n in range(count):
        row = dict.fromkeys(IMPORT_HEADERS, "")
        serial = batch * 1_000_000 + n
        if rng.random() < 0.4:
            business, city = rng.choice(BUSINESSES), rng.choice(CITIES)
            owner = rng.choice(SURNAMES)[0]
            domain = f"{fold(owner)}-{fold(business)}{serial}.sk".replace(" ", "")
            first, last = _person_name(rng)
            row.update(kind="company", company_name=f"{owner} {business} {city} {rng.choice(LEGAL_FORMS)}",
                       registration_number=str(90_000_000 + serial % 10_000_000), email=f"info@{domain}",
                       primary_phone=_typed_phone(rng), contact_first_name=first, contact_last_name=last,
                       contact_email=_email(first, last, domain), contact_phone=_typed_phone(rng),
                       contact_is_main="yes")
        else:
            first, last = _person_name(rng)
            row.update(kind="person", first_name=first, last_name=last,
                       email=_email(first, last, rng.choice(MAIL_DOMAINS), serial),
                       primary_phone=_typed_phone(rng), title=rng.choice(JOB_TITLES))
        rows.append(row)
    return rows


def import_csv(rows: list[dict[str, str]]) -> bytes:
    """The rows as a UTF-8 CSV file with its header row, as a spreadsheet would save it."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=IMPORT_HEADERS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
