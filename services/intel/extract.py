"""Main text of a fetched page, as plain text and as a list of (tag, text) blocks.

Parsed with selectolax (the Lexbor HTML engine): scripts, styles, navigation, footers, forms
and everything that quotes other people (blockquotes, testimonials, reviews) are dropped
before the text is read, so what a report says comes from the page's own claims and a
rotating testimonial never shows up as a change. The result is text only: no markup of the
page ever reaches the browser.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

MAX_TEXT_CHARS = 60_000
MAX_BLOCKS = 600
MAX_BLOCK_CHARS = 600
EXCERPT_CHARS = 500

_DROP = (
    "script, style, noscript, template, svg, canvas, iframe, object, embed, form, button, "
    "nav, footer, aside, dialog, blockquote, q, cite, "
    "[class*=testimonial], [class*=Testimonial], [id*=testimonial], [class*=review], "
    "[class*=quote], [class*=cookie], [aria-hidden=true], [hidden]"
)
_BLOCKS = "h1, h2, h3, h4, p, li, td, th, dt, dd, [class*=price], [class*=Price]"
_SOCIAL_HOSTS = {
    "linkedin.com": "LinkedIn",
    "twitter.com": "X (Twitter)",
    "x.com": "X (Twitter)",
    "facebook.com": "Facebook",
    "instagram.com": "Instagram",
    "youtube.com": "YouTube",
    "tiktok.com": "TikTok",
    "pinterest.com": "Pinterest",
    "medium.com": "Medium",
    "github.com": "GitHub",
}


@dataclass
class Extracted:
    title: str = ""
    description: str = ""
    text: str = ""
    blocks: list[tuple[str, str]] = field(default_factory=list)
    social: list[str] = field(default_factory=list)  # platform names linked from the page

    @property
    def excerpt(self) -> str:
        source = self.description or self.text
        return source[:EXCERPT_CHARS]


def clean_text(value: str) -> str:
    """Visible text: control and format characters removed, whitespace collapsed."""
    value = "".join(
        ch
        for ch in str(value or "")
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Co", "Cs")
    )
    return re.sub(r"\s+", " ", value).strip()


def _social(tree: LexborHTMLParser) -> list[str]:
    found: list[str] = []
    for anchor in tree.css("a[href]"):
        href = (anchor.attributes.get("href") or "").lower()
        match = re.match(r"https?://(?:www\.)?([^/:?#]+)", href)
        if not match:
            continue
        host = match.group(1)
        for domain, name in _SOCIAL_HOSTS.items():
            if (host == domain or host.endswith("." + domain)) and name not in found:
                found.append(name)
    return found


def extract_html(html: bytes | str) -> Extracted:
    """Title, description, main text and blocks of an HTML page."""
    if isinstance(html, bytes):
        html = html.decode("utf-8", "replace")
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = clean_text(title_node.text()) if title_node is not None else ""
    description = ""
    for selector in ('meta[name="description"]', 'meta[property="og:description"]'):
        node = tree.css_first(selector)
        if node is not None and node.attributes.get("content"):
            description = clean_text(node.attributes["content"])[:EXCERPT_CHARS]
            break
    social = _social(tree)
    for node in tree.css(_DROP):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
    blocks: list[tuple[str, str]] = []
    seen: set[str] = set()
    if root is not None:
        for node in root.css(_BLOCKS):
            text = clean_text(node.text(separator=" ", strip=True))[:MAX_BLOCK_CHARS]
            if not text or text in seen:
                continue
            tag = node.tag if node.tag in ("h1", "h2", "h3", "h4", "li") else "p"
            if "price" in (node.attributes.get("class") or "").lower():
                tag = "price"
            seen.add(text)
            blocks.append((tag, text))
            if len(blocks) >= MAX_BLOCKS:
                break
    text = "\n".join(text for _tag, text in blocks)[:MAX_TEXT_CHARS]
    if not text and root is not None:
        text = clean_text(root.text(separator=" ", strip=True))[:MAX_TEXT_CHARS]
    return Extracted(
        title=title[:300], description=description, text=text, blocks=blocks, social=social
    )


def extract_plain(text: str) -> Extracted:
    """Pasted material or a text/plain page: one block per non-empty line."""
    lines = [clean_text(line)[:MAX_BLOCK_CHARS] for line in str(text or "").splitlines()]
    blocks = [("p", line) for line in lines if line][:MAX_BLOCKS]
    return Extracted(text="\n".join(line for _t, line in blocks)[:MAX_TEXT_CHARS], blocks=blocks)


__all__ = ["Extracted", "clean_text", "extract_html", "extract_plain"]
