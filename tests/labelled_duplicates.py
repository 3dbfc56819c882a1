"""A labelled set for measuring duplicate matching: a background registry and the queries to ask it.

`Background(customers, contacts)` generates, reproducibly (seeded), a registry of Slovak and Czech
customers — about 70 % private persons and 30 % companies, the companies with contacts — as rows
the application would have stored (`chunks()`: customer and contact rows with their derived
names and search tokens, ready for `bench.fast_load`). Afterwards `queries()` gives the labelled
queries: what a user types into the quick form or the API duplicate check (kind, name, e-mail,
phone, company ID, VAT ID) and the id of the background customer it duplicates, or None for a
legitimate new record.

The background
- Companies have 1–5 contacts each; to reach the benchmark's three contacts per customer (a
  million customers with three million contacts) about 2 % of them are large, with tens to
  thousands of contacts.
- Names follow Zipf-like frequencies: a few very common first names and surnames (Peter, Jana,
  Novák, Horváth, Kováč …) and a long tail of rarer surnames (real ones, then generated ones of
  the same shape), male and female surname forms (Kováč / Kováčová), some middle initials and
  academic titles as people type them ("Ing. Peter", "Nováková PhD.").
- Company names are combinations of place names, surnames, trade words, coined words and
  distinguishing parts with a legal form (s.r.o., a.s., spol. s r.o., k.s., v.o.s., GmbH …). No
  two companies share a name as duplicate matching compares names (legal form ignored): a
  business register does not register one name twice.
- Some customers have a second e-mail address or phone. Every e-mail (firstname.lastname.N@domain),
  phone number (E.164, Slovak and Czech mobiles and
  landlines), company ID (8 digits) and VAT ID (SK + 10 digits) is unique, and each is a value the
  product accepts as it stores it (services.contact_info normalisation, services.matching.compact_id).
- Derived columns and tokens come from the product's own pure functions (models.names,
  models.search_index), cached per name part; a sample of records is re-derived with the full
  formulas of `Customer.refresh_derived` / `Contact.refresh_derived` and compared.

The labelled queries
- A POSITIVE is a variant of an existing customer or contact (the label is the customer: the
  customer itself or a contact of it counts as found): typos (one edit, also in the first four
  letters), swapped word order, dropped diacritics, an academic title added or removed, the legal
  form spelt differently, a phone number in another format, an e-mail in other letter case, a
  company ID or VAT ID with spaces.
- EVIDENCE RULE: a positive carries enough evidence to identify its target — either an
  identifying key of the target (e-mail, phone, company ID or VAT ID, possibly reformatted), or a
  name that identifies it: the target's name, as matching compares names (folded words, any
  order, titles and legal forms left out), is borne by no other record of its kind (persons:
  person customers and contacts; companies: company customers), the query carries all of its
  words, and a name typed with a typo is neither another record's name nor one edit away from
  another record's name (the mistyped word read as any other registry word one edit from it).
- `strong` marks the positives whose query shares an identifying key with the target: those must
  come back strong.
- A NEGATIVE is a legitimate new record, always with keys (e-mail, phone, IDs) that exist nowhere
  in the background: a surname's other gender form (Kováč → Kováčová), the same first name with
  another surname, an exact namesake of a common name, a namesake of a rare name, a company name
  sharing words with an existing one, a brand-new person or company. None of them may be refused.

Judging: `judge(query, candidates)` reads find_duplicates' answer; `Scores.of(verdicts)` gives the
listed-in-top-5 recall, the strong recall and the false-refusal rate (tests/test_duplicate_quality.py,
bench/duplicates.py).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from rapidfuzz.distance import DamerauLevenshtein

from models.contact import Contact
from models.customer import Customer
from models.enums import CustomerKind
from models.name_vocabulary import word_variants
from models.names import _APOSTROPHES, TITLES, _legal_form_at_end, fold, folded_words, name_words
from models.search_index import TOKEN_LENGTH, is_word, name_tokens, words
from services.contact_info import normalise_email, normalise_phone

SEED = 20261130
PERSON_SHARE = 0.7
CONTACTS_PER_CUSTOMER = 3

MALE_FIRST = [
    "Peter", "Ján", "Martin", "Jozef", "Michal", "Tomáš", "Jan", "Pavel", "Jiří", "Lukáš", "Marek",
    "Miroslav", "Milan", "Jakub", "Štefan", "Juraj", "Vladimír", "Ladislav", "Marián", "Petr", "Josef",
    "Roman", "Dušan", "Igor", "Róbert", "František", "Matúš", "Zdeněk", "Ondřej", "Václav", "Karel",
    "Jaroslav", "Miloš", "Radovan", "Branislav", "Rastislav", "Ľubomír", "Stanislav", "Daniel", "David",
    "Filip", "Adam", "Samuel", "Šimon", "Patrik", "Richard", "Vojtěch", "Dominik", "Adrián", "Erik",
    "Oliver", "Kamil", "Radek", "Libor", "Vladislav", "Anton", "Emil", "Viktor", "Norbert", "Alexander",
    "Andrej", "Denis", "Jaromír", "Bohumil", "Zbyněk", "Aleš", "Luboš", "Přemysl", "Oldřich", "Vít",
    "Ivan", "Vlastimil", "Eduard", "Tibor", "Imrich", "Ernest", "Gabriel", "Kristián", "Sebastián",
    "Tadeáš", "Matej", "Boris", "Július", "Ľudovít", "Bohuslav", "Arnošt", "Viliam", "Rudolf",
]
FEMALE_FIRST = [
    "Jana", "Mária", "Eva", "Anna", "Zuzana", "Katarína", "Lucia", "Martina", "Monika", "Petra",
    "Veronika", "Lenka", "Hana", "Ivana", "Alžbeta", "Helena", "Andrea", "Michaela", "Marta", "Simona",
    "Barbora", "Kristína", "Tereza", "Dominika", "Lucie", "Markéta", "Kateřina", "Jitka", "Jaroslava",
    "Věra", "Ľudmila", "Dagmar", "Zdenka", "Gabriela", "Renáta", "Silvia", "Iveta", "Miroslava",
    "Daniela", "Denisa", "Natália", "Nikola", "Klára", "Adéla", "Vladimíra", "Soňa", "Oľga", "Žaneta",
    "Viera", "Božena", "Emília", "Terézia", "Nina", "Ema", "Sofia", "Laura", "Viktória", "Karolína",
    "Šárka", "Radka", "Pavla", "Blanka", "Irena", "Alena", "Magdaléna", "Romana", "Erika", "Beáta",
    "Anežka", "Vanda", "Ľubica", "Marcela", "Kamila", "Jarmila", "Eliška", "Milena", "Libuše",
    "Drahomíra", "Stanislava", "Bronislava", "Edita", "Henrieta", "Júlia", "Agáta", "Róberta",
]
# The other gender's first name, for the Kováč / Kováčová hard negatives.
COUNTERPART = {
    "Peter": "Petra", "Ján": "Jana", "Jan": "Jana", "Martin": "Martina", "Michal": "Michaela",
    "Pavel": "Pavla", "Miroslav": "Miroslava", "Daniel": "Daniela", "Jaroslav": "Jaroslava",
    "Stanislav": "Stanislava", "Vladimír": "Vladimíra", "Dominik": "Dominika", "Denis": "Denisa",
    "Radek": "Radka", "Kamil": "Kamila", "Viktor": "Viktória", "Kristián": "Kristína",
    "Šimon": "Simona", "Marián": "Mária", "Róbert": "Róberta", "Július": "Júlia", "Bronislav": "Bronislava",
}
COUNTERPART.update({f: m for m, f in list(COUNTERPART.items())})
# (male, female) forms, the most common first.
SURNAMES = [
    ("Novák", "Nováková"), ("Horváth", "Horváthová"), ("Kováč", "Kováčová"), ("Varga", "Vargová"),
    ("Tóth", "Tóthová"), ("Svoboda", "Svobodová"), ("Novotný", "Novotná"), ("Nagy", "Nagyová"),
    ("Dvořák", "Dvořáková"), ("Baláž", "Balážová"), ("Černý", "Černá"), ("Szabó", "Szabóová"),
    ("Procházka", "Procházková"), ("Molnár", "Molnárová"), ("Kučera", "Kučerová"), ("Balog", "Balogová"),
    ("Veselý", "Veselá"), ("Lukáč", "Lukáčová"), ("Horák", "Horáková"), ("Kollár", "Kollárová"),
    ("Němec", "Němcová"), ("Németh", "Némethová"), ("Marek", "Mareková"), ("Oravec", "Oravcová"),
    ("Pokorný", "Pokorná"), ("Šimko", "Šimková"), ("Pospíšil", "Pospíšilová"), ("Polák", "Poláková"),
    ("Hájek", "Hájková"), ("Kráľ", "Kráľová"), ("Jelínek", "Jelínková"), ("Hudák", "Hudáková"),
    ("Král", "Králová"), ("Kovács", "Kovácsová"), ("Růžička", "Růžičková"), ("Gajdoš", "Gajdošová"),
    ("Beneš", "Benešová"), ("Čierny", "Čierna"), ("Fiala", "Fialová"), ("Mészáros", "Mészárosová"),
    ("Sedláček", "Sedláčková"), ("Kočiš", "Kočišová"), ("Doležal", "Doležalová"), ("Zeman", "Zemanová"),
    ("Kolář", "Kolářová"), ("Ďurica", "Ďuricová"), ("Navrátil", "Navrátilová"), ("Mikuš", "Mikušová"),
    ("Čermák", "Čermáková"), ("Štefánik", "Štefániková"), ("Vaněk", "Vaňková"), ("Hronec", "Hroncová"),
    ("Urban", "Urbanová"), ("Bartoš", "Bartošová"), ("Blažek", "Blažková"), ("Fabián", "Fabiánová"),
    ("Kříž", "Křížová"), ("Sedlák", "Sedláková"), ("Kovář", "Kovářová"), ("Krajčír", "Krajčírová"),
    ("Kratochvíl", "Kratochvílová"), ("Šťastný", "Šťastná"), ("Vlček", "Vlčková"), ("Ševčík", "Ševčíková"),
    ("Musil", "Musilová"), ("Gregor", "Gregorová"), ("Kopecký", "Kopecká"), ("Blaško", "Blašková"),
    ("Šimek", "Šimková"), ("Kubík", "Kubíková"), ("Konečný", "Konečná"), ("Mráz", "Mrázová"),
    ("Malý", "Malá"), ("Pavlík", "Pavlíková"), ("Holub", "Holubová"), ("Jurčo", "Jurčová"),
    ("Čech", "Čechová"), ("Michalík", "Michalíková"), ("Štěpánek", "Štěpánková"), ("Matuška", "Matušková"),
    ("Staněk", "Staňková"), ("Halás", "Halásová"), ("Kadlec", "Kadlecová"), ("Slovák", "Slováková"),
    ("Dostál", "Dostálová"), ("Bednár", "Bednárová"), ("Soukup", "Soukupová"), ("Kubiš", "Kubišová"),
    ("Mareš", "Marešová"), ("Rusnák", "Rusnáková"), ("Moravec", "Moravcová"), ("Richter", "Richterová"),
    ("Sýkora", "Sýkorová"), ("Mihálik", "Miháliková"), ("Tichý", "Tichá"), ("Gašpar", "Gašparová"),
    ("Valenta", "Valentová"), ("Dudáš", "Dudášová"), ("Vávra", "Vávrová"), ("Benko", "Benková"),
    ("Matoušek", "Matoušková"), ("Lacko", "Lacková"), ("Bláha", "Bláhová"), ("Hric", "Hricová"),
    ("Říha", "Říhová"), ("Šoltés", "Šoltésová"), ("Bureš", "Burešová"), ("Kamenský", "Kamenská"),
    ("Hruška", "Hrušková"), ("Mikula", "Mikulová"), ("Mašek", "Mašková"), ("Ondrejka", "Ondrejková"),
    ("Pešek", "Pešková"), ("Jankovič", "Jankovičová"), ("Kolárik", "Koláriková"), ("Kolár", "Kolárová"),
]
# Generated tail surnames: onset + vowel + consonant + an ending with its female form.
_ONSETS = ["B", "Br", "Bl", "Č", "Ch", "D", "Dr", "F", "G", "H", "Hr", "Hl", "J", "K", "Kr", "Kl", "L",
           "M", "Ml", "N", "P", "Pr", "Pl", "R", "S", "Sk", "Sl", "St", "Str", "Š", "Šk", "Št", "T", "Tr",
           "V", "Vl", "Vr", "Z", "Zl", "Ž", "Ď", "Ľ"]
_VOWELS = ["a", "e", "i", "o", "u", "á", "í", "ú", "y", "ô", "ä", "é"]
_CODAS = ["b", "d", "k", "l", "m", "n", "p", "r", "s", "t", "v", "ch", "č", "š", "ž", "ľ", "ň", "c", "z", "j",
          "bl", "dr", "sl", "st", "vr"]
_ENDINGS = [("ák", "áková"), ("ík", "íková"), ("an", "anová"), ("ár", "árová"), ("áč", "áčová"),
            ("ko", "ková"), ("ský", "ská"), ("ný", "ná"), ("ovič", "ovičová"), ("uš", "ušová"),
            ("ec", "cová"), ("a", "ová"), ("ik", "iková"), ("o", "ová"), ("ka", "ková"), ("el", "elová"),
            ("ota", "otová"), ("ina", "inová"), ("ár", "árová"), ("ula", "ulová")]
TAIL_SURNAMES = 40_000
PRE_TITLES = [("Ing.", 40), ("Mgr.", 30), ("Bc.", 15), ("MUDr.", 5), ("JUDr.", 5), ("PhDr.", 3), ("RNDr.", 2)]
POST_TITLES = [("PhD.", 10), ("CSc.", 2), ("MBA", 2)]
MAIL_DOMAINS = [("gmail.com", 30), ("azet.sk", 15), ("zoznam.sk", 8), ("post.sk", 6), ("centrum.sk", 6),
                ("seznam.cz", 15), ("centrum.cz", 5), ("email.cz", 5), ("atlas.sk", 3), ("outlook.com", 4),
                ("yahoo.com", 2), ("icloud.com", 1)]
JOB_TITLES = ["Vedúci oddelenia", "Projektový manažér", "Technik", "Asistentka", "Riaditeľ", "Analytik",
              "Referent", "Účtovníčka", "Správca siete", "Obchodný zástupca", "Konateľ", "Ekonóm",
              "Skladník", "Vedoucí provozu", "Jednatel", "Office manager", "Personalista", "Programátor"]
PLACES = [
    "Tatra", "Tatry", "Bratislava", "Košice", "Žilina", "Prešov", "Nitra", "Trnava", "Trenčín", "Poprad",
    "Zvolen", "Martin", "Levice", "Komárno", "Michalovce", "Piešťany", "Senica", "Skalica", "Ružomberok",
    "Liptov", "Orava", "Spiš", "Šariš", "Zemplín", "Gemer", "Záhorie", "Považie", "Pohronie", "Kysuce",
    "Turiec", "Podunajsko", "Hron", "Váh", "Dunaj", "Morava", "Ipeľ", "Fatra", "Karpaty", "Javorina",
    "Sitno", "Kriváň", "Praha", "Brno", "Ostrava", "Plzeň", "Olomouc", "Liberec", "Zlín", "Jihlava",
    "Pardubice", "Kladno", "Opava", "Vysočina", "Šumava", "Krkonoše", "Beskydy", "Vltava", "Labe", "Haná",
    "Slovácko", "Valašsko", "Chodsko", "Danubia", "Carpathia", "Bohemia", "Moravia", "Slovakia",
]
TRADES = [
    "Stavby", "Stavebniny", "Stavmont", "Elektro", "Elektromont", "Montáže", "Logistics", "Logistika",
    "Trans", "Transport", "Doprava", "Agro", "Farma", "Mliekareň", "Pekáreň", "Tlačiareň", "Software",
    "Softvér", "Systems", "Solutions", "Consulting", "Invest", "Reality", "Energo", "Energia", "Plast",
    "Kovo", "Drevo", "Nábytok", "Auto", "Autoservis", "Servis", "Gastro", "Medical", "Pharma", "Lekáreň",
    "Textil", "Obchod", "Trade", "Trading", "Group", "Holding", "Development", "Projekt", "Data", "Net",
    "Tech", "Technology", "Strojárne", "Sklo", "Papier", "Chémia", "Ekológia", "Voda", "Kúrenie", "Okná",
    "Strechy", "Izolácie", "Klima", "Security", "Marketing", "Media", "Print", "Audit", "Účtovníctvo",
    "Poradenstvo", "Ateliér", "Design", "Catering", "Hotel", "Stavitelství", "Zámečnictví",
]
DISTINCTIONS = [
    "Plus", "Pro", "Alfa", "Beta", "Gama", "Delta", "Omega", "Nova", "Top", "Euro", "Inter", "Central",
    "Partner", "Partners", "Team", "Centrum", "Univerzal", "Expert", "Profi", "Prima", "Optima", "Maxima",
    "Kvalita", "Standard", "Premium", "Real", "Eko", "Bio", "Smart", "Global", "Regio", "Line", "Point",
    "Star", "Sun", "Hill", "Vista", "Impex", "Komplet", "Servis", "Market", "Systém", "Invest", "Union",
]
_COINED_STEMS = ["Stav", "Elektr", "Agr", "Mont", "Kov", "Plast", "Drev", "Tech", "Soft", "Dat", "Trans",
                 "Energ", "Ek", "Bi", "Med", "Farm", "Chem", "Term", "Hydr", "Ge", "Inf", "Kom", "Sys",
                 "Prom", "Gal", "Vit", "Lum", "Nor", "Ast", "Ver", "Tatr", "Slov", "Dun", "Karp", "Bohem"]
_COINED_LINKS = ["o", "a", "i", "e"]
_COINED_SYLLABLES = ["", "ma", "ri", "to", "la", "ne", "sa", "ve", "ko", "lu", "mi", "ra", "po", "da", "ti",
                     "re", "na", "xa", "zo", "ka", "vo", "ber", "mar", "tel", "dan", "sol", "pet", "lin"]
_COINED_ENDINGS = ["mont", "stav", "trade", "tech", "servis", "plast", "kov", "net", "soft", "log", "pro",
                   "real", "invest", "med", "com", "lux", "tex", "gal", "chem", "prim", "dom", "sys", "flex"]
LEGAL_FORMS = [("s.r.o.", 55), ("a.s.", 12), ("spol. s r.o.", 10), ("s. r. o.", 5), ("k.s.", 3),
               ("v.o.s.", 3), ("GmbH", 3), ("Ltd.", 2), ("", 7)]
# Other spellings of the same legal form, as users type them.
LEGAL_SPELLINGS = {
    "s.r.o.": ["s. r. o.", "spol. s r.o.", "spol. s r. o.", "S.R.O.", "sro", "s.r.o"],
    "spol. s r.o.": ["s.r.o.", "spol. s r. o.", "s. r. o.", "spol.s r.o."],
    "s. r. o.": ["s.r.o.", "spol. s r.o.", "S. R. O."],
    "a.s.": ["a. s.", "A.S.", "as"],
    "k.s.": ["k. s.", "ks"],
    "v.o.s.": ["v. o. s.", "vos"],
    "GmbH": ["G.m.b.H.", "Gmbh", "GMBH"],
    "Ltd.": ["Ltd", "Limited"],
    "": [""],
}
# E.164 number plans: (country code, prefix, subscriber digits); all valid for phonenumbers.
SK_MOBILE = [("421", p, 6) for p in ("901", "902", "903", "904", "905", "906", "907", "908", "910", "911",
                                     "912", "914", "915", "916", "917", "918", "919", "940", "944", "948",
                                     "949", "950", "951")]
CZ_MOBILE = [("420", p, 6) for p in ("601", "602", "603", "604", "605", "606", "607", "608", "702", "703",
                                     "704", "705", "720", "721", "722", "723", "724", "725", "730", "731",
                                     "732", "733", "734", "736", "737", "739", "773", "774", "775", "776",
                                     "777", "778", "779", "790", "791", "792", "793", "797", "799")]
SK_LANDLINE = [("421", str(p), 7) for p in (31, 32, 33, 34, 35, 36, 37, 38, 41, 42, 43, 44, 45, 46, 47,
                                            48, 51, 52, 53, 54, 55, 56, 57, 58)]
CZ_LANDLINE = [("420", p, 7) for p in ("31", "32", "35", "37", "38", "39", "41", "46", "47", "48", "49",
                                       "51", "53", "54", "55", "56", "57", "58", "59")]
KEY_FIELDS = ("email", "phone", "registration_number", "vat_id")
VERIFY_EVERY = 4099  # every so many records are re-derived by their model's own refresh_derived
NAME_CACHE = 300_000  # names whose tokens are kept: the common ones come first

CUSTOMER_COLUMNS = ("id", "kind", "display_name", "sort_name", "company_name", "registration_number",
                    "vat_id", "first_name", "middle_name", "last_name", "email", "primary_phone",
                    "primary_phone_type", "secondary_email", "secondary_phone", "secondary_phone_type",
                    "status_id", "version")
CONTACT_COLUMNS = ("id", "customer_id", "first_name", "last_name", "display_name", "sort_name", "email",
                   "phone", "phone_type", "title", "is_main", "is_active", "version")


def _cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _zipf(count: int, offset: float, exponent: float) -> list[float]:
    """Zipf–Mandelbrot weights 1/(rank + offset)^exponent for ranks 1..count."""
    return [1.0 / (rank + offset) ** exponent for rank in range(1, count + 1)]


# models.names.fold letter by letter (it folds every letter on its own: case, then diacritics),
# as one str.translate: the registry's million company names would otherwise spend most of their
# time folding. Checked against fold() on the verified sample.
_FOLD_TABLE = {c: fold(chr(c)) for c in range(0x80, 0x250)}
_WORD = re.compile(r"[a-z0-9]+")


def _fold(text: str) -> str:
    return text.casefold().translate(_FOLD_TABLE)


def _words(*texts: str | None) -> list[str]:
    """models.search_index.words, with _fold."""
    return [w[:TOKEN_LENGTH] for text in texts if text for w in _WORD.findall(_fold(text))]


def _company_words(text: str) -> tuple[str, ...]:
    """models.names.name_words(text, company=True), with _fold."""
    found = _WORD.findall(_APOSTROPHES.sub("", _fold(text)))
    while (size := _legal_form_at_end(found)) and len(found) > size:
        del found[-size:]
    return tuple(found)


def _name_key(name: tuple[str, ...]) -> str:
    """models.names.name_key of a name's words."""
    if len(name) == 2:
        a, b = name
        return f"{a} {b}" if a <= b else f"{b} {a}"
    return " ".join(sorted(name))


def strip_diacritics(text: str) -> str:
    """"Kováč" → "Kovac", letter case kept (what a user without a Slovak keyboard types)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("Ľ", "L").replace("ľ", "l")


def _tail_surnames(count: int, taken: set[str]) -> list[tuple[str, str]]:
    rng = random.Random(7)
    found: list[tuple[str, str]] = []
    seen = set(taken)
    while len(found) < count:
        stem = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        if rng.random() < 0.35:
            stem += rng.choice(_VOWELS) + rng.choice(_CODAS)
        male, female = rng.choice(_ENDINGS)
        if stem[-1] in "aeiouáíúyôäé" and male[0] in "aeiouáíúyôäé":
            continue
        pair = (stem + male, stem + female)
        if fold(pair[0]) in seen or fold(pair[1]) in seen:
            continue
        seen.update((fold(pair[0]), fold(pair[1])))
        found.append(pair)
    return found


class PhonePlan:
    """Unique valid numbers of one kind: the n-th number drawn is an affine permutation of n over
    the plan's whole number space, so numbers look random and never repeat."""

    MULTIPLIER = 1_000_000_007  # a prime: coprime with every capacity below

    def __init__(self, plan: list[tuple[str, str, int]], offset: int):
        self.plan = plan
        self.size = 10 ** plan[0][2]
        assert all(10 ** digits == self.size for _, _, digits in plan)
        self.capacity = len(plan) * self.size
        assert math.gcd(self.MULTIPLIER, self.capacity) == 1
        self.offset = offset
        self.drawn = 0

    def draw(self) -> str:
        index = (self.MULTIPLIER * self.drawn + self.offset) % self.capacity
        self.drawn += 1
        country, prefix, digits = self.plan[index // self.size]
        return f"+{country}{prefix}{index % self.size:0{digits}d}"


def fast_phone_tokens(e164: str) -> set[str]:
    """phone_tokens for the numbers of these plans without phonenumbers (verified on samples):
    the whole number, the national significant number, and for Slovakia the trunk-prefixed form."""
    digits = e164[1:]
    national = digits[3:]
    return {digits, national, "0" + national} if digits.startswith("421") else {digits, national}


@dataclass
class Chunk:
    """Rows for one batch of customers (with their contacts), in CUSTOMER_COLUMNS / CONTACT_COLUMNS
    order; tokens per record as (owner id, its tokens in the order the application's flush writes
    them: sorted)."""

    customers: list[tuple] = field(default_factory=list)
    contacts: list[tuple] = field(default_factory=list)
    customer_tokens: list[tuple[int, list[str]]] = field(default_factory=list)
    contact_tokens: list[tuple[int, list[str]]] = field(default_factory=list)

    def customer_token_rows(self) -> Iterator[tuple[str, int, str | None]]:
        """(token, customer id, the name it is listed under) rows, record by record."""
        return self._token_rows(self.customer_tokens, self.customers, CUSTOMER_COLUMNS)

    def contact_token_rows(self) -> Iterator[tuple[str, int, str | None]]:
        return self._token_rows(self.contact_tokens, self.contacts, CONTACT_COLUMNS)

    @staticmethod
    def _token_rows(tokens: list[tuple[int, list[str]]], owners: list[tuple],
                    columns: tuple[str, ...]) -> Iterator[tuple[str, int, str | None]]:
        # As models.search_index.sync_tokens lists them: word tokens under the owner's sort
        # name (the generator merges nobody), name pairs and whole names not at all.
        sort_names = {row[0]: row[columns.index("sort_name")] for row in owners}
        for owner, found in tokens:
            for token in found:
                yield token, owner, sort_names[owner] if is_word(token) else None


@dataclass(frozen=True)
class Query:
    """One labelled duplicate check: what the user typed, and which customer it duplicates
    (`target`, None for a legitimate new record); `strong` when an identifying key agrees."""

    case: str
    kind: str
    name: str
    email: str | None = None
    phone: str | None = None
    registration_number: str | None = None
    vat_id: str | None = None
    phone_region: str = "SK"
    target: int | None = None
    target_contact: int | None = None
    strong: bool = False

    def probe_arguments(self) -> dict:
        """Keyword arguments for services.duplicates.make_probe."""
        return {"kind": self.kind, "name": self.name, "email": self.email, "phone": self.phone,
                "registration_number": self.registration_number, "vat_id": self.vat_id,
                "phone_region": self.phone_region}


@dataclass
class _Part:
    """A first name or surname as typed (maybe with a title), with what derives from it."""

    text: str
    folded: str  # models.names.fold(text): fold works letter by letter, so parts fold alone
    words: frozenset[str]  # search tokens: every folded word, titles too
    name_words: tuple[str, ...]  # as matching compares names: titles left out
    mail: str  # the part in an e-mail address


def _part(text: str) -> _Part:
    name = tuple(w for w in folded_words(text) if w not in TITLES)
    return _Part(text, fold(text), frozenset(words(text)), name, "".join(name))


class Background:
    """The registry. Iterate `chunks()` once (it generates as it goes); then `name_words`,
    `counts` and `queries()` are available."""

    def __init__(self, customers: int, contacts: int | None = None, *, seed: int = SEED,
                 person_share: float = PERSON_SHARE, pool: int = 40_000):
        self.customers = customers
        self.contacts_wanted = CONTACTS_PER_CUSTOMER * customers if contacts is None else contacts
        self.seed = seed
        self.rng = random.Random(seed)
        self.status_ids = (1, 2)  # (active, inactive): the loader sets the database's own
        self.is_company = [self.rng.random() >= person_share for _ in range(customers)]
        companies = sum(self.is_company)
        self.contact_counts = self._contact_counts(companies)
        self.contact_total = sum(self.contact_counts)
        self.surnames = SURNAMES + _tail_surnames(TAIL_SURNAMES, {fold(n) for p in SURNAMES for n in p})
        self.surname_cum = _cumulative(_zipf(len(self.surnames), 8.0, 1.0))
        self.first_names = (MALE_FIRST, FEMALE_FIRST)
        self.first_cum = (_cumulative(_zipf(len(MALE_FIRST), 2.0, 1.05)),
                          _cumulative(_zipf(len(FEMALE_FIRST), 2.0, 1.05)))
        self.pre_titles = [t for t, _ in PRE_TITLES]
        self.pre_cum = _cumulative([w for _, w in PRE_TITLES])
        self.post_titles = [t for t, _ in POST_TITLES]
        self.post_cum = _cumulative([w for _, w in POST_TITLES])
        self.domains = [d for d, _ in MAIL_DOMAINS]
        self.domain_cum = _cumulative([w for _, w in MAIL_DOMAINS])
        self.legal_forms = [f for f, _ in LEGAL_FORMS]
        self.legal_cum = _cumulative([w for _, w in LEGAL_FORMS])
        self.phones = {"sk": PhonePlan(SK_MOBILE, 12_345), "cz": PhonePlan(CZ_MOBILE, 67_890),
                       "sk_land": PhonePlan(SK_LANDLINE, 4_242), "cz_land": PhonePlan(CZ_LANDLINE, 777)}
        self.mail_n = 0
        self.company_n = 0
        # What the queries need, gathered while generating.
        records = customers + self.contact_total
        self.pool_share = min(1.0, pool / max(records, 1))
        self.pool_rng = random.Random(seed + 1)
        self.pool_persons: list[dict] = []  # person customers and contacts
        self.pool_companies: list[dict] = []
        self.counts: dict[bool, dict[str, int]] = {False: {}, True: {}}  # company? -> name key -> records
        self.name_words: set[str] = set()
        self.verified = 0
        self.verify_every = max(7, min(VERIFY_EVERY, (customers + self.contact_total) // 300))
        self._parts: dict[tuple, _Part] = {}
        self._domain_words: dict[str, frozenset[str]] = {}
        self._title_words: dict[str, frozenset[str]] = {}
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._generated = False

    # -- sizes ------------------------------------------------------------------------------------

    def _contact_counts(self, companies: int) -> list[int]:
        """1–5 contacts for most companies; what the wanted total needs beyond that goes to a few
        large companies (log-uniform sizes, 20 to 2,000 before scaling)."""
        rng = random.Random(self.seed + 2)
        counts = rng.choices([1, 2, 3, 4, 5], weights=[30, 25, 20, 15, 10], k=companies)
        extra = self.contacts_wanted - sum(counts)
        if extra <= 0 or companies == 0:
            return counts
        large = rng.sample(range(companies), max(1, companies // 50))
        raw = [math.exp(rng.uniform(math.log(20), math.log(2000))) for _ in large]
        scale = extra / sum(raw)
        given = 0
        for index, size in zip(large, raw, strict=True):
            add = int(size * scale)
            counts[index] += add
            given += add
        counts[large[0]] += extra - given
        return counts

    # -- name parts -------------------------------------------------------------------------------

    def _pick(self, cumulative: list[float]) -> int:
        return bisect.bisect(cumulative, self.rng.random() * cumulative[-1])

    def _person_parts(self) -> tuple[int, int, int, str, str, str]:
        """(gender 0 male / 1 female, first index, surname index, pre-title, middle, post-title)."""
        rng = self.rng
        gender = 1 if rng.random() < 0.5 else 0
        first = self._pick(self.first_cum[gender])
        surname = self._pick(self.surname_cum)
        roll = rng.random()
        pre = self.pre_titles[self._pick(self.pre_cum)] if roll < 0.09 else ""
        post = self.post_titles[self._pick(self.post_cum)] if rng.random() < 0.012 else ""
        middle = ""
        if rng.random() < 0.04:
            middle = rng.choice("ABCDEFGHJKLMNOPRSTVZ") + ("." if rng.random() < 0.5 else "")
        return gender, first, surname, pre, middle, post

    def _cached_part(self, key: tuple, text: str) -> _Part:
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _part(text)
        return part

    def _first(self, gender: int, index: int, title: str) -> _Part:
        name = self.first_names[gender][index]
        return self._cached_part(("f", gender, index, title), f"{title} {name}" if title else name)

    def _last(self, gender: int, index: int, title: str) -> _Part:
        name = self.surnames[index][gender]
        return self._cached_part(("l", gender, index, title), f"{name} {title}" if title else name)

    def _middle(self, text: str) -> _Part | None:
        return self._cached_part(("m", text), text) if text else None

    def _name_tokens(self, name: tuple[str, ...]) -> tuple[str, ...]:
        """models.search_index.name_tokens, cached for the most frequent names."""
        found = self._names.get(name)
        if found is None:
            found = tuple(name_tokens(name))
            if len(self._names) < NAME_CACHE:
                self._names[name] = found
        return found

    def _domain(self, domain: str) -> frozenset[str]:
        found = self._domain_words.get(domain)
        if found is None:
            found = self._domain_words[domain] = frozenset(words(domain))
        return found

    def _title(self, title: str) -> frozenset[str]:
        found = self._title_words.get(title)
        if found is None:
            found = self._title_words[title] = frozenset(words(title))
        return found

    # -- keys -------------------------------------------------------------------------------------

    def _email(self, first: _Part, last: _Part, domain: str, tokens: list[str]) -> str:
        """A new unique address firstname.lastname.N@domain; its tokens go to `tokens`."""
        self.mail_n = n = self.mail_n + 1
        number = str(n)
        tokens += self._domain(domain)
        tokens.append(number)
        tokens.append(last.mail)
        if first.mail:
            tokens.append(first.mail)
            return f"{first.mail}.{last.mail}.{number}@{domain}"
        return f"{last.mail}.{number}@{domain}"

    def _phone(self, plan: str, tokens: list[str]) -> str:
        number = self.phones[plan].draw()
        tokens += fast_phone_tokens(number)
        return number

    def _company_ids(self) -> tuple[str, str]:
        """A company ID (8 digits) and a VAT ID (SK + 10 digits), both unique."""
        n = self.company_n
        self.company_n += 1
        registration = 10_000_000 + (1_000_000_007 * n + 31_337) % 90_000_000
        vat = 2_000_000_000 + (998_244_353 * n + 4_711) % 100_000_000
        return str(registration), f"SK{vat}"

    # -- records ----------------------------------------------------------------------------------

    def _status(self) -> int:
        return self.status_ids[1] if self.rng.random() < 0.05 else self.status_ids[0]

    def _count(self, company: bool, name: tuple[str, ...]) -> str:
        key = _name_key(name)
        counts = self.counts[company]
        counts[key] = counts.get(key, 0) + 1
        return key

    def _person(self, cid: int, chunk: Chunk) -> None:
        rng = self.rng
        gender, fi, si, pre, middle_text, post = self._person_parts()
        first, last = self._first(gender, fi, pre), self._last(gender, si, post)
        middle = self._middle(middle_text)
        display, sort = f"{last.text}, {first.text}", f"{last.folded}, {first.folded}"
        tokens = [*first.words, *last.words]
        if middle is not None:
            name = first.name_words + middle.name_words + last.name_words
            tokens += middle.words
            shown = middle.text.strip().rstrip(".")
            if shown:
                display, sort = f"{display} {shown}.", f"{sort} {fold(shown)}."
        else:
            name = first.name_words + last.name_words
        tokens += self._name_tokens(name)
        email = phone = phone_type = None
        if rng.random() < 0.92:
            email = self._email(first, last, self.domains[self._pick(self.domain_cum)], tokens)
        if rng.random() < 0.88:
            phone = self._phone("sk" if rng.random() < 0.7 else "cz", tokens)
            phone_type = "mobile"
        second_email, second_phone, second_type = self._secondary(first, last, "", tokens)
        key = self._count(False, name)
        row = (cid, "person", display, sort[:255], None, None, None, first.text,
               middle.text if middle else None, last.text, email, phone, phone_type, second_email,
               second_phone, second_type, self._status(), 1)
        chunk.customers.append(row)
        found = set(tokens)
        chunk.customer_tokens.append((cid, sorted(found)))
        if cid % self.verify_every == 0:
            self._verify_customer(row, found)
        self._maybe_pool(cid, None, gender, fi, si, first, middle, last, (pre, post), email, phone, key, name,
                         secondary_email=second_email)

    def _secondary(self, first: _Part | None, last: _Part | None, domain: str,
                   tokens: list[str]) -> tuple[str | None, str | None, str | None]:
        """A secondary e-mail (6 %) and phone (5 %), as some customers have."""
        rng = self.rng
        email = phone = phone_type = None
        if rng.random() < 0.06:
            if first is not None and last is not None:
                email = self._email(first, last, self.domains[self._pick(self.domain_cum)], tokens)
            else:
                self.mail_n += 1
                email = f"fakturacia.{self.mail_n}@{domain}"
                tokens += _words(email)
        if rng.random() < 0.05:
            phone = self._phone("sk_land", tokens)
            phone_type = "work"
        return email, phone, phone_type

    def _company_name(self) -> tuple[str, str, str]:
        """(company name, the name without its legal form, the legal form)."""
        rng = self.rng
        for attempt in range(20):
            base = self._company_base(rng)
            if attempt >= 5:
                base += f" {rng.choice(DISTINCTIONS)} {rng.randrange(2, 99)}"
            legal = self.legal_forms[self._pick(self.legal_cum)]
            full = f"{base} {legal}" if legal else base
            if _name_key(_company_words(full)) not in self.counts[True] and len(full) <= 200:
                return full, base, legal
        raise RuntimeError("no unused company name found")  # pragma: no cover

    def _coined(self, rng: random.Random) -> str:
        return (rng.choice(_COINED_STEMS) + rng.choice(_COINED_LINKS) + rng.choice(_COINED_SYLLABLES)
                + rng.choice(_COINED_ENDINGS))

    def _company_base(self, rng: random.Random) -> str:
        roll = rng.random()
        surname = self.surnames[self._pick(self.surname_cum)][0]
        if roll < 0.18:
            return self._coined(rng)
        if roll < 0.30:
            return f"{self._coined(rng)} {rng.choice(PLACES)}"
        if roll < 0.45:
            return f"{rng.choice(PLACES)} {rng.choice(TRADES)} {rng.choice(DISTINCTIONS)}"
        if roll < 0.60:
            return f"{surname} {rng.choice(TRADES)}"
        if roll < 0.65:
            return f"{surname} & {self.surnames[self._pick(self.surname_cum)][0]}"
        if roll < 0.75:
            initials = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVZ") for _ in range(rng.choice((2, 3, 3))))
            return f"{initials} {rng.choice(TRADES)} {rng.choice(PLACES)}"
        if roll < 0.80:
            return f"{rng.choice(TRADES)} {rng.choice(PLACES)}"
        if roll < 0.85:
            return f"{surname} a syn" if rng.random() < 0.5 else f"{surname} - {rng.choice(TRADES)}"
        if roll < 0.95:
            return f"{self._coined(rng)} {rng.choice(DISTINCTIONS)}"
        return f"{rng.choice(PLACES)} {rng.choice(TRADES)}"

    def _company(self, cid: int, chunk: Chunk, contacts: int) -> None:
        rng = self.rng
        full, base, legal = self._company_name()
        name = _company_words(full)
        registration, vat = self._company_ids()
        vat_id = vat if rng.random() < 0.8 else None
        domain = "-".join(name[:2])[:40] + (".cz" if rng.random() < 0.3 else ".sk")
        tokens = [*_words(full, registration, vat_id), *name_tokens(name)]
        email = phone = phone_type = None
        if rng.random() < 0.8:
            self.mail_n += 1
            email = f"{rng.choice(('info', 'office', 'obchod', 'servis'))}.{self.mail_n}@{domain}"
            tokens += _words(email)
        if rng.random() < 0.85:
            plan = rng.choice(("sk_land", "cz_land", "sk", "cz"))
            phone = self._phone(plan, tokens)
            phone_type = "work" if plan.endswith("land") else "mobile"
        second_email, second_phone, second_type = self._secondary(None, None, domain, tokens)
        key = self._count(True, name)
        self.name_words.update(name)
        row = (cid, "company", full, _fold(full)[:255], full, registration, vat_id, None, None, None, email,
               phone, phone_type, second_email, second_phone, second_type, self._status(), 1)
        chunk.customers.append(row)
        found = set(tokens)
        chunk.customer_tokens.append((cid, sorted(found)))
        if cid % self.verify_every == 0:
            self._verify_customer(row, found)
        if self.pool_rng.random() < self.pool_share:
            self.pool_companies.append({"id": cid, "name": full, "base": base, "legal": legal,
                                        "email": email, "phone": phone, "secondary_email": second_email,
                                        "registration_number": registration,
                                        "vat_id": vat_id, "key": key, "words": name})
        for n in range(contacts):
            self._contact(cid, domain, n == 0, chunk)

    def _contact(self, cid: int, domain: str, main: bool, chunk: Chunk) -> None:
        rng = self.rng
        contact_id = self.contact_n = self.contact_n + 1
        gender, fi, si, pre, _, post = self._person_parts()
        first, last = self._first(gender, fi, pre), self._last(gender, si, post)
        name = first.name_words + last.name_words
        tokens = [*first.words, *last.words, *self._name_tokens(name)]
        title = rng.choice(JOB_TITLES) if rng.random() < 0.6 else None
        if title:
            tokens += self._title(title)
        email = phone = None
        if main or rng.random() < 0.95:
            email = self._email(first, last, domain, tokens)
        if rng.random() < 0.8:
            phone = self._phone("sk" if rng.random() < 0.7 else "cz", tokens)
        key = self._count(False, name)
        row = (contact_id, cid, first.text, last.text, f"{first.text} {last.text}",
               f"{last.folded} {first.folded}"[:200], email, phone, "work" if phone else None, title, main,
               True, 1)
        chunk.contacts.append(row)
        found = set(tokens)
        chunk.contact_tokens.append((contact_id, sorted(found)))
        if contact_id % self.verify_every == 0:
            self._verify_contact(row, found)
        self._maybe_pool(cid, contact_id, gender, fi, si, first, None, last, (pre, post), email, phone, key,
                         name)

    def _maybe_pool(self, cid: int, contact_id: int | None, gender: int, fi: int, si: int, first: _Part,
                    middle: _Part | None, last: _Part, titles: tuple[str, str], email: str | None,
                    phone: str | None, key, name, **extra) -> None:
        """Keep a sample of the persons made, for queries that duplicate them."""
        if self.pool_rng.random() >= self.pool_share:
            return
        self.pool_persons.append({
            "id": contact_id or cid, "customer_id": cid, "contact_id": contact_id, "gender": gender,
            "first_index": fi, "surname_index": si, "first": first.text,
            "middle": middle.text if middle else "", "last": last.text,
            "plain_first": self.first_names[gender][fi], "plain_last": self.surnames[si][gender],
            "pre": titles[0], "post": titles[1], "email": email, "phone": phone, "key": key, "words": name,
            **extra})

    # -- verification against the models' own code ------------------------------------------------

    def _verify_customer(self, row: tuple, tokens: set[str]) -> None:
        values = dict(zip(CUSTOMER_COLUMNS, row, strict=True))
        fields = {k: values[k] for k in CUSTOMER_COLUMNS if k not in ("id", "display_name", "sort_name",
                                                                      "status_id", "version")}
        fields["kind"] = CustomerKind(values["kind"])
        self._verify(Customer(**fields), values, tokens)
        self._verify_keys(values["email"], values["primary_phone"])
        self._verify_keys(values["secondary_email"], values["secondary_phone"])

    def _verify_contact(self, row: tuple, tokens: set[str]) -> None:
        values = dict(zip(CONTACT_COLUMNS, row, strict=True))
        fields = {k: values[k] for k in ("first_name", "last_name", "email", "phone", "phone_type", "title")}
        self._verify(Contact(**fields), values, tokens)
        self._verify_keys(values["email"], values["phone"])

    def _verify(self, record, values: dict, tokens: set[str]) -> None:
        """The record's derived values as its model's own refresh_derived makes them."""
        record.refresh_derived()
        expected = {t.token for t in record.search_tokens}
        derived = (record.display_name, record.sort_name)
        assert derived == (values["display_name"], values["sort_name"]), values
        assert tokens == expected, (values, tokens ^ expected)
        self.verified += 1

    @staticmethod
    def _verify_keys(email: str | None, phone: str | None) -> None:
        """Stored as the product stores them: normalising again changes nothing."""
        assert email is None or normalise_email(email) == email, email
        assert phone is None or normalise_phone(phone, "SK") == phone, phone

    # -- generation -------------------------------------------------------------------------------

    def chunks(self, size: int = 10_000) -> Iterator[Chunk]:
        """Generate the registry in batches of `size` customers (with their contacts)."""
        assert not self._generated, "a Background generates once"
        self._generated = True
        self.contact_n = 0
        company_index = 0
        chunk = Chunk()
        for cid in range(1, self.customers + 1):
            if self.is_company[cid - 1]:
                self._company(cid, chunk, self.contact_counts[company_index])
                company_index += 1
            else:
                self._person(cid, chunk)
            if cid % size == 0:
                yield chunk
                chunk = Chunk()
        if chunk.customers:
            yield chunk
        for part in self._parts.values():  # every part made was used by some record
            self.name_words.update(part.name_words)
        self.pool_persons.sort(key=lambda r: (r["contact_id"] is not None, r["id"]))

    def generate(self) -> None:
        """Generate without keeping the rows (for queries() alone)."""
        for _ in self.chunks():
            pass

    # -- labelled queries -------------------------------------------------------------------------

    def queries(self, total: int = 1200, seed: int | None = None) -> list[Query]:
        """The labelled queries (see the module docstring), about `total` of them."""
        assert self._generated, "generate the background first (chunks() or generate())"
        return _QueryMaker(self, random.Random(self.seed + 3 if seed is None else seed)).make(total)


# -- query variants -------------------------------------------------------------------------------

_NEAR_KEYS = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", [
    "wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "ol", "qsz", "awdx", "sefc", "drgv", "fthb",
    "gyjn", "hukm", "jil", "kop", "xa", "zsc", "xdv", "cfb", "vgn", "bhm", "nj"], strict=True)}


def _typo(word: str, rng: random.Random, early: bool) -> str | None:
    """One edit of `word` (substitute a neighbouring key, delete, insert, swap two letters) at a
    position below 4 when `early`; None when the folded result is not one edit away with at least
    four letters (what matching can call a typo)."""
    for _ in range(30):
        limit = min(4, len(word)) if early else len(word)
        start = 0 if early else min(4, len(word) - 1)
        at = rng.randrange(start, max(start + 1, limit))
        operation = rng.choice(("substitute", "delete", "insert", "swap"))
        letter = fold(word[at])[:1] or "a"
        near = rng.choice(_NEAR_KEYS.get(letter, "e"))
        if word[at].isupper():
            near = near.upper()
        if operation == "substitute":
            typed = word[:at] + near + word[at + 1:]
        elif operation == "delete":
            typed = word[:at] + word[at + 1:]
        elif operation == "insert":
            typed = word[:at] + near + word[at:]
        else:
            if at + 1 >= len(word) or word[at] == word[at + 1]:
                continue
            typed = word[:at] + word[at + 1] + word[at] + word[at + 2:]
            if at == 0:
                typed = typed[0].upper() + typed[1:].lower() if word[0].isupper() else typed
        a, b = fold(word), fold(typed)
        if a != b and len(b) >= 4 and DamerauLevenshtein.distance(a, b) == 1:
            return typed
    return None


def _phone_variant(e164: str, rng: random.Random) -> tuple[str, str]:
    """The number as a person might type it, with the region it is read in; checked to
    normalise back to `e164`."""
    country, national = e164[1:4], e164[4:]
    groups = f"{national[:3]} {national[3:6]} {national[6:]}"
    if country == "421":
        shapes = [(f"0{groups}", "SK"), (f"0{national}", "SK"), (f"+421 {groups}", "SK"),
                  (f"00421 {groups}", "SK"), (f"+421{national}", "SK"),
                  (f"0{national[:3]}/{national[3:]}", "SK"), (f"00421{national}", "SK")]
    else:
        shapes = [(groups, "CZ"), (f"+420 {groups}", "SK"), (f"00420 {groups}", "SK"),
                  (f"+420{national}", "SK"), (national, "CZ")]
    rng.shuffle(shapes)
    for typed, region in shapes:
        if normalise_phone(typed, region) == e164:
            return typed, region
    raise AssertionError(f"no typed form of {e164} normalises back")  # pragma: no cover


def _email_variant(email: str, rng: random.Random) -> str:
    local, domain = email.split("@")
    shapes = [f"{local.title()}@{domain.upper()}", email.upper(),
              f"{local[:1].upper()}{local[1:]}@{domain.capitalize()}"]
    return rng.choice(shapes)


def _id_variant(value: str, rng: random.Random) -> str:
    if value.startswith("SK"):
        digits = value[2:]
        return rng.choice([f"SK {digits[:4]} {digits[4:]}", f"sk{digits}", f"SK {digits}",
                           f"SK{digits[:2]} {digits[2:6]} {digits[6:]}"])
    return rng.choice([f"{value[:2]} {value[2:5]} {value[5:]}", f"{value[:3]} {value[3:]}",
                       f"{value[:2]}-{value[2:5]}-{value[5:]}", f" {value} "])


class _QueryMaker:
    """Builds the labelled queries from the background's pool (records kept while generating)."""

    def __init__(self, background: Background, rng: random.Random):
        self.bg = background
        self.rng = rng
        self.used: set[tuple[str, int]] = set()
        persons = background.pool_persons
        self.person_customers = [p for p in persons if p["contact_id"] is None]
        self.contacts = [p for p in persons if p["contact_id"] is not None]
        self.companies = background.pool_companies
        self.counts = background.counts
        self.queries: list[Query] = []
        self.variants: dict[str, list[str]] | None = None

    # helpers

    def unique(self, record: dict, company: bool) -> bool:
        return self.counts[company][record["key"]] == 1

    def new_name(self, text: str, company: bool) -> bool:
        """Not the name of any record of that kind."""
        return " ".join(sorted(name_words(text, company=company))) not in self.counts[company]

    def pick(self, records: list[dict], test, label: str) -> dict | None:
        """A record not used yet for which `test` holds (a bounded number of tries)."""
        for _ in range(400):
            if not records:
                return None
            record = self.rng.choice(records)
            mark = (label, record["id"])
            if mark in self.used or not test(record):
                continue
            self.used.add(mark)
            return record
        return None

    def person_name(self, record: dict, *, swap: bool = False, plain: bool = False) -> str:
        first = record["plain_first"] if plain else record["first"]
        last = record["plain_last"] if plain else record["last"]
        middle = record["middle"]
        parts = [last, first, middle] if swap else [first, middle, last]
        return " ".join(p for p in parts if p)

    def typo_in_person(self, record: dict, early: bool) -> str | None:
        """The name with one typo in the surname (or a first name of 5+ letters)."""
        first, last = record["plain_first"], record["plain_last"]
        targets = ["last"] * 3 + (["first"] if len(fold(first)) >= 5 else [])
        which = self.rng.choice(targets)
        word = last if which == "last" else first
        typed = _typo(word, self.rng, early)
        if typed is None:
            return None
        first, last = (first, typed) if which == "last" else (typed, last)
        name = " ".join(p for p in [first, record["middle"], last] if p)
        return name if self.identifying_typo(name, record, False) else None

    def neighbours(self, word: str) -> set[str]:
        """Name words of the registry one edit from `word` or equal to it (symmetric deletion,
        as models.name_vocabulary keeps them)."""
        if self.variants is None:
            self.variants = {}
            for known in self.bg.name_words:
                for variant in word_variants(known):
                    self.variants.setdefault(variant, []).append(known)
        found = {w for v in word_variants(word) for w in self.variants.get(v, ())}
        return {w for w in found if DamerauLevenshtein.distance(w, word) <= 1}

    def identifying_typo(self, typed: str, record: dict, company: bool) -> bool:
        """The evidence rule for a name with a typo: the typed name is nobody's, and no record
        other than the target bears a name one edit away from it (the typed word read as any
        other registry word one edit from it)."""
        if not self.new_name(typed, company):
            return False
        words_typed = name_words(typed, company=company)
        for index, word in enumerate(words_typed):
            if word in record["words"]:
                continue
            for other in self.neighbours(word):
                near = words_typed[:index] + [other] + words_typed[index + 1:]
                key = _name_key(tuple(near))
                if key != record["key"] and key in self.counts[company]:
                    return False
        return True

    def new_email(self, first: str, last: str) -> str:
        self.bg.mail_n += 1
        local = ".".join(p for p in ("".join(folded_words(first)), "".join(folded_words(last))) if p)
        return f"{local}.{self.bg.mail_n}@{self.rng.choice(self.bg.domains)}"

    def new_phone(self) -> str:
        return self.bg.phones[self.rng.choice(("sk", "cz"))].draw()

    def add(self, case: str, record: dict | None, kind: str, name: str | None, **keys) -> bool:
        if record is None or not name:
            return False
        if keys.get("phone") is not None and "phone_region" not in keys:
            keys["phone"], keys["phone_region"] = _phone_variant(keys["phone"], self.rng)
        target = record.get("customer_id", record["id"]) if record.get("id") is not None else None
        strong = bool(target) and any(keys.get(k) for k in KEY_FIELDS)
        self.queries.append(Query(case=case, kind=kind, name=name, target=target,
                                  target_contact=record.get("contact_id"), strong=strong, **keys))
        return True

    def negative(self, case: str, kind: str, name: str, **keys) -> bool:
        if keys.get("phone") is not None:
            keys["phone"], keys["phone_region"] = _phone_variant(keys["phone"], self.rng)
        self.queries.append(Query(case=case, kind=kind, name=name, **keys))
        return True

    def repeat(self, count: int, make) -> None:
        made = tries = 0
        while made < count and tries < count * 20:
            tries += 1
            if make():
                made += 1

    # positives: person customers and contacts

    def person_cases(self, records: list[dict], who: str, n: dict[str, int]) -> None:
        rng, uniq = self.rng, (lambda r: self.unique(r, False))

        def same_name_email() -> bool:
            r = self.pick(records, lambda r: r["email"], f"{who}-email")
            return self.add(f"{who}: same name, e-mail in other case", r, "person",
                            r and self.person_name(r), email=r and _email_variant(r["email"], rng))

        def typo_phone() -> bool:
            r = self.pick(records, lambda r: r["phone"], f"{who}-typo-phone")
            return self.add(f"{who}: typo in the name, phone in another format", r, "person",
                            r and self.typo_in_person(r, rng.random() < 0.5), phone=r and r["phone"])

        def swapped_email() -> bool:
            r = self.pick(records, lambda r: r["email"], f"{who}-swap-email")
            return self.add(f"{who}: surname first, e-mail", r, "person",
                            r and self.person_name(r, swap=True), email=r and r["email"])

        def common_phone() -> bool:
            r = self.pick(records, lambda r: r["phone"] and self.counts[False][r["key"]] >= 3,
                          f"{who}-common")
            return self.add(f"{who}: common name (namesakes exist), phone", r, "person",
                            r and self.person_name(r, plain=True) if r and not r["middle"] else None,
                            phone=r and r["phone"])

        def diacritics_only() -> bool:
            r = self.pick(records, lambda r: uniq(r) and strip_diacritics(self.person_name(r)) !=
                          self.person_name(r), f"{who}-diacritics")
            return self.add(f"{who}: unique name without diacritics, name only", r, "person",
                            r and strip_diacritics(self.person_name(r)))

        def typo_only(early: bool) -> bool:
            r = self.pick(records, uniq, f"{who}-typo-{early}")
            where = "in the first 4 letters" if early else "later in a word"
            return self.add(f"{who}: unique name with a typo {where}, name only", r, "person",
                            r and self.typo_in_person(r, early))

        def title_only() -> bool:
            r = self.pick(records, uniq, f"{who}-title")
            if r is None:
                return False
            if r["pre"] or r["post"]:
                name = " ".join(p for p in [r["plain_first"], r["middle"], r["plain_last"]] if p)
                case = "title left out"
            else:
                name = rng.choice([f"Ing. {self.person_name(r)}", f"{self.person_name(r)}, PhD.",
                                   f"Mgr. {self.person_name(r)}"])
                case = "title added"
            return self.add(f"{who}: unique name, {case}, name only", r, "person", name)

        def swapped_only() -> bool:
            r = self.pick(records, uniq, f"{who}-swap")
            return self.add(f"{who}: unique name, surname first, name only", r, "person",
                            r and self.person_name(r, swap=True))

        def secondary_email() -> bool:
            r = self.pick(records, lambda r: r.get("secondary_email"), f"{who}-second-email")
            return self.add(f"{who}: same name, the other e-mail address", r, "person",
                            r and self.person_name(r), email=r and r["secondary_email"])

        def typo_diacritics_email() -> bool:
            r = self.pick(records, lambda r: r["email"], f"{who}-typo-email")
            typed = r and self.typo_in_person(r, rng.random() < 0.5)
            return self.add(f"{who}: typo and no diacritics, e-mail", r, "person",
                            typed and strip_diacritics(typed), email=r and r["email"])

        plan = [(same_name_email, "email"), (typo_phone, "typo_phone"), (swapped_email, "swap_email"),
                (common_phone, "common_phone"), (diacritics_only, "diacritics"),
                (lambda: typo_only(True), "typo_early"), (lambda: typo_only(False), "typo_late"),
                (title_only, "title"), (swapped_only, "swap"), (typo_diacritics_email, "typo_email"),
                (secondary_email, "second_email")]
        for make, key in plan:
            self.repeat(n.get(key, 0), make)

    # positives: companies

    def legal_variant(self, record: dict) -> str:
        spelling = self.rng.choice(LEGAL_SPELLINGS.get(record["legal"], [record["legal"]]))
        return f"{record['base']} {spelling}".strip()

    def company_typo(self, record: dict, early: bool) -> str | None:
        base_words = record["base"].split()
        candidates = [i for i, w in enumerate(base_words) if len(fold(w)) >= 5 and w.isalpha()]
        if early:
            candidates = candidates[:1] if candidates and candidates[0] == 0 else []
        if not candidates:
            return None
        at = self.rng.choice(candidates)
        typed = _typo(base_words[at], self.rng, early)
        if typed is None:
            return None
        base_words[at] = typed
        name = f"{' '.join(base_words)} {record['legal']}".strip()
        return name if self.identifying_typo(name, record, True) else None

    def company_cases(self, n: dict[str, int]) -> None:
        rng, records = self.rng, self.companies

        def legal_only() -> bool:
            r = self.pick(records, lambda r: r["legal"], "c-legal")
            return self.add("company: legal form spelt differently, name only", r, "company",
                            r and self.legal_variant(r))

        def legal_id() -> bool:
            r = self.pick(records, lambda r: True, "c-legal-id")
            return self.add("company: legal form spelt differently, company ID with spaces", r, "company",
                            r and self.legal_variant(r),
                            registration_number=r and _id_variant(r["registration_number"], rng))

        def typo_vat() -> bool:
            r = self.pick(records, lambda r: r["vat_id"], "c-typo-vat")
            return self.add("company: typo in the name, VAT ID reformatted", r, "company",
                            r and self.company_typo(r, rng.random() < 0.5),
                            vat_id=r and _id_variant(r["vat_id"], rng))

        def typo_only(early: bool) -> bool:
            single = [r for r in records if len(r["words"]) == 1] if early and rng.random() < 0.6 else records
            r = self.pick(single, lambda r: True, f"c-typo-{early}")
            where = "in the first 4 letters" if early else "later in a word"
            return self.add(f"company: typo {where}, name only", r, "company",
                            r and self.company_typo(r, early))

        def swapped_email() -> bool:
            r = self.pick(records, lambda r: r["email"] and len(r["base"].split()) >= 2, "c-swap")
            if r is None:
                return False
            base = r["base"].split()
            name = f"{' '.join(base[1:] + base[:1])} {r['legal']}".strip()
            return self.add("company: words in another order, e-mail", r, "company", name,
                            email=_email_variant(r["email"], rng))

        def secondary_email() -> bool:
            r = self.pick(records, lambda r: r["secondary_email"], "c-second-email")
            return self.add("company: legal form spelt differently, the other e-mail address", r, "company",
                            r and self.legal_variant(r), email=r and r["secondary_email"])

        def bare_phone() -> bool:
            r = self.pick(records, lambda r: r["phone"], "c-phone")
            return self.add("company: no legal form, phone in another format", r, "company", r and r["base"],
                            phone=r and r["phone"])

        def diacritics_only() -> bool:
            r = self.pick(records, lambda r: strip_diacritics(r["name"]) != r["name"], "c-diacritics")
            return self.add("company: without diacritics, name only", r, "company",
                            r and strip_diacritics(r["name"]))

        plan = [(legal_only, "legal"), (legal_id, "legal_id"), (typo_vat, "typo_vat"),
                (lambda: typo_only(True), "typo_early"), (lambda: typo_only(False), "typo_late"),
                (swapped_email, "swap_email"), (bare_phone, "phone"), (diacritics_only, "diacritics"),
                (secondary_email, "second_email")]
        for make, key in plan:
            self.repeat(n.get(key, 0), make)

    # negatives

    def negative_cases(self, n: dict[str, int]) -> None:
        rng, bg = self.rng, self.bg
        persons = self.person_customers + self.contacts

        def keys(first: str, last: str) -> dict:
            found: dict = {"email": self.new_email(first, last)}
            if rng.random() < 0.6:
                found["phone"] = self.new_phone()
            return found

        def other_gender() -> bool:
            r = self.pick(persons, lambda r: fold(bg.surnames[r["surname_index"]][0]) !=
                          fold(bg.surnames[r["surname_index"]][1]), "n-gender")
            if r is None:
                return False
            gender = 1 - r["gender"]
            first = COUNTERPART.get(r["plain_first"]) or rng.choice(bg.first_names[gender])
            last = bg.surnames[r["surname_index"]][gender]
            return self.negative("new: the other gender's surname form (Kováč / Kováčová)", "person",
                                 f"{first} {last}", **keys(first, last))

        def same_first() -> bool:
            r = self.pick(persons, lambda r: True, "n-first")
            if r is None:
                return False
            index = bg._pick(bg.surname_cum)
            if index == r["surname_index"]:
                return False
            last = bg.surnames[index][r["gender"]]
            return self.negative("new: same first name, another surname", "person",
                                 f"{r['plain_first']} {last}", **keys(r["plain_first"], last))

        common = sorted(persons, key=lambda r: -self.counts[False][r["key"]])[:max(50, len(persons) // 100)]

        def common_namesake() -> bool:
            r = self.pick(common, lambda r: self.counts[False][r["key"]] >= 2, "n-common")
            if r is None:
                return False
            name = f"{r['plain_first']} {r['plain_last']}"
            return self.negative("new: exact namesake of a common name, new e-mail", "person", name,
                                 **keys(r["plain_first"], r["plain_last"]))

        def rare_namesake() -> bool:
            r = self.pick(persons, lambda r: self.unique(r, False), "n-rare")
            if r is None:
                return False
            return self.negative("new: exact namesake of a rare name, new e-mail and phone", "person",
                                 self.person_name(r), email=self.new_email(r["plain_first"], r["plain_last"]),
                                 phone=self.new_phone())

        def company_sharing_words() -> bool:
            r = self.pick(self.companies, lambda r: True, "n-company")
            if r is None:
                return False
            base = r["base"].split()
            change = rng.random()
            if change < 0.35 and len(base) >= 2:
                base[rng.randrange(len(base))] = rng.choice(PLACES + TRADES)
            elif change < 0.7:
                base.append(rng.choice(DISTINCTIONS + PLACES))
            else:
                base.insert(0, rng.choice(TRADES))
            name = f"{' '.join(base)} {r['legal'] or 's.r.o.'}"
            if not self.new_name(name, True):
                return False
            registration, vat = bg._company_ids()
            extra: dict = {}
            if rng.random() < 0.5:
                extra["registration_number"] = registration
            if rng.random() < 0.3:
                extra["vat_id"] = vat
            if rng.random() < 0.4:
                bg.mail_n += 1
                extra["email"] = f"info.{bg.mail_n}@{'-'.join(folded_words(name)[:2])}.sk"
            return self.negative("new: company name sharing words with an existing one", "company", name,
                                 **extra)

        def new_person() -> bool:
            gender = rng.randrange(2)
            first = bg.first_names[gender][bg._pick(bg.first_cum[gender])]
            last = bg.surnames[rng.randrange(len(bg.surnames) // 2, len(bg.surnames))][gender]
            name = f"{first} {last}"
            if not self.new_name(name, False):
                return False
            return self.negative("new: a person nobody bears the name of", "person", name,
                                 **keys(first, last))

        def new_company() -> bool:
            name = f"{bg._coined(rng)} {rng.choice(PLACES)} {rng.choice(('s.r.o.', 'a.s.'))}"
            if not self.new_name(name, True):
                return False
            registration, _ = bg._company_ids()
            return self.negative("new: a company nobody bears the name of", "company", name,
                                 registration_number=registration)

        plan = [(other_gender, "gender"), (same_first, "first"), (common_namesake, "common"),
                (rare_namesake, "rare"), (company_sharing_words, "company"), (new_person, "person"),
                (new_company, "new_company")]
        for make, key in plan:
            self.repeat(n.get(key, 0), make)

    def make(self, total: int) -> list[Query]:
        scale = total / 1200

        def scaled(plan: dict[str, int]) -> dict[str, int]:
            return {k: max(1, round(v * scale)) for k, v in plan.items()}

        self.person_cases(self.person_customers, "person", scaled({
            "email": 45, "typo_phone": 45, "swap_email": 25, "common_phone": 30, "diacritics": 35,
            "typo_early": 30, "typo_late": 25, "title": 30, "swap": 30, "typo_email": 20,
            "second_email": 20}))
        self.company_cases(scaled({"legal": 45, "legal_id": 35, "typo_vat": 35, "typo_early": 40,
                                   "typo_late": 30, "swap_email": 25, "phone": 25, "diacritics": 20,
                                   "second_email": 15}))
        self.person_cases(self.contacts, "contact", scaled({
            "email": 40, "typo_phone": 40, "diacritics": 30, "typo_early": 20, "typo_late": 20, "title": 10,
            "swap": 10}))
        self.negative_cases(scaled({"gender": 85, "first": 75, "common": 85, "rare": 30, "company": 85,
                                    "person": 25, "new_company": 15}))
        return self.queries


def summary(queries: list[Query]) -> Counter:
    """How many queries of each case."""
    return Counter(q.case for q in queries)


# -- judging the answers ---------------------------------------------------------------------------

TOP = 5  # a positive counts as listed when its target is among the first five candidates


@dataclass
class Verdict:
    """How find_duplicates answered one query. `rank`: 1-based position of the first candidate
    that is the target customer or one of its contacts (None when absent); `target_strong`: that
    the target came back strong; `refused`: that any candidate came back strong."""

    query: Query
    rank: int | None
    target_strong: bool
    refused: bool
    answer: list[str]

    @property
    def listed(self) -> bool:
        return self.rank is not None and self.rank <= TOP

    @property
    def missed(self) -> bool:
        """A failure the quality targets count: a positive not listed in the top five, an
        expected strong one not strong, a negative refused."""
        if self.query.target is None:
            return self.refused
        return not self.listed or (self.query.strong and not self.target_strong)

    def describe(self) -> str:
        q = self.query
        keys = ", ".join(f"{k}={getattr(q, k)!r}" for k in KEY_FIELDS if getattr(q, k))
        what = (f"target customer {q.target}" + (f" (contact {q.target_contact})" if q.target_contact else "")
                if q.target is not None else "a new record")
        found = f"rank {self.rank}" if self.rank else "not found"
        head = f"[{q.case}] {q.kind} {q.name!r} {keys} -> {what}: {found}"
        if self.target_strong:
            head += ", strong"
        elif self.refused and q.target is None:
            head += ", REFUSED"
        return head + "".join(f"\n      {line}" for line in self.answer[:TOP + 1])


def judge(query: Query, candidates: list) -> Verdict:
    """Judge find_duplicates' candidates (objects with customer_id, strong, label, reasons)."""
    rank = next((i for i, c in enumerate(candidates, start=1)
                 if query.target is not None and c.customer_id == query.target), None)
    target_strong = any(c.strong for c in candidates
                        if query.target is not None and c.customer_id == query.target)
    answer = [f"{i}. {'STRONG ' if c.strong else ''}{c.label or '(hidden)'} [customer {c.customer_id}]"
              f" {', '.join(c.reasons)}" for i, c in enumerate(candidates, start=1)]
    return Verdict(query, rank, target_strong, any(c.strong for c in candidates), answer)


@dataclass
class Scores:
    """The quality figures of a set of verdicts."""

    positives: int
    listed: int
    expected_strong: int
    strong: int
    negatives: int
    refused: int

    @classmethod
    def of(cls, verdicts: list[Verdict]) -> Scores:
        positives = [v for v in verdicts if v.query.target is not None]
        negatives = [v for v in verdicts if v.query.target is None]
        expected = [v for v in positives if v.query.strong]
        return cls(len(positives), sum(v.listed for v in positives), len(expected),
                   sum(v.target_strong for v in expected), len(negatives), sum(v.refused for v in negatives))

    @property
    def recall(self) -> float:
        return self.listed / self.positives if self.positives else 1.0

    @property
    def strong_recall(self) -> float:
        return self.strong / self.expected_strong if self.expected_strong else 1.0

    @property
    def false_refusals(self) -> float:
        return self.refused / self.negatives if self.negatives else 0.0

    def __str__(self) -> str:
        return (f"listed in top {TOP}: {self.recall:.3f} ({self.listed}/{self.positives}); strong recall: "
                f"{self.strong_recall:.3f} ({self.strong}/{self.expected_strong}); false refusals: "
                f"{self.false_refusals:.3%} ({self.refused}/{self.negatives})")


if __name__ == "__main__":  # a quick look: python -m tests.labelled_duplicates 100000
    import sys
    import time

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    started = time.perf_counter()
    background = Background(size)
    rows = tokens = 0
    for part in background.chunks():
        rows += len(part.customers) + len(part.contacts)
        tokens += sum(len(t) for _, t in part.customer_tokens) + sum(len(t) for _, t in part.contact_tokens)
    print(f"{size:,} customers, {background.contact_total:,} contacts, {tokens:,} tokens, "
          f"{len(background.name_words):,} name words in {time.perf_counter() - started:.1f} s "
          f"({background.verified} records re-derived by the models' formulas)")
    started = time.perf_counter()
    made = background.queries()
    print(f"{len(made)} queries in {time.perf_counter() - started:.1f} s; "
          f"{sum(q.target is not None for q in made)} positives, {sum(q.strong for q in made)} strong")
    for case, count in sorted(summary(made).items()):
        print(f"  {count:4}  {case}")
    for person, count in Counter(background.counts[False]).most_common(8):
        print(f"  common: {person!r} × {count}")
