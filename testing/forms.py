"""The forms of a page as a browser posts them, for tests and benchmarks that act as browsers."""

from __future__ import annotations

from html.parser import HTMLParser


class Forms(HTMLParser):
    """Every <form> of a page: its action and the values a browser would post unchanged — checked
    boxes only, a select's selected options (its first one when none is), a textarea's text without
    the one leading line break HTML drops."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._select: tuple[str, bool] | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), []))
        if not self.forms:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.forms[-1][1].append((name, a.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif tag == "select" and name:
            self._select, self._options = (name, "multiple" in a), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None and self.forms:
            name, multiple = self._select
            chosen = [v for v, selected in self._options if selected]
            if not chosen and not multiple and self._options:
                chosen = [self._options[0][0]]
            self.forms[-1][1].extend((name, v) for v in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self.forms:
            text = self._text[1:] if self._text.startswith("\n") else self._text
            self.forms[-1][1].append((self._textarea, text))
            self._textarea = None
