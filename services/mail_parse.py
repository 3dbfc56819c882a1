"""One raw e-mail read into what the desk keeps of it: the sender, the subject, safe text, the
attachments and the references to our earlier mail — never raising, whatever the bytes are.

- Text: the text/plain body when there is one, else the HTML body reduced to plain text with
  BeautifulSoup (scripts, styles and markup gone; links kept as "text <url>", quotes as "> ").
  The text is stored and shown as text, never as HTML, so nothing in a mail can run on a page.
- Charsets: a charset Python does not know is read as UTF-8 with replacement characters and
  said so in a note; NUL and other control characters (but line breaks and tabs) are removed,
  since neither PostgreSQL nor the thread takes them.
- Headers are decoded (RFC 2047) and flattened to one line (services.mail_out.one_line), so an
  encoded line break in a name or subject can never become a header of a mail we send later.
- Attachments: each part that is not the body, up to `attachment_limit` bytes (decoded); larger
  ones are dropped with a note naming them. A forwarded mail (message/rfc822) is one .eml file.
- Broken MIME (a multipart without its boundary, a part without a header/body separator) is
  reported in `problem`, so the intake holds the mail for an operator instead of guessing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import errors as email_errors
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import getaddresses
from typing import Any

from services.contact_info import normalise_email
from services.mail_out import one_line
from services.mail_text import html_to_text, safe_text

# Defects after which the parser's reading of the structure is a guess.
BROKEN = (email_errors.StartBoundaryNotFoundDefect, email_errors.MultipartInvariantViolationDefect,
          email_errors.MissingHeaderBodySeparatorDefect, email_errors.CloseBoundaryNotFoundDefect,
          email_errors.NoBoundaryInMultipartDefect,
          email_errors.InvalidMultipartContentTransferEncodingDefect)
MESSAGE_ID = re.compile(r"<[^<>\s]{1,1000}>")
MAX_ATTACHMENTS = 50
SHOWN_DROPPED = 10  # names of dropped attachments said in the note; the rest counted
MAX_REFERENCES = 20  # In-Reply-To and the newest of References: where a reply names what it answers
KEY_LIMIT = 255  # IncomingMail.message_key


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    """What the desk keeps of one mail. `text` is safe plain text; `notes` say what was changed
    or left out on the way (said in the comment or the held mail)."""

    message_id: str | None = None
    from_address: str | None = None  # normalised, lower-case; None: no usable sender
    from_name: str = ""
    sender_problem: str | None = None
    subject: str = ""
    text: str = ""
    notes: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # In-Reply-To first, then References, newest first
    recipients: set[str] = field(default_factory=set)  # To, Cc and the envelope's Delivered-To & co.
    auto_submitted: bool = False
    problem: str | None = None  # the MIME structure is broken: an operator decides


def message_key(parsed: ParsedMail, raw: bytes) -> str:
    """The key the mail is remembered by in its mailbox: its Message-ID, or "sha256:<digest of
    the raw bytes>" without one (an over-long Message-ID is remembered by its own digest)."""
    if parsed.message_id:
        if len(parsed.message_id) <= KEY_LIMIT:
            return parsed.message_id
        return "sha256-id:" + hashlib.sha256(parsed.message_id.encode()).hexdigest()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse_mail(raw: bytes, attachment_limit: int) -> ParsedMail:
    """Read `raw` (the bytes a POP3 RETR gave, or only the headers of a mail over the limit)."""
    parsed = ParsedMail()
    try:
        message = BytesParser(policy=default_policy).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; anything it still throws is a broken mail
        parsed.problem = f"The mail could not be read at all ({type(exc).__name__})."
        parsed.text = safe_text(raw[:20_000].decode("utf-8", "replace"))
        return parsed
    _read_headers(message, parsed)
    defects = [d for part in _walk(message) for d in getattr(part, "defects", []) if isinstance(d, BROKEN)]
    if defects:
        names = sorted({_defect_words(d) for d in defects})
        parsed.problem = f"The mail's MIME structure is broken ({'; '.join(names)})."
    _read_body(message, parsed, attachment_limit)
    return parsed


def read_headers(raw_headers: bytes) -> ParsedMail:
    """Only the headers (a mail over the size limit is refused on them, without reading it)."""
    parsed = ParsedMail()
    try:
        message = BytesParser(policy=default_policy).parsebytes(raw_headers, headersonly=True)
    except Exception:
        return parsed
    _read_headers(message, parsed)
    return parsed


# --- headers ----------------------------------------------------------------------------------

def _header(message: Message, name: str) -> str:
    """A header's decoded value as one line ("" when absent or undecodable)."""
    try:
        values = message.get_all(name) or []
        return one_line(safe_text(" ".join(str(v) for v in values)))
    except Exception:  # a header the policy cannot parse: its raw text, flattened
        try:
            raw = message.get(name, "") if hasattr(message, "get") else ""
            return one_line(safe_text(str(raw)))
        except Exception:
            return ""


def _raw_header(message: Message, name: str) -> str:
    """The header as it came (encoded words undecoded): for addresses and Message-IDs."""
    try:
        return " ".join(str(value) for key, value in message.raw_items() if key.lower() == name)
    except Exception:
        return ""


def _read_headers(message: Message, parsed: ParsedMail) -> None:
    found = MESSAGE_ID.findall(_raw_header(message, "message-id"))
    parsed.message_id = safe_text(found[0]) if found else None
    parsed.subject = _header(message, "Subject")
    parsed.references = _message_ids(message)
    parsed.recipients = {address for header in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
                         for _, address in _addresses(message, header)}
    _read_sender(message, parsed)
    auto = _header(message, "Auto-Submitted").lower()
    precedence = _header(message, "Precedence").lower()
    local_part = (parsed.from_address or "").split("@")[0]
    parsed.auto_submitted = bool(
        (auto and auto != "no") or precedence in ("bulk", "junk", "list", "auto_reply")
        or _header(message, "X-Autoreply") or _header(message, "X-Autorespond")
        or local_part in ("mailer-daemon", "postmaster")
        or message.get_content_type() == "multipart/report")


def _message_ids(message: Message) -> list[str]:
    in_reply_to = MESSAGE_ID.findall(_raw_header(message, "in-reply-to"))
    references = MESSAGE_ID.findall(_raw_header(message, "references"))
    return list(dict.fromkeys(in_reply_to + list(reversed(references))))[:MAX_REFERENCES]


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address lower-cased) of an address header; never raises. The policy's own
    parse first (it decodes the names: an encoded "@" in a name is no address), the raw text as
    the fallback for a header it cannot parse."""
    try:
        found = [(a.display_name, a.addr_spec) for header in (message.get_all(name) or [])
                 for a in getattr(header, "addresses", ())]
    except Exception:  # e.g. a name whose encoded words hide a line break
        try:
            found = getaddresses([ENCODED_WORD.sub(_quoted_word, _raw_header(message, name.lower()))])
        except Exception:
            found = []
    return [(one_line(safe_text(n)), a.strip().lower()) for n, a in found if a and "@" in a]


ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _quoted_word(match: re.Match) -> str:
    """An encoded word of a name as a quoted string of its decoded text, flattened to one line."""
    try:
        text = str(make_header(decode_header(match.group(0))))
    except Exception:
        text = ""
    return '"' + one_line(safe_text(text)).replace("\\", "").replace('"', "'") + '"'


def _read_sender(message: Message, parsed: ParsedMail) -> None:
    senders = _addresses(message, "From")
    if not senders:
        parsed.sender_problem = "The mail has no sender address."
        return
    if len({address for _, address in senders}) > 1:
        parsed.sender_problem = "The mail names more than one sender."
    name, address = senders[0]
    parsed.from_name = name[:255]
    try:
        parsed.from_address = (normalise_email(address) or "").lower() or None
    except ValueError:
        parsed.from_address = None
        parsed.sender_problem = parsed.sender_problem or "The sender's address is not a valid e-mail address."
        parsed.from_name = parsed.from_name or one_line(safe_text(address))[:255]


# --- body and attachments -----------------------------------------------------------------------

def _walk(message: Message):
    try:
        yield from message.walk()
    except Exception:
        yield message


def _read_body(message: Message, parsed: ParsedMail, attachment_limit: int) -> None:
    body = _body_part(message)
    if body is not None:
        text = _decoded_text(body, parsed)
        if body.get_content_type() == "text/html":
            text = html_to_text(text)
        parsed.text = safe_text(text).strip()
    elif parsed.problem:
        # A broken structure: what it holds as text, for the operator who decides.
        parsed.text = safe_text(_payload(message).decode("utf-8", "replace"))[:50_000].strip()
        return
    _collect_attachments(message, body, parsed, attachment_limit)


def _body_part(message: Message) -> Message | None:
    try:
        if isinstance(message, EmailMessage):
            for kind in (("plain",), ("html",)):
                part = message.get_body(preferencelist=kind)
                if part is not None and (kind == ("html",) or _payload(part).strip()):
                    return part
    except Exception:
        pass
    if message.is_multipart():
        return None
    if message.get_content_maintype() == "text" and not _is_attachment(message):
        return message
    return None


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def _decoded_text(part: Message, parsed: ParsedMail) -> str:
    data = _payload(part)
    charset = part.get_content_charset() or "us-ascii"
    try:
        return data.decode(charset, "replace")
    except (LookupError, ValueError):  # an unknown charset, or a codec that is no text encoding
        parsed.notes.append(f"The mail's charset {one_line(charset)[:60]!r} is unknown: it was read as "
                            "UTF-8, so some characters may be wrong.")
        return data.decode("utf-8", "replace")


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment" or bool(part.get_filename())
    except Exception:
        return False


def _collect_attachments(message: Message, body: Message | None, parsed: ParsedMail, limit: int) -> None:
    dropped: list[str] = []
    for part in _leaves(message):
        if part is body:
            continue
        if part.get_content_type() in ("text/plain", "text/html") and not _is_attachment(part):
            continue  # the other alternative of the body (the HTML of a plain body)
        data = part.as_bytes() if part.get_content_type() == "message/rfc822" else _payload(part)
        name = _filename(part, len(parsed.attachments) + len(dropped) + 1)
        if len(data) > limit:
            dropped.append(f"“{name}” ({megabytes(len(data))})")
        elif len(parsed.attachments) >= MAX_ATTACHMENTS:
            dropped.append(f"“{name}” (more than {MAX_ATTACHMENTS} attachments)")
        else:
            content_type = one_line(part.get_content_type())[:127] or "application/octet-stream"
            parsed.attachments.append(Attachment(name, content_type, data))
    if dropped:
        named = ", ".join(dropped[:SHOWN_DROPPED])
        more = f" and {len(dropped) - SHOWN_DROPPED} more" if len(dropped) > SHOWN_DROPPED else ""
        parsed.notes.append(f"Not kept, over the limit of {megabytes(limit)} per attachment: {named}{more}.")


def _leaves(part: Any):
    """The parts that carry content; a forwarded mail is one part, not its insides."""
    if part.get_content_type() == "message/rfc822" and part is not None:
        yield part
        return
    if part.is_multipart():
        try:
            children = part.get_payload()
        except Exception:
            children = []
        for child in children if isinstance(children, list) else []:
            yield from _leaves(child)
    else:
        yield part


def _filename(part: Message, number: int) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = one_line(safe_text(str(name))).replace("\\", "/").rsplit("/", 1)[-1].strip(". ")
    if not name:
        extension = {"message/rfc822": ".eml", "text/plain": ".txt", "text/html": ".html"}.get(
            part.get_content_type(), "")
        name = f"attachment-{number}{extension}"
    return name[-255:]


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KB"


def _defect_words(defect: Exception) -> str:
    words: dict[type, str] = {
        email_errors.StartBoundaryNotFoundDefect: "a multipart whose boundary never appears",
        email_errors.CloseBoundaryNotFoundDefect: "a multipart that never ends",
        email_errors.MultipartInvariantViolationDefect: "a multipart without parts",
        email_errors.MissingHeaderBodySeparatorDefect: "a part without a blank line after its headers",
        email_errors.NoBoundaryInMultipartDefect: "a multipart without a boundary",
        email_errors.InvalidMultipartContentTransferEncodingDefect: "a multipart with a transfer encoding",
    }
    return words.get(type(defect), type(defect).__name__)
