"""The local report builder: a report made only of what the fetched sources say (offline).

Extractive, not generative: every claim is a sentence, heading, price or link found in one
of the report's sources, or a plain observation about them ("no public prices on the pricing
page"), and cites the sources it came from. It reads the (tag, text) blocks that
`services.intel.extract` kept, so quotes, testimonials and reviews (dropped there) never
become claims. The brand kit ("us") shapes the opportunities and the Studio prompts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from services.intel.schema import FOCUSES

PRICE = re.compile(
    r"(?:[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\d[\d,]*(?:\.\d{1,2})?\s?(?:USD|EUR|GBP|€)|\bfree\b)",
    re.IGNORECASE,
)
CONTACT_PRICE = re.compile(
    r"\b(contact (?:sales|us)|custom pricing|talk to sales|get a quote)\b", re.I
)
PERIOD = re.compile(
    r"(?:/\s?(mo|month|yr|year|user|seat)|per (month|year|user|seat)|monthly|annually)", re.I
)
POSITIONING_CUES = re.compile(
    r"\b(for (?:teams|marketers|companies|businesses|agencies|brands|startups|enterprises)|"
    r"helps?|platform|built (?:for|to)|the only|leading|all-in-one|#1|designed for|we make)\b",
    re.I,
)
PROOF_CUES = re.compile(
    r"(\d[\d,.]*\s?(?:\+|%|k\b|m\b)|\d[\d,]*\s(?:customers|teams|companies|brands|countries|"
    r"users|integrations)|\b(trusted by|award|rated|since \d{4}|founded in \d{4})\b)",
    re.I,
)
CHANNEL_CUES = {
    "blog": "Blog",
    "newsletter": "Newsletter",
    "webinar": "Webinars",
    "podcast": "Podcast",
    "community": "Community",
    "events": "Events",
    "partner": "Partner program",
    "affiliate": "Affiliate program",
}
GENERIC_HEADINGS = {
    "pricing",
    "plans",
    "features",
    "faq",
    "faqs",
    "about",
    "about us",
    "contact",
    "blog",
    "resources",
    "company",
    "product",
    "menu",
    "frequently asked questions",
}
STOPWORDS = set(
    """a an the and or but if of to in on for with by from at as is are was were be been it its
    this that these those you your we our us they their them he she his her i me my not no yes
    all any more most less can will just so than then there here what which who when where how
    why do does did done get got has have had into about over under up down out off per via
    each every other some such only own same too very also new use using used make makes made
    one two three month year mo yr plan plans pricing price free team teams""".split()
)


@dataclass
class SourceDoc:
    """What the builder reads of one stored source."""

    key: str  # "S1"
    kind: str  # url | pasted
    url: str
    title: str = ""
    description: str = ""
    blocks: list[tuple[str, str]] = field(default_factory=list)
    social: list[str] = field(default_factory=list)

    @property
    def looks_like_pricing(self) -> bool:
        return "pric" in self.url.lower() or "plans" in self.url.lower()

    @property
    def looks_like_about(self) -> bool:
        return "about" in self.url.lower() or "company" in self.url.lower()


@dataclass
class Us:
    """The brand kit the report compares with ("us")."""

    name: str = ""
    voice: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    audience: str = ""


def _claim(text: str, *keys: str) -> dict:
    return {"text": text.strip()[:600], "sources": list(dict.fromkeys(keys))}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]


def _short(text: str, limit: int = 160) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def pricing_tiers(doc: SourceDoc) -> list[dict]:
    """Tiers on a page: a short heading followed by a price (or "contact sales") and features."""
    tiers: list[dict] = []
    heading = ""
    current: dict | None = None
    for tag, text in doc.blocks:
        if tag in ("h2", "h3", "h4"):
            heading = text if len(text) <= 40 else ""
            current = None
            continue
        if current is not None and tag == "li":
            if len(current["features"]) < 8:
                current["features"].append(_short(text, 120))
            continue
        if not heading or any(t["name"].casefold() == heading.casefold() for t in tiers):
            continue
        price = PRICE.search(text)
        contact = CONTACT_PRICE.search(text)
        if price is None and contact is None:
            continue
        if price is not None:
            amount = price.group(0).strip()
            amount = "Free" if amount.lower() == "free" else amount.replace(" ", "")
        else:
            amount = "Contact sales"
        period_match = PERIOD.search(text)
        period = ""
        if period_match:
            word = (period_match.group(1) or period_match.group(2) or period_match.group(0)).lower()
            period = {
                "mo": "per month",
                "month": "per month",
                "monthly": "per month",
                "yr": "per year",
                "year": "per year",
                "annually": "per year",
                "user": "per user",
                "seat": "per seat",
            }.get(word, word)
        current = {
            "name": heading,
            "price": amount,
            "period": period,
            "features": [],
            "sources": [doc.key],
        }
        tiers.append(current)
    return tiers


def _themes(docs: list[SourceDoc], competitor: str) -> list[dict]:
    counts: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    skip = set(re.findall(r"[a-z]+", competitor.lower()))
    for doc in docs:
        for _tag, text in doc.blocks:
            for word in re.findall(r"[a-zA-Z][a-zA-Z-]{3,}", text.lower()):
                if word in STOPWORDS or word in skip:
                    continue
                counts[word] += 1
                if doc.key not in where.setdefault(word, []):
                    where[word].append(doc.key)
    themes = []
    for word, count in counts.most_common(5):
        if count < 2:
            break
        themes.append(
            _claim(f"“{word}” recurs across their pages ({count} mentions).", *where[word])
        )
    return themes


def build_report(
    *, competitor: str, focus: str, docs: list[SourceDoc], us: Us | None = None
) -> dict:
    """The report as a dict for `schema.report_validate`; every claim cites `docs` keys only.

    `docs` holds the usable sources (fetched pages first, pasted material last). At least one
    is needed; the caller fails the report when none could be read.
    """
    if not docs:
        raise ValueError("a report needs at least one usable source")
    focus = focus if focus in FOCUSES else "positioning"
    us = us or Us()
    our_name = us.name or "our brand"
    pages = [d for d in docs if d.kind == "url"]
    home = pages[0] if pages else docs[0]

    # Headline and summary ---------------------------------------------------------------
    h1 = next((text for tag, text in home.blocks if tag == "h1"), "")
    headline_text = h1 or home.title or home.description
    headline = _claim(_short(headline_text, 200), home.key) if headline_text else None
    summary: list[dict] = []
    if h1:
        summary.append(_claim(f"{competitor} leads with “{_short(h1, 200)}”.", home.key))
    for doc in docs:
        if doc.description:
            summary.append(_claim(_short(doc.description, 300), doc.key))
            break
    if not summary:
        first = next(((d, t) for d in docs for tag, t in d.blocks if tag != "li"), None)
        if first is not None:
            summary.append(_claim(_short(first[1], 300), first[0].key))
        else:
            summary.append(_claim(f"{competitor}: {_short(home.title or home.url, 200)}", home.key))

    # Positioning and value propositions -------------------------------------------------
    positioning: list[dict] = []
    ordered = sorted(docs, key=lambda d: (not d.looks_like_about, d is not home))
    for doc in ordered:
        for tag, text in doc.blocks:
            if tag not in ("p", "h2", "h3") or len(positioning) >= 4:
                continue
            for sentence in _sentences(text) or [text]:
                if POSITIONING_CUES.search(sentence) and len(sentence) > 20:
                    positioning.append(_claim(_short(sentence, 300), doc.key))
                    break
    tiers: list[dict] = []
    for doc in pages:
        tiers.extend(pricing_tiers(doc))
    tier_names = {t["name"].casefold() for t in tiers}
    value_props: list[dict] = []
    for doc in docs:
        if doc.looks_like_pricing:
            continue
        for tag, text in doc.blocks:
            if tag in ("h2", "h3") and 3 <= len(text) <= 90:
                lowered = text.casefold()
                if lowered in GENERIC_HEADINGS or lowered in tier_names:
                    continue
                if len(value_props) < 6:
                    value_props.append(_claim(text, doc.key))

    # Channels ----------------------------------------------------------------------------
    channels: list[dict] = []
    named: set[str] = set()
    for doc in docs:
        for name in doc.social:
            if name not in named:
                named.add(name)
                channels.append(_claim(f"{name}: linked from their site.", doc.key))
        for _tag, text in doc.blocks:
            lowered = text.lower()
            for cue, name in CHANNEL_CUES.items():
                if cue in lowered and name not in named:
                    named.add(name)
                    channels.append(_claim(f"{name}: mentioned (“{_short(text, 120)}”).", doc.key))
        if doc.kind == "pasted":
            channels.append(
                _claim("Ads or social posts: the pasted material shows them in use.", doc.key)
            )

    # Themes, strengths, weaknesses -------------------------------------------------------
    themes = _themes(docs, competitor)
    strengths: list[dict] = []
    for doc in docs:
        for tag, text in doc.blocks:
            if tag == "h1" or len(strengths) >= 4:
                continue
            if PROOF_CUES.search(text) and not PRICE.search(text) and len(text) >= 12:
                strengths.append(_claim(_short(text, 240), doc.key))
    weaknesses: list[dict] = []
    pricing_page = next((d for d in pages if d.looks_like_pricing), None)
    if pricing_page is not None and not any(t["sources"] == [pricing_page.key] for t in tiers):
        weaknesses.append(
            _claim(
                "No public prices on their pricing page: buyers must ask sales.", pricing_page.key
            )
        )
    if tiers and not any(
        t["price"] == "Free" or re.match(r"^\D?0(\.0+)?$", t["price"]) for t in tiers
    ):
        weaknesses.append(
            _claim(
                f"No free tier: the cheapest plan is {tiers[0]['name']} at {tiers[0]['price']}.",
                *tiers[0]["sources"],
            )
        )
    if pages and not any(d.social for d in pages):
        weaknesses.append(
            _claim(
                "No social channels are linked from the pages read.", *[d.key for d in pages[:3]]
            )
        )

    # SWOT, opportunities, risks -------------------------------------------------------------
    opportunities: list[dict] = []
    for weakness in weaknesses[:3]:
        opportunities.append(
            _claim(
                f"Where they are weak ({weakness['text'].rstrip('.')}), {our_name} can lead.",
                *weakness["sources"],
            )
        )
    if themes:
        opportunities.append(
            _claim(
                f"Their messaging centres on {themes[0]['text'].split('”')[0].lstrip('“')}; "
                f"{our_name} can own a different promise.",
                *themes[0]["sources"],
            )
        )
    risks: list[dict] = []
    for strength in strengths[:2]:
        risks.append(
            _claim(
                f"Their proof point may win comparisons: {strength['text']}", *strength["sources"]
            )
        )
    cheapest = next((t for t in tiers if t["price"] not in ("Contact sales",)), None)
    if cheapest is not None:
        risks.append(
            _claim(
                f"Price anchor: {cheapest['name']} at {cheapest['price']}"
                + (f" {cheapest['period']}" if cheapest["period"] else "")
                + ".",
                *cheapest["sources"],
            )
        )
    swot = _swot(
        docs=docs,
        pages=pages,
        home=home,
        headline=headline,
        tiers=tiers,
        proof=strengths,
        channels=channels,
        named_channels=named,
        themes=themes,
    )

    # Recommended actions (each opens Studio with a prompt) ------------------------------------
    voice = f" in a {', '.join(us.voice[:3])} voice" if us.voice else ""
    facts = f" Use only these facts about us: {'; '.join(us.facts[:4])}." if us.facts else ""
    actions: list[dict] = []
    if headline is not None:
        actions.append(
            {
                "text": f"Answer their headline with ad copy that shows how {our_name} differs.",
                "prompt": _short(
                    f"Write ad copy for {our_name}{voice} that contrasts with {competitor}'s "
                    f"promise “{_short(headline['text'], 160)}” without naming them.{facts}",
                    1400,
                ),
                "tool": "ad-copy",
                "sources": headline["sources"],
            }
        )
    if tiers:
        listed = ", ".join(f"{t['name']} {t['price']}" for t in tiers[:4])
        actions.append(
            {
                "text": "Make our pricing message clear against their plans.",
                "prompt": _short(
                    f"Write a short pricing message for {our_name}{voice}. The competitor's "
                    f"plans are: {listed}. Stress value, not a price war.{facts}",
                    1400,
                ),
                "tool": "ad-copy",
                "sources": list(dict.fromkeys(k for t in tiers[:4] for k in t["sources"])),
            }
        )
    if themes:
        actions.append(
            {
                "text": "Post on social about the theme they leave open.",
                "prompt": _short(
                    f"Write a social post for {our_name}{voice} that owns a clear promise of "
                    f"our own; {competitor}'s pages keep repeating "
                    f"{themes[0]['text'].split('(')[0].strip()}.{facts}",
                    1400,
                ),
                "tool": "social-post",
                "sources": themes[0]["sources"],
            }
        )
    if not actions:
        actions.append(
            {
                "text": f"Write copy that sets {our_name} apart from {competitor}.",
                "prompt": _short(
                    f"Write ad copy for {our_name}{voice} that sets it apart from "
                    f"{competitor}: {summary[0]['text']}{facts}",
                    1400,
                ),
                "tool": "ad-copy",
                "sources": summary[0]["sources"],
            }
        )
    focus_first = {"pricing": 1, "ads": 0, "messaging": 2, "positioning": 0}[focus]
    if 0 < focus_first < len(actions):
        actions.insert(0, actions.pop(focus_first))

    return _distinct(
        {
            "competitor": competitor,
            "focus": focus,
            "us": us.name,
            "headline": headline,
            "summary": summary[:4],
            "positioning": positioning[:4],
            "value_propositions": value_props[:6],
            "pricing_tiers": tiers[:12],
            "channels": channels[:8],
            "messaging_themes": themes,
            "strengths": strengths[:4],
            "weaknesses": weaknesses[:4],
            "swot": swot,
            "opportunities": opportunities[:4],
            "risks": risks[:4],
            "recommended_actions": actions[:4],
        }
    )


# --- SWOT: a synthesis, not a copy ----------------------------------------------------------------


def _amount(price: str) -> float | None:
    """The number in a tier's price ("$29" -> 29.0); None for "Contact sales" and the like."""
    match = re.search(r"\d[\d,]*(?:\.\d+)?", price or "")
    if price.strip().lower() == "free":
        return 0.0
    return float(match.group(0).replace(",", "")) if match else None


def _keys(*claims: dict) -> list[str]:
    return list(dict.fromkeys(key for claim in claims for key in claim["sources"]))[:6]


def _swot(
    *,
    docs: list[SourceDoc],
    pages: list[SourceDoc],
    home: SourceDoc,
    headline: dict | None,
    tiers: list[dict],
    proof: list[dict],
    channels: list[dict],
    named_channels: set[str],
    themes: list[dict],
) -> dict:
    """The competitor's SWOT, read across the sections: each entry combines several findings
    (the plan ladder, the proof, the reach, what is absent) into one judgement and cites every
    source behind it. It never restates a strength, weakness, opportunity or risk line; those
    sections keep the evidence one finding at a time (and opportunities and risks are ours).
    """
    strengths: list[dict] = []
    weaknesses: list[dict] = []
    openings: list[dict] = []
    threats: list[dict] = []
    priced = [(t, _amount(t["price"])) for t in tiers]
    priced = [(t, a) for t, a in priced if a is not None]
    free = [t for t, a in priced if a == 0]
    contact = [t for t in tiers if t["price"] == "Contact sales"]
    proof_pages = sorted({k for claim in proof for k in claim["sources"]})

    # Strengths: what their offer and pages do well, taken together.
    if len(tiers) >= 3:
        ladder = " → ".join(t["name"] for t in tiers[:5])
        strengths.append(
            _claim(
                f"A {len(tiers)}-step plan ladder ({ladder}) lets a buyer start small and grow "
                + ("into a sales-led top tier." if contact else "without changing vendor."),
                *_keys(*tiers),
            )
        )
    if free:
        strengths.append(
            _claim(
                f"A free way in ({free[0]['name']}) lets buyers try them before any sales talk.",
                *free[0]["sources"],
            )
        )
    if proof:
        strengths.append(
            _claim(
                f"Credibility is backed by figures: {len(proof)} proof point"
                f"{'s' if len(proof) != 1 else ''} on {len(proof_pages)} of the pages read.",
                *_keys(*proof),
            )
        )
    if len(channels) >= 3:
        shown = ", ".join(sorted(named_channels)[:5])
        strengths.append(
            _claim(
                f"Reach across {len(named_channels)} channels ({shown}) keeps them in front of "
                "buyers beyond their site.",
                *_keys(*channels),
            )
        )

    # Weaknesses: gaps that show across the pages.
    if not proof and pages:
        weaknesses.append(
            _claim(
                "Claims stand without figures or named customers on every page read, so their "
                "promise rests on words alone.",
                *[d.key for d in pages[:4]],
            )
        )
    if headline is not None and not re.search(r"\d", headline["text"]):
        weaknesses.append(
            _claim(
                "Their lead promise names no figure or outcome, so it is easy to match or "
                "out-prove.",
                *headline["sources"],
            )
        )
    steps = [
        (low, high, high_amount / low_amount)
        for (low, low_amount), (high, high_amount) in zip(priced, priced[1:], strict=False)
        if low_amount and high_amount and high_amount / low_amount >= 2.5
    ]
    if steps:
        low, high, ratio = max(steps, key=lambda step: step[2])
        weaknesses.append(
            _claim(
                f"A steep step between plans: {high['name']} costs {ratio:.1f}× {low['name']}, "
                "so growing customers meet a price jump.",
                *_keys(low, high),
            )
        )
    if contact and len(contact) == len(tiers):
        weaknesses.append(
            _claim(
                "Every plan is sales-led, which slows buyers who want to start on their own.",
                *_keys(*contact),
            )
        )
    if len(themes) >= 4:
        counts = [
            int(m.group(1)) for t in themes if (m := re.search(r"\((\d+) mentions", t["text"]))
        ]
        top = counts[0] if counts else 0
        if counts and top <= 2 * (sum(counts) / len(counts)):
            weaknesses.append(
                _claim(
                    f"No single message dominates: their {len(themes)} most repeated words "
                    "are used about equally, so the pitch is spread thin.",
                    *_keys(*themes),
                )
            )

    # Opportunities (theirs): openings the pages show they have not taken.
    unused = [name for name in CHANNEL_CUES.values() if name not in named_channels]
    if pages and unused and named_channels:
        openings.append(
            _claim(
                f"Channels they could still open: {', '.join(unused[:4])} are not mentioned on "
                "the pages read.",
                *[d.key for d in pages[:4]],
            )
        )
    if steps:
        low, high, _ratio = max(steps, key=lambda step: step[2])
        openings.append(
            _claim(
                f"A middle plan between {low['name']} and {high['name']} would catch buyers "
                "who outgrow the first but balk at the second.",
                *_keys(low, high),
            )
        )
    if priced and not free:
        openings.append(
            _claim(
                "A free or trial entry could widen their funnel; none is offered today.",
                *_keys(*[t for t, _a in priced]),
            )
        )

    # Threats (to them): where rivals, us included, can press.
    cheapest = min(priced, key=lambda pair: pair[1], default=None)
    if cheapest is not None and cheapest[1]:
        tier, _amount_value = cheapest
        threats.append(
            _claim(
                f"Price pressure: a rival entering below {tier['name']}'s {tier['price']} "
                "undercuts their cheapest way in.",
                *tier["sources"],
            )
        )
    if headline is not None and themes:
        word = themes[0]["text"].split("”")[0].lstrip("“")
        threats.append(
            _claim(
                f"Their pitch leans on “{word}”, a promise any rival can copy; one with "
                "stronger proof can take it over.",
                *_keys(headline, themes[0]),
            )
        )
    if proof and len(proof_pages) == 1:
        threats.append(
            _claim(
                "Their proof sits on a single page; a rival that spreads evidence through the "
                "whole journey looks more credible.",
                *proof_pages,
            )
        )
    if not threats and home:
        threats.append(
            _claim(
                "Nothing on the pages read protects them from a rival with a sharper promise.",
                home.key,
            )
        )
    return {
        "strengths": strengths[:4],
        "weaknesses": weaknesses[:4],
        "opportunities": openings[:4],
        "threats": threats[:4],
    }


CLAIM_SECTIONS = (
    "summary",
    "positioning",
    "value_propositions",
    "channels",
    "messaging_themes",
    "strengths",
    "weaknesses",
    "opportunities",
    "risks",
)


def _distinct(report: dict) -> dict:
    """Each claim appears once in the report: a sentence already used by an earlier section
    (say a heading that reads as both positioning and a value proposition) is dropped later."""
    seen: set[str] = set()
    if report.get("headline"):
        seen.add(report["headline"]["text"].casefold())
    for name in CLAIM_SECTIONS:
        kept = []
        for claim in report[name]:
            key = claim["text"].casefold()
            if key in seen and not (name == "summary" and not kept):
                continue
            seen.add(key)
            kept.append(claim)
        report[name] = kept
    for part, claims in report["swot"].items():
        report["swot"][part] = [c for c in claims if c["text"].casefold() not in seen]
        seen.update(c["text"].casefold() for c in report["swot"][part])
    return report


__all__ = ["SourceDoc", "Us", "build_report", "pricing_tiers"]
