"""Customer photos through the domain service (services.photos), on both databases.

Every image is generated here by Pillow. Accepted uploads are re-encoded without metadata, stored
under random names and audited. A refused upload writes nothing and leaves the column as it was.
"""

from __future__ import annotations

import io
import os
from functools import cache

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from models import AuditEvent, Customer
from models.enums import CustomerKind
from services import photos
from services.errors import PermissionDenied
from services.photos import photo_paths, remove_photo, store_photo
from services.transactions import unit_of_work
from tests.conftest import refusal, version_on, written

ORIENTATION, MAKE = 0x0112, 0x010F


def store(session, customer, actor, data, storage, **kw):
    """Store a photo as a door does: in a unit of work of its own (committed on success)."""
    return written(session, lambda: store_photo(session, customer, actor, data, storage, **kw))


def remove(session, customer, actor, storage):
    return written(session, lambda: remove_photo(session, customer, actor, storage))


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png(size=(2000, 1500), colour="teal") -> bytes:
    info = PngInfo()
    info.add_text("Comment", "secret-note")
    return encode(Image.new("RGB", size, colour), "PNG", pnginfo=info)


def jpeg_lying_on_its_side() -> bytes:
    """300×200 pixels, red left half, blue right half. EXIF orientation 6 says: turn it 90°
    clockwise to show it. It also carries a camera maker that must not be kept."""
    image = Image.new("RGB", (300, 200), "blue")
    image.paste("red", (0, 0, 150, 200))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "SecretCam"
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def webp_with_alpha() -> bytes:
    return encode(Image.new("RGBA", (400, 300), (0, 128, 0, 100)), "WEBP", lossless=True)


def noise_png() -> bytes:
    return encode(Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3)), "PNG")


@cache
def bomb(side: int) -> bytes:
    """A single-colour PNG with a huge canvas. It compresses to a few kB but would take side² bytes
    or more to decode."""
    return encode(Image.new("1", (side, side)), "PNG")


@pytest.fixture
def storage(tmp_path):
    return tmp_path / "photos"


@pytest.fixture
def customer(new_customer, maintainer):
    return new_customer(maintainer, kind=CustomerKind.COMPANY, company_name="ACME")


def files_in(storage) -> set[str]:
    return {p.name for p in storage.iterdir()} if storage.exists() else set()


def stored_column(session, customer_id):
    return session.scalar(select(Customer.photo).where(Customer.id == customer_id))


def photo_events(session, customer_id):
    return session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == "customer", AuditEvent.entity_id == customer_id,
        AuditEvent.action == "update").order_by(AuditEvent.id)).all()


def test_a_png_is_stored_bounded_with_a_thumbnail_under_a_random_name(session, customer, maintainer,
                                                                      storage):
    name = store(session, customer, maintainer, png(), storage)

    assert photos.STORED_NAME.fullmatch(name) and name.endswith(".png")
    assert stored_column(session, customer.id) == name
    full, thumb = photo_paths(storage, name)
    assert files_in(storage) == {full.name, thumb.name}
    with Image.open(full) as stored:
        assert (stored.format, stored.size) == ("PNG", (1024, 768))
        assert "Comment" not in stored.info
    with Image.open(thumb) as stored:
        assert stored.size == (96, 72)
    assert b"secret-note" not in full.read_bytes()

    [event] = photo_events(session, customer.id)
    assert event.changes == {"photo": [None, name]}
    assert event.actor_id == maintainer.id
    assert event.entity_version == session.get(Customer, customer.id).version


def test_a_jpeg_is_turned_upright_and_loses_its_exif(session, customer, maintainer, storage):
    name = store(session, customer, maintainer, jpeg_lying_on_its_side(), storage)

    full, thumb = photo_paths(storage, name)
    assert name.endswith(".jpg")
    with Image.open(full) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (200, 300)  # turned a quarter clockwise: the red half is on top now
        red, green, blue = stored.convert("RGB").getpixel((100, 40))
        assert red > 200 and blue < 60
        red, green, blue = stored.convert("RGB").getpixel((100, 260))
        assert blue > 200 and red < 60
        assert "exif" not in stored.info and len(stored.getexif()) == 0
    with Image.open(thumb) as stored:
        assert stored.size == (64, 96)
        assert len(stored.getexif()) == 0
    assert b"SecretCam" not in full.read_bytes() + thumb.read_bytes()


def test_a_webp_keeps_its_format_and_transparency(session, customer, maintainer, storage):
    name = store(session, customer, maintainer, webp_with_alpha(), storage)

    full, thumb = photo_paths(storage, name)
    assert name.endswith(".webp")
    with Image.open(full) as stored:
        assert (stored.format, stored.size, stored.mode) == ("WEBP", (400, 300), "RGBA")
    with Image.open(thumb) as stored:
        assert stored.size == (96, 72)


def test_replacing_deletes_the_old_files_after_the_commit(session, customer, maintainer, storage):
    first = store(session, customer, maintainer, png(colour="red"), storage)
    second = store(session, customer, maintainer, png(colour="blue"), storage)

    assert first != second
    assert files_in(storage) == {p.name for p in photo_paths(storage, second)}
    assert stored_column(session, customer.id) == second
    assert [e.changes for e in photo_events(session, customer.id)] == [
        {"photo": [None, first]}, {"photo": [first, second]}]


def test_removing_clears_the_column_and_deletes_the_files(session, customer, maintainer, storage):
    name = store(session, customer, maintainer, png(), storage)

    remove(session, customer, maintainer, storage)

    assert stored_column(session, customer.id) is None
    assert files_in(storage) == set()
    assert photo_events(session, customer.id)[-1].changes == {"photo": [name, None]}


def test_removing_without_a_photo_changes_nothing(session, customer, maintainer, storage):
    version = customer.version
    remove(session, customer, maintainer, storage)
    assert session.get(Customer, customer.id).version == version
    assert photo_events(session, customer.id) == []


def text_file_named_like_a_png(tmp_path) -> bytes:
    upload = tmp_path / "photo.png"
    upload.write_text("I am not a picture, whatever my name says.\n")
    return upload.read_bytes()


REFUSALS = {
    "gif": (lambda tmp: encode(Image.new("RGB", (50, 50), "red"), "GIF"), photos.NOT_AN_IMAGE),
    "text named photo.png": (text_file_named_like_a_png, photos.NOT_AN_IMAGE),
    "empty": (lambda tmp: b"", photos.NOT_AN_IMAGE),
    "truncated png": (lambda tmp: noise_png()[:100_000], photos.DAMAGED),
    "6 MB": (lambda tmp: png() + bytes(6 * 1024 * 1024), "larger than 5 MB"),
    "49 MP, over our limit": (lambda tmp: bomb(7000), photos.TOO_MANY_PIXELS),
    "144 MP, Pillow warns": (lambda tmp: bomb(12000), photos.TOO_MANY_PIXELS),
    "225 MP, Pillow refuses": (lambda tmp: bomb(15000), photos.TOO_MANY_PIXELS),
}


@pytest.mark.parametrize("kind", REFUSALS)
def test_a_refused_upload_writes_nothing(kind, session, customer, maintainer, storage, tmp_path):
    kept = store(session, customer, maintainer, png(), storage)
    before = files_in(storage)
    make, message = REFUSALS[kind]
    data = make(tmp_path)
    if "MP" in kind:
        assert len(data) < 1024 * 1024  # small on disk: only the pixel limit can refuse it

    errors = refusal(session, lambda: store_photo(session, customer, maintainer, data, storage))

    assert list(errors) == ["photo"]
    assert message in errors["photo"][0]
    assert files_in(storage) == before
    assert stored_column(session, customer.id) == kept
    assert len(photo_events(session, customer.id)) == 1


def test_nothing_is_created_when_the_first_upload_is_refused(session, customer, maintainer, storage):
    gif = encode(Image.new("RGB", (5, 5)), "GIF")
    refusal(session, lambda: store_photo(session, customer, maintainer, gif, storage))
    assert not storage.exists()
    assert stored_column(session, customer.id) is None


def test_a_failed_commit_deletes_the_new_files(session, customer, maintainer, storage, monkeypatch):
    kept = store(session, customer, maintainer, png(), storage)
    before = files_in(storage)

    def broken_record(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(photos, "record", broken_record)
    with pytest.raises(RuntimeError):
        store(session, customer, maintainer, png(colour="red"), storage)

    assert files_in(storage) == before
    assert stored_column(session, customer.id) == kept


def test_a_unit_of_work_rolled_back_later_keeps_the_old_photo(session, customer, maintainer, storage):
    kept = store(session, customer, maintainer, png(), storage)
    before = files_in(storage)

    with pytest.raises(RuntimeError):
        with unit_of_work(session):
            store_photo(session, customer, maintainer, png(colour="red"), storage)
            raise RuntimeError("a later step of the same door failed")

    assert files_in(storage) == before  # the new files went, the old ones stayed
    assert stored_column(session, customer.id) == kept


def test_an_operator_without_the_edit_right_is_refused(session, customer, operator, storage):
    refusal(session, lambda: store_photo(session, customer, operator, png(), storage), PermissionDenied)
    refusal(session, lambda: remove_photo(session, customer, operator, storage), PermissionDenied)
    assert files_in(storage) == set()
    assert stored_column(session, customer.id) is None


def test_an_operator_with_the_edit_right_and_the_system_may_store(session, new_customer, operator,
                                                                  storage):
    own = new_customer(operator, kind=CustomerKind.COMPANY, company_name="Own")
    name = store(session, own, operator, png(), storage)
    assert stored_column(session, own.id) == name

    replaced = store(session, own, None, png(colour="red"), storage)
    assert photo_events(session, own.id)[-1].actor_label == "system"
    assert stored_column(session, own.id) == replaced


@pytest.mark.parametrize("name", ["../secret.png", "photo.png", "/etc/passwd", f"{'a' * 32}.gif"])
def test_only_generated_names_map_to_paths(name, tmp_path):
    with pytest.raises(ValueError):
        photo_paths(tmp_path, name)


def test_the_details_page_uploads_shows_and_removes_a_photo(maintainer_client, session, customer, app):
    from pathlib import Path

    from tests.conftest import csrf_from

    details = f"/admin/customers/overview/?id={customer.id}"
    page = maintainer_client.get(details).get_data(as_text=True)
    token, version = csrf_from(page), version_on(page)
    url = f"/admin/customers/photo/?id={customer.id}"
    gif = (io.BytesIO(b"GIF89a"), "x.gif")
    refused = maintainer_client.post(url, data={"csrf_token": token, "photo": gif, "version_seen": version},
                                     follow_redirects=True)
    assert photos.NOT_AN_IMAGE in refused.get_data(as_text=True)
    assert stored_column(session, customer.id) is None
    saved = maintainer_client.post(url, data={"csrf_token": token, "photo": (io.BytesIO(png()), "p.png"),
                                              "version_seen": version})
    assert saved.status_code == 302 and saved.headers["Location"].endswith(details)
    session.expire_all()
    name = stored_column(session, customer.id)
    assert name is not None
    thumb = maintainer_client.get(f"/admin/customers/photo-file/{customer.id}/thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    assert maintainer_client.get(f"/admin/customers/photo-file/{customer.id}/huge").status_code == 404
    version = version_on(maintainer_client.get(details).get_data(as_text=True))
    removed = maintainer_client.post(url, data={"csrf_token": token, "remove": "1", "version_seen": version},
                                     follow_redirects=True)
    assert "The photo was removed." in removed.get_data(as_text=True)
    assert stored_column(session, customer.id) is None
    assert not any(Path(app.config["PHOTO_DIR"]).glob(name.split(".")[0] + "*"))


def test_others_neither_see_nor_change_a_photo(operator_client, session, customer, maintainer, app):
    from pathlib import Path

    from tests.conftest import csrf_from

    store(session, customer, maintainer, png(), Path(app.config["PHOTO_DIR"]))
    token = csrf_from(operator_client.get("/admin/").get_data(as_text=True))
    # The operator may not view the maintainer's customer: its photo does not exist for them.
    assert operator_client.get(f"/admin/customers/photo-file/{customer.id}/thumb").status_code == 404
    response = operator_client.post(f"/admin/customers/photo/?id={customer.id}",
                                    data={"csrf_token": token, "remove": "1"})
    assert response.status_code == 404
    assert stored_column(session, customer.id) is not None
