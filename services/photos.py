"""Customer photos: only real PNG, JPEG or WebP images, re-encoded and stored under random names.

An upload is never trusted. Its file name and the client's content type are ignored: Pillow
decides what the bytes are, and only the three formats browsers show safely get through. The
service never keeps the uploaded bytes. It stores a new encoding: EXIF orientation applied, all
metadata dropped (GPS position, camera serial, comments), at most FULL_SIZE pixels on a side,
plus a THUMB_SIZE thumbnail. Both files get a uuid name, so an upload cannot pick a path or
overwrite another photo.

The column and its audit event are written in the door's unit of work. New files are written
before the commit and deleted if the unit of work rolls back; the files of a replaced or removed
photo are deleted only after it has committed (services.transactions.after_commit), so a
rolled-back change never loses the photo that is still on record.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from i18n import _
from models import Customer, Operator
from services.access import Right, require
from services.audit import record
from services.errors import N_, DomainError, ValidationFailed
from services.transactions import DbSession, after_commit, after_rollback, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

MAX_BYTES = 5 * 1024 * 1024
# Checked from the header before decoding. A small file can claim a huge canvas (a decompression
# bomb), and decoding 40 MP already takes about 160 MB of memory.
MAX_PIXELS = 40_000_000
FULL_SIZE = 1024
THUMB_SIZE = 96

# Only these Pillow plugins ever parse uploaded bytes. The many other formats Pillow reads stay
# out of reach, and so does their parsing code.
OPEN_FORMATS = ("PNG", "JPEG", "WEBP")
SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
SAVE_OPTIONS: dict[str, dict] = {"PNG": {"optimize": True}, "JPEG": {"quality": 85}, "WEBP": {"quality": 85}}
STORED_NAME = re.compile(r"([0-9a-f]{32})\.(png|jpg|webp)")

# English (compared by code and tests); _refuse shows them in the reader's language.
NOT_AN_IMAGE = N_("Upload a PNG, JPEG or WebP image.")
DAMAGED = N_("The image is damaged or incomplete. Save it again in an image program and upload that copy.")
TOO_MANY_PIXELS = N_("The image is too large: at most 40 megapixels.")

log = logging.getLogger(__name__)


def photo_paths(storage_dir: Path, name: str) -> tuple[Path, Path]:
    """The full image and the thumbnail of a stored photo. Only names this module generates are
    accepted, so a tampered column value can never point outside `storage_dir`."""
    match = STORED_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"Not a stored photo name: {name!r}")
    stem, suffix = match.groups()
    return storage_dir / name, storage_dir / f"{stem}_thumb.{suffix}"


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed({"photo": [_(message)]})


@contextmanager
def _untrusted(refusal: str) -> Iterator[None]:
    """Run Pillow on uploaded bytes. Every failure becomes a refusal with a message, never a 500.
    Pillow's plugins raise many exception types on malformed input (OSError, SyntaxError,
    struct.error, ...), so a broad catch is the point here. Pillow only warns about a
    decompression bomb, so the warning is turned into an error within this block, and the
    previous filter is restored afterwards. (catch_warnings is process-wide while it runs, so
    MAX_PIXELS, which is checked separately, is what actually protects threaded servers.)"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _refuse(TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise _refuse(NOT_AN_IMAGE) from None
    except Exception:
        raise _refuse(refusal) from None


def _decode(data: bytes, max_bytes: int) -> tuple[Image.Image, str]:
    """The decoded image in `data` and its format, or ValidationFailed. Checks run from cheap to
    expensive: byte size, then the header (format, Pillow's own bomb limit), then the file's
    structure (verify), then MAX_PIXELS, and only then the full decode."""
    if len(data) > max_bytes:
        raise ValidationFailed({"photo": [_("The photo is larger than %(limit)s MB.",
                                            limit=f"{max_bytes / (1024 * 1024):g}")]})
    with _untrusted(DAMAGED):
        with Image.open(io.BytesIO(data), formats=OPEN_FORMATS) as probe:
            # MPO is Pillow's name for a JPEG carrying extra pictures (phone cameras write them).
            kind = "JPEG" if probe.format == "MPO" else probe.format or ""
            width, height = probe.size
            probe.verify()
    if kind not in SUFFIXES:
        raise _refuse(NOT_AN_IMAGE)
    if width * height > MAX_PIXELS:
        raise _refuse(TOO_MANY_PIXELS)
    with _untrusted(DAMAGED):
        image = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)  # verify() spent the first one
        image.load()
    return image, kind


def _render(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Upright full image and thumbnail without any metadata. Only the first frame of an animation
    is kept. Alpha stays when the source has it (PNG, WebP)."""
    with _untrusted(DAMAGED):
        upright = ImageOps.exif_transpose(image)
        alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
        full = upright.convert("RGBA" if alpha else "RGB")
        full.thumbnail((FULL_SIZE, FULL_SIZE))
        thumb = full.copy()
        thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
    for rendered in (full, thumb):
        rendered.info = {}  # PNG and JPEG writers copy an ICC profile or comment from here
    return full, thumb


def _write(full: Image.Image, thumb: Image.Image, kind: str, storage_dir: Path) -> str:
    """Save both images under a new random name and return it. If the second file fails, the
    first is removed. The files are opened exclusively, so an existing file is never replaced."""
    storage_dir.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}{SUFFIXES[kind]}"
    paths = photo_paths(storage_dir, name)
    try:
        for rendered, path in zip((full, thumb), paths, strict=True):
            with path.open("xb") as out:
                rendered.save(out, format=kind, **SAVE_OPTIONS[kind])
    except BaseException:
        _delete_files(storage_dir, name)
        raise
    return name


def _delete_files(storage_dir: Path, name: str | None) -> None:
    """Delete a photo's files, on a best-effort basis. After a commit, a file left behind is an
    orphan to clean up later, not a reason to report a failed save. A name this module did not
    generate is left alone."""
    if not name or STORED_NAME.fullmatch(name) is None:
        return
    for path in photo_paths(storage_dir, name):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("Could not delete photo file %s", path, exc_info=True)


def _check_may_edit(session: DbSession, customer: Customer, actor: Operator | None,
                    seen_version: SeenVersion) -> None:
    """A photo belongs to a saved customer, needs the edit right on it and the customer's version
    the page showed (services.versions: VersionRequired, StaleRecord). Actor None is the system,
    which no ownership restricts."""
    if customer.id is None:
        raise DomainError(_("Save the customer before adding a photo."))
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    check_seen_version(session, "customer", customer, seen_version)


def _set_photo(session: DbSession, customer: Customer, actor: Operator | None, new: str | None) -> None:
    """Set the column with its audit event. Flushing first lets the event carry the new version
    of the customer."""
    old = customer.photo
    customer.photo = new
    customer.updated_by = actor
    flush(session)
    record(session, actor, "update", customer, {"photo": [old, new]})
    flush(session)


def store_photo(
    session: DbSession,
    customer: Customer,
    actor: Operator | None,
    data: bytes,
    storage_dir: Path,
    *,
    max_bytes: int = MAX_BYTES,
    seen_version: SeenVersion = ON_CURRENT,
) -> str:
    """Check the upload, store it as `customer`'s photo and return the stored name. The upload
    must be PNG, JPEG or WebP, at most `max_bytes` and MAX_PIXELS. The previous photo's files are
    deleted after the door's unit of work commits; the new ones if it rolls back. The customer's
    version is checked first (`seen_version`, see _check_may_edit). Raises ValidationFailed
    (message under "photo"), StaleRecord, VersionRequired or PermissionDenied. After a refusal,
    no file is written and the column is unchanged."""
    _check_may_edit(session, customer, actor, seen_version)
    image, kind = _decode(data, max_bytes)
    full, thumb = _render(image)
    old = customer.photo
    name = _write(full, thumb, kind, storage_dir)
    try:
        after_rollback(session, partial(_delete_files, storage_dir, name))
        _set_photo(session, customer, actor, name)
    except BaseException:
        _delete_files(storage_dir, name)
        raise
    if old is not None:
        after_commit(session, partial(_delete_files, storage_dir, old))
    return name


def remove_photo(session: DbSession, customer: Customer, actor: Operator | None, storage_dir: Path, *,
                 seen_version: SeenVersion = ON_CURRENT) -> None:
    """Clear `customer`'s photo with its audit event; its files are deleted after the door's unit
    of work commits. Does nothing if there is no photo. Raises PermissionDenied without the edit
    right, VersionRequired / StaleRecord for the customer's version (`seen_version`)."""
    _check_may_edit(session, customer, actor, seen_version)
    old = customer.photo
    if old is None:
        return
    _set_photo(session, customer, actor, None)
    after_commit(session, partial(_delete_files, storage_dir, old))
