"""HTML that shows user or server text stays inert: every payload reads back as text, never as markup.

Each piece of HTML is parsed with the standard library's parser (what a browser does first) and
checked structurally, not by searching for a substring: no element or attribute that the payload
could have smuggled in (``<script>``, ``<img onerror>``, ``on*=`` handlers), every text and
attribute value reads back exactly as given, and every URL attribute is http(s), a local path, or
absent. The payloads carry both quote kinds, backticks, ``javascript:`` URLs and closing tags, so
an attribute written with ``quote=False`` or a message written without escaping breaks the check.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from runflow_nb.views import display

PAYLOADS = [
    '" onmouseover="alert(1)',
    "' onfocus='alert(2)' autofocus='",
    "`onerror=`alert(3)`",
    '"><img src=x onerror=alert(4)>',
    "</figcaption><script>alert(5)</script>",
    "javascript:alert(6)",
    "a & b < c > d \"e\" 'f' `g`",
]
BAD_URLS = ["javascript:alert(7)", "JaVaScRiPt:alert(8)", " javascript:alert(9)", "data:text/html,<script>x</script>",
            "vbscript:msgbox(1)"]
URL_ATTRS = {"src", "href", "poster", "action", "formaction", "xlink:href", "data"}
ALLOWED_TAGS = {"figure", "video", "figcaption", "span", "b", "br", "a", "div", "img", "source", "table", "thead",
                "tbody", "tr", "th", "td", "p", "small", "i", "em", "strong", "details", "summary", "code", "style",
                "button", "label", "input", "select", "option"}


class Markup(HTMLParser):
    """Elements, attributes and text of a fragment, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attribute_values(self) -> list[str]:
        return [v for _tag, attrs in self.elements for v in attrs.values() if v is not None]


def _is_data_image(value: str) -> bool:
    """A small still inlined as a data URI (posters may be): an image type, nothing that runs."""
    head = value.strip().lower().split(",", 1)[0]
    return head.startswith("data:image/") and head.split(";")[0] in (
        "data:image/jpeg", "data:image/png", "data:image/webp")


def assert_inert(markup: str, *, texts: list[str] = (), titles: list[str] = ()) -> Markup:  # type: ignore[assignment]
    parsed = Markup(markup)
    for tag, attrs in parsed.elements:
        assert tag in ALLOWED_TAGS, f"unexpected <{tag}> in {markup[:400]!r}"
        assert tag != "script"
        for name, value in attrs.items():
            assert not name.startswith("on") or tag == "video", f"handler {name}= on <{tag}>: {markup[:400]!r}"
            assert "`" not in name and '"' not in name and "'" not in name, f"attribute {name!r} smuggled in"
            if name in URL_ATTRS and value:
                scheme = urlsplit(value.strip()).scheme.lower()
                still = name in ("poster", "src") and tag in ("video", "img") and _is_data_image(value)
                assert scheme in ("", "http", "https") or still, f"<{tag} {name}={value!r}> in {markup[:400]!r}"
    body = "".join(parsed.text)
    for text in texts:
        assert text in body or text in parsed.attribute_values(), f"{text!r} does not read back as text: {markup!r}"
    values = parsed.attribute_values()
    for title in titles:
        assert title in values, f"{title!r} is not an intact attribute value: {[v[:60] for v in values]}"
    return parsed


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_prompt_is_text_in_the_caption_and_whole_in_its_title(payload: str) -> None:
    prompt = f"character1 {payload}"
    markup = display.caption_html({"seed": 3}, prompt=prompt)
    parsed = assert_inert(markup, texts=[prompt], titles=[prompt])
    spans = [a for tag, a in parsed.elements if tag == "span" and "title" in a]
    assert [a["title"] for a in spans] == [prompt]  # one attribute, holding the whole prompt
    long = prompt + " " + "x" * 120  # shortened on screen, whole on hover
    assert_inert(display.caption_html({}, prompt=long), titles=[long])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_field_names_and_values_in_a_caption_are_text(payload: str) -> None:
    markup = display.caption_html({payload: payload, "seed": 1})
    assert_inert(markup, texts=[payload])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_failed_runs_server_message_is_text(payload: str) -> None:
    row = {"run_id": "r1", "status": "failed", "error_message": f"model said: {payload}", "prompt": payload,
           "seed": 4, "duration": 5, "resolution": "720p", "backend": "runflow"}
    markup = display.row_html(row)
    assert_inert(markup, texts=[f"model said: {payload}", "failed"], titles=[payload])


@pytest.mark.parametrize("status", ["failed", "error", "unknown", "skipped_budget", "download_failed"])
def test_every_unfinished_status_renders_its_message_as_text(status: str) -> None:
    message = '<img src=x onerror="alert(1)"> `x` \'y\' "z"'
    markup = display.row_html({"run_id": "r", "status": status, "error_message": message, "prompt": "p"})
    parsed = assert_inert(markup, texts=[message])
    assert not [t for t, _ in parsed.elements if t == "img"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_paths_with_quotes_stay_inside_their_attributes(payload: str) -> None:
    src = f"videos/{payload}.mp4"
    markup = display.video_html(src, poster=f"posters/{payload}.jpg", caption="", element_id=payload)
    parsed = assert_inert(markup)
    (video,) = [a for t, a in parsed.elements if t == "video"]
    assert video["src"] == src and video["poster"] == f"posters/{payload}.jpg" and video["id"] == payload
    # the handlers are the toolkit's own (hover preview, one clip heard at a time), never the payload's
    assert set(video) <= {"src", "poster", "id", "controls", "preload", "playsinline", "style", "onplay",
                          "onvolumechange", "onmouseenter", "onmouseleave", "onclick"}
    assert all(payload not in str(video[k]) for k in video if k.startswith("on"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_local_video_path_becomes_a_relative_url_that_reads_back(payload: str, tmp_path: Any) -> None:
    path = tmp_path / f"clip {payload.replace('/', '_')}.mp4"
    src = display.media_src(path, base=tmp_path)
    assert urlsplit(src).scheme == "" and unquote(src) == path.name
    assert_inert(display.video_html(src))


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_non_http_link_never_becomes_an_href(url: str) -> None:
    markup = display.caption_html({"seed": 1}, prompt="p", link=url)
    assert_inert(markup)


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_stored_non_http_video_url_never_reaches_src_or_href(url: str) -> None:
    row = {"run_id": "r", "status": "succeeded", "video_path": url, "poster_path": url, "prompt": "p"}
    assert_inert(display.row_html(row))


def test_escaping_is_not_double_escaping() -> None:
    """What the user typed is what they read: ``&`` shows as ``&``, not ``&amp;``."""
    prompt = "Tom & Jerry <3 \"quoted\" 'single' `tick`"
    parsed = assert_inert(display.caption_html({}, prompt=prompt), texts=[prompt], titles=[prompt])
    assert html.escape(prompt) not in "".join(parsed.text)


def test_show_displays_escaped_html_for_a_row_a_result_and_a_path(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Any) -> None:
    """``rf.show`` hands one HTML object to IPython's display for each kind of thing it shows."""
    import IPython.display

    import runflow_nb as rf

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    payload = PAYLOADS[0]
    row = {"run_id": "r", "status": "failed", "error_message": payload, "prompt": payload}
    assert rf.show(row) is None
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0")
    rf.show(str(video))
    rf.show("https://cdn.example.org/clip.mp4?sig=a&b=1")
    assert [type(x).__name__ for x in shown] == ["HTML", "HTML", "HTML"]
    assert_inert(shown[0].data, texts=[payload], titles=[payload])
    (v1,) = [a for t, a in Markup(shown[1].data).elements if t == "video"]
    assert unquote(str(v1["src"])).endswith("v.mp4") and "controls" in v1 and "autoplay" not in v1
    (v2,) = [a for t, a in Markup(shown[2].data).elements if t == "video"]
    assert v2["src"] == "https://cdn.example.org/clip.mp4?sig=a&b=1"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_http_link_with_quotes_stays_one_attribute(payload: str) -> None:
    url = f"https://cdn.example.org/clip.mp4?note={payload}"
    parsed = assert_inert(display.caption_html({}, link=url))
    assert [a["href"] for t, a in parsed.elements if t == "a"] == [url]
    (video,) = [a for t, a in Markup(display.video_html(url, poster=url)).elements if t == "video"]
    assert video["src"] == url and video["poster"] == url


@pytest.mark.skipif(__import__("os").name == "nt", reason="C: is a drive on Windows")
def test_a_one_letter_scheme_is_a_scheme_outside_windows() -> None:
    assert display.safe_url("c:alert(1)") == "" and display.safe_url("C:/x.mp4") == ""


@pytest.mark.parametrize(("url", "data", "kept"), [
    ("https://cdn.example.org/a.mp4", True, True),
    ("HTTPS://cdn.example.org/a.mp4", True, True),
    ("http://h/a.mp4", False, True),
    ("clips/a b.mp4", True, True),  # a relative path: served beside the notebook or report
    ("/files/clips/a.mp4", True, True),
    ("//cdn.example.org/a.mp4", True, True),  # network-path reference: the page's own http(s)
    ("data:image/jpeg;base64,AAAA", True, True),
    ("DATA:Video/mp4;base64,AAAA", True, True),
    ("data:image/jpeg;base64,AAAA", False, False),  # links never take data: URIs
    ("data:text/html,<script>x</script>", True, False),
    ("data:,plain", True, False),
    ("javascript:alert(1)", True, False),
    ("JaVaScRiPt:alert(1)", True, False),
    ("java\tscript:alert(1)", True, False),  # browsers drop tabs and newlines inside URLs
    ("ht\ttp://h/a.mp4", True, True),  # ... so this is http
    ("blob:image/png", True, False),  # a media type after another scheme is no data: URI
    ("java\nscript:alert(1)", True, False),
    ("\x00javascript:alert(1)", True, False),
    (" javascript:alert(1)", True, False),
    ("vbscript:msgbox(1)", True, False),
    ("file:///etc/passwd", True, False),
    ("blob:https://h/x", True, False),
    ("", True, False),
    (None, True, False),
])
def test_safe_url_keeps_http_paths_and_media_data_only(url: str | None, data: bool, kept: bool) -> None:
    got = display.safe_url(url, data=data)
    assert got == (url if kept else ""), (url, got)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_server_notice_under_a_clip_is_text(payload: str) -> None:
    markup = display.notice_html(f"image_urls[0]: {payload} could not be fetched; $0 placeholder")
    page = Markup(markup)
    assert [tag for tag, _ in page.elements] == ["div"] and "rf-notice" in str(page.elements[0][1]["class"])
    assert "".join(page.text) == f"⚠ image_urls[0]: {payload} could not be fetched; $0 placeholder"
    assert "$" not in markup  # MathJax-safe
    assert display.notice_html(None) == display.notice_html("") == display.notice_html(float("nan")) == ""
