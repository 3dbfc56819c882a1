"""`flask backup create / restore` on SQLite and PostgreSQL: data, a photo and an encrypted secret
come back as they were at backup time, the secret still decrypts, and an archive that is not a
whole backup is refused with a message while nothing changes.

Each test has a database, an instance folder and a photo folder of its own: a restore replaces them.
"""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from PIL import Image
from sqlalchemy import select

from extensions import db
from models import Customer, CustomerSettings, Operator
from models.enums import CustomerKind, OperatorRole
from services.backup import prune_backups
from services.customer_settings import save_customer_settings
from services.customers import SaveOptions, create_customer, delete_customer, update_customer
from services.operators import create_operator
from services.photos import photo_paths, remove_photo, store_photo
from services.reference_data import ensure_reference_data
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, PASSWORD, make_app, migrate_to_head, written

SECRET_KEY_FILE = "instance-secret-key-of-the-test"


@pytest.fixture(params=["sqlite", "postgres"])
def desk(request, tmp_path):
    """An installation of the test's own: database at head, instance folder with its key files
    (as APP_ENV=development keeps them), a photo folder and — on SQLite — a job queue file."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'desk.db'}"
        extra = {"JOB_QUEUE_IMMEDIATE": False, "JOB_QUEUE_URL": f"sqlite:///{tmp_path / 'jobs.sqlite3'}"}
    else:
        url = request.getfixturevalue("postgres_cluster").create_database(f"backup_{uuid.uuid4().hex[:12]}")
        extra = {}
    migrate_to_head(url)
    app = make_app(url, PHOTO_DIR=str(tmp_path / "photos"), **extra)
    app.instance_path = str(tmp_path / "instance")
    instance = Path(app.instance_path)
    instance.mkdir()
    (instance / "encryption_key").write_text(ENCRYPTION_KEY)
    (instance / "secret_key").write_text(SECRET_KEY_FILE)
    with app.app_context():
        written(db.session, lambda: ensure_reference_data(db.session))
        yield app
        db.session.remove()
        db.engine.dispose()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def company(session, actor, name: str) -> Customer:
    slug = name.split()[0].lower()
    contact = {"first_name": "Main", "last_name": "Contact", "email": f"main@{slug}.sk", "is_main": True}
    return written(session, lambda: create_customer(
        session, actor, SaveOptions("SK"), kind=CustomerKind.COMPANY, company_name=name,
        confirm_duplicate=True, contacts=[contact]))


def names(session) -> set[str]:
    return set(session.scalars(select(Customer.company_name)))


def cmonitor_token(session, customer_id: int) -> str:
    return session.scalar(select(CustomerSettings.cmonitor_password_encrypted)
                          .where(CustomerSettings.customer_id == customer_id))


def run(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    assert "Traceback" not in result.output
    return result


def damaged_copies(archive: Path, folder: Path) -> list[Path]:
    """Ways a backup arrives broken: cut short, a flipped byte, a member changed after it was
    written (the gzip stream itself intact), and a file that is no backup at all."""
    data = archive.read_bytes()
    cut = folder / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    flipped = folder / "flipped.tar.gz"
    middle = len(data) // 2
    flipped.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    tampered = folder / "tampered.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w:gz") as target:
        for member in source:
            content = source.extractfile(member).read()
            if member.name.startswith("photos/"):
                content = content[:-1] + b"\x00"
            target.addfile(member, io.BytesIO(content))
    stranger = folder / "notes.tar.gz"
    stranger.write_bytes(gzip.compress(b"just some notes"))
    return [cut, flipped, tampered, stranger]


def test_a_restore_brings_back_data_photos_keys_and_secrets_as_they_were_at_backup_time(desk, tmp_path):
    session = db.session
    photos = Path(desk.config["PHOTO_DIR"])
    instance = Path(desk.instance_path)
    boss = written(session, lambda: create_operator(session, email="boss@example.com", password=PASSWORD,
                                                    first_name="Mia", last_name="Boss",
                                                    role=OperatorRole.MAINTAINER))
    acme = company(session, boss, "ACME s.r.o.")
    beta = company(session, boss, "Beta a.s.")
    box = SecretBox(ENCRYPTION_KEY)
    written(session, lambda: save_customer_settings(session, acme, boss, box,
                                                    {"cmonitor_password": "agent-secret"}))
    photo = written(session, lambda: store_photo(session, acme, boss, png(), photos))
    photo_files = sorted(p.name for p in photos.iterdir())
    assert len(photo_files) == 2  # the photo and its thumbnail
    acme_id, beta_id, boss_id = acme.id, beta.id, boss.id

    created = run(desk, "backup", "create", "--to", str(tmp_path / "backups"))
    assert created.exit_code == 0, created.output
    (archive,) = (tmp_path / "backups").glob("customer-desk-backup-*.tar.gz")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds the encryption key
    assert str(archive) in created.output
    assert run(desk, "backup", "check", str(archive)).exit_code == 0

    # After the backup: renamed, deleted, added, photo removed, secret changed, keys replaced.
    acme = session.get(Customer, acme_id)
    written(session, lambda: update_customer(session, acme, boss, SaveOptions("SK"),
                                             {"company_name": "ACME renamed"}, seen_version=acme.version))
    written(session, lambda: delete_customer(session, session.get(Customer, beta_id), boss))
    company(session, boss, "Gamma k.s.")
    written(session, lambda: remove_photo(session, session.get(Customer, acme_id), boss, photos))
    written(session, lambda: save_customer_settings(session, session.get(Customer, acme_id), boss, box,
                                                    {"cmonitor_password": "changed-later"}))
    (instance / "encryption_key").write_text(Fernet.generate_key().decode())
    (instance / "secret_key").write_text("another secret key")
    session.remove()
    assert names(session) == {"ACME renamed", "Gamma k.s."} and list(photos.iterdir()) == []

    for broken in damaged_copies(archive, tmp_path):
        refused = run(desk, "backup", "restore", str(broken), "--yes")
        assert refused.exit_code == 1, (broken.name, refused.output)
        assert ("is damaged" in refused.output or "is not a Customer Desk backup" in refused.output), \
            refused.output
        assert "nothing was restored" in refused.output
        session.remove()
        assert names(session) == {"ACME renamed", "Gamma k.s."}, broken.name
    assert list(photos.iterdir()) == []

    session.remove()  # the desk is stopped while it restores: nobody holds a transaction
    restored = run(desk, "backup", "restore", str(archive), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "Warning" not in restored.output
    session.remove()
    assert names(session) == {"ACME s.r.o.", "Beta a.s."}
    assert session.get(Customer, acme_id).photo == photo
    assert sorted(p.name for p in photos.iterdir()) == photo_files
    assert all(path.is_file() for path in photo_paths(photos, photo))
    key = (instance / "encryption_key").read_text()
    assert key == ENCRYPTION_KEY and (instance / "secret_key").read_text() == SECRET_KEY_FILE
    assert stat.S_IMODE((instance / "encryption_key").stat().st_mode) == 0o600
    assert SecretBox(key).decrypt(cmonitor_token(session, acme_id)) == "agent-secret"

    # The restored database is a working one: the desk writes to it again.
    company(session, session.get(Operator, boss_id), "Delta s.r.o.")
    assert "Delta s.r.o." in names(session)


def test_a_backup_refuses_to_go_into_another_kind_of_database(desk, tmp_path):
    created = run(desk, "backup", "create", "--to", str(tmp_path))
    assert created.exit_code == 0, created.output
    (archive,) = tmp_path.glob("customer-desk-backup-*.tar.gz")
    # The same archive made to say it holds the other kind of database (checksums whole).
    kinds = {"sqlite": "database/customer_desk.sqlite3", "postgresql": "database/customer_desk.pgdump"}
    this = "sqlite" if db.engine.dialect.name == "sqlite" else "postgresql"
    other = "postgresql" if this == "sqlite" else "sqlite"
    relabelled = tmp_path / "relabelled.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(relabelled, "w:gz") as target:
        for member in source:
            content = source.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(content)
                manifest["database"] = other
                manifest["files"][kinds[other]] = manifest["files"].pop(kinds[this])
                content = json.dumps(manifest).encode()
                member.size = len(content)
            elif member.name == kinds[this]:
                member.name = kinds[other]
            target.addfile(member, io.BytesIO(content))
    refused = run(desk, "backup", "restore", str(relabelled), "--yes")
    assert refused.exit_code == 1 and "this installation uses" in refused.output, refused.output


def test_keep_deletes_the_oldest_backups_and_nothing_else(tmp_path):
    names_in_folder = ["customer-desk-backup-20251231T230000Z.tar.gz",
                       "customer-desk-backup-20260101T000000Z.tar.gz",
                       "customer-desk-backup-20260101T000000Z-2.tar.gz",
                       "customer-desk-backup-20260102T000000Z.tar.gz",
                       "customer-desk-backup-keep-me.tar.gz", "notes.txt"]
    for name in names_in_folder:
        (tmp_path / name).write_text("x")
    deleted = prune_backups(tmp_path, 2)
    assert sorted(p.name for p in deleted) == ["customer-desk-backup-20251231T230000Z.tar.gz",
                                                "customer-desk-backup-20260101T000000Z.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "customer-desk-backup-20260101T000000Z-2.tar.gz", "customer-desk-backup-20260102T000000Z.tar.gz",
        "customer-desk-backup-keep-me.tar.gz", "notes.txt"]


def test_a_backup_that_would_fill_the_disk_is_refused_before_it_is_unpacked(desk, tmp_path):
    """An archive whose member says it is larger than the disk's free space (damaged, or made to
    fill the disk under the running desk) is refused before a byte of it is written."""
    import shutil

    member = tarfile.TarInfo("photos/" + "a" * 32 + ".png")
    member.size = shutil.disk_usage(tmp_path).free + 2**40
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb") as out:
        out.write(member.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)
    refused = run(desk, "backup", "check", str(bomb))
    assert refused.exit_code == 1 and "would leave less than" in refused.output, refused.output
    assert "Traceback" not in refused.output
