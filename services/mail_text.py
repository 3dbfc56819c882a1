"""The text of a mail as the desk keeps it: HTML reduced to plain text (BeautifulSoup: scripts,
styles and markup gone, links as "text <url>", quotes as "> "), control characters removed, and
a reply without the earlier messages it quotes. Plain functions, no Flask."""

from __future__ import annotations

import re
import warnings

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but \t and \n (\r is folded first)


def safe_text(value: str) -> str:
    """Line breaks as \\n, no control characters (but tab and line break), no NUL."""
    return CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


# --- HTML to text -------------------------------------------------------------------------------

BLOCKS = ("p", "div", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section",
          "article", "header", "footer", "address", "hr", "dl", "dt", "dd")
DROPPED = ("script", "style", "head", "title", "template", "noscript", "iframe", "object", "embed", "svg")
# Deeper markup is no mail anybody wrote: bs4's insertions below walk the nesting, so each one on
# it cost time in proportion to the depth (quadratic in all). Beyond it, the plain text only.
MAX_DEPTH = 100


def _too_deep(soup) -> bool:
    depth = {id(soup): 0}
    for element in soup.descendants:
        level = depth.get(id(element.parent), 0) + 1
        if level > MAX_DEPTH:
            return True
        if hasattr(element, "contents"):
            depth[id(element)] = level
    return False


def html_to_text(html: str) -> str:
    """Plain text of an HTML mail: what a reader sees, without markup, scripts or styles."""
    from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "html.parser")
    for tag in soup(DROPPED):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    if _too_deep(soup):
        return _tidy(soup.get_text("\n"))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for link in soup.find_all("a"):
        href, label = str(link.get("href") or "").strip(), link.get_text(" ", strip=True)
        if href.startswith(("http://", "https://", "mailto:")) and href.removeprefix("mailto:") != label:
            link.replace_with(f"{label} <{href}>" if label else href)
    for item in soup.find_all("li"):
        item.insert(0, "- ")
        item.append("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.append(" ")
    for block in soup.find_all(BLOCKS):
        block.insert_before("\n")
        block.append("\n")
    for quote in reversed(soup.find_all("blockquote")):
        inner = _tidy(quote.get_text())
        quote.replace_with("\n" + "\n".join(f"> {line}".rstrip() for line in inner.split("\n")) + "\n")
    return _tidy(soup.get_text())


def _tidy(text: str) -> str:
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- quoted replies -----------------------------------------------------------------------------

ATTRIBUTION = re.compile(r"^(On\b.{0,300}\bwrote:|Am\b.{0,300}\bschrieb\b.{0,100}:"
                         r"|-{2,}\s*Original Message\s*-{2,}|_{10,})\s*$", re.IGNORECASE)
QUOTE_LEFT_OUT = "[… the earlier messages quoted below the reply are left out]"


def trim_quoted(text: str) -> str:
    """A reply without the earlier messages it quotes (they are in the thread already): the text
    above "On … wrote:" (or Outlook's "Original Message" line), plus whatever the writer put
    between the quoted lines. Nothing is trimmed when nothing would be left."""
    lines = text.split("\n")
    cut = _attribution_line(lines)
    if cut is None:
        end = len(lines)
        while end and (lines[end - 1].startswith(">") or not lines[end - 1].strip()):
            end -= 1
        if end == len(lines) or not any(line.startswith(">") for line in lines[end:]):
            return text
        kept, rest = lines[:end], []
    else:
        start, after = cut
        kept, tail = lines[:start], lines[after:]
        quoted = [line for line in tail if line.strip()]
        # "> " quoting: the writer's own lines between the quotes stay; Outlook quotes without marks.
        marked = quoted and sum(line.startswith(">") for line in quoted) >= len(quoted) / 2
        rest = [line for line in tail if not line.startswith(">")] if marked else []
    reply = "\n".join(kept).strip()
    own = "\n".join(rest).strip()
    if not reply and not own:
        return text
    return "\n\n".join(part for part in (reply, own, QUOTE_LEFT_OUT) if part)


def _attribution_line(lines: list[str]) -> tuple[int, int] | None:
    """(first line of the attribution, first line after it): "On … wrote:" may be wrapped."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if ATTRIBUTION.match(stripped):
            return index, index + 1
        if index + 1 < len(lines) and stripped.lower().startswith("on ") \
                and ATTRIBUTION.match(f"{stripped} {lines[index + 1].strip()}"):
            return index, index + 2
    return None
