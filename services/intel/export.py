"""A report as Markdown and as CSV (one row per claim with its sources).

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) are prefixed with ``'``, as the credit ledger's export does
(`services.credits`), since fetched pages are written by strangers. Markdown is for download
only; the page never renders it as HTML.
"""

from __future__ import annotations

import csv
import io
import re

from services.credits import _csv_safe as csv_safe  # the project's one CSV cell rule
from services.intel.schema import SECTIONS, SWOT_PARTS

CSV_COLUMNS = ("section", "claim", "sources", "source_urls")


def _claims(report: dict):
    """(section, text, source keys) for every claim, in page order."""
    if report.get("headline"):
        yield "Headline", report["headline"]["text"], report["headline"]["sources"]
    for field, heading in SECTIONS:
        for claim in report.get(field) or []:
            yield heading, claim["text"], claim["sources"]
    for tier in report.get("pricing_tiers") or []:
        line = f"{tier['name']}: {tier.get('price') or 'no listed price'}"
        if tier.get("period"):
            line += f" {tier['period']}"
        if tier.get("features"):
            line += " (" + "; ".join(tier["features"]) + ")"
        yield "Pricing tiers", line, tier["sources"]
    for part, heading in SWOT_PARTS:
        for claim in (report.get("swot") or {}).get(part) or []:
            yield f"SWOT: {heading}", claim["text"], claim["sources"]
    for action in report.get("recommended_actions") or []:
        yield "Recommended actions", action["text"], action["sources"]


def report_csv(report: dict, source_urls: dict[str, str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for section, text, keys in _claims(report):
        writer.writerow(
            [
                csv_safe(section),
                csv_safe(text),
                " ".join(keys),
                csv_safe(" ".join(source_urls.get(key, "") for key in keys).strip()),
            ]
        )
    return buffer.getvalue()


def _md(text: str) -> str:
    """Markdown text that cannot open HTML, links or images."""
    text = re.sub(r"[<>]", lambda m: {"<": "&lt;", ">": "&gt;"}[m.group(0)], str(text))
    return re.sub(r"([\\`*_\[\]!#|])", r"\\\1", text)


def report_markdown(
    report: dict, sources: list[tuple[str, str, str]], *, title: str, created: str
) -> str:
    """`sources`: (key, url or label, fetched time) of the report's sources."""
    lines = [f"# {_md(title)}", "", f"Created {created}. Every claim cites its sources.", ""]
    current = None
    for section, text, keys in _claims(report):
        if section != current:
            lines += ["", f"## {_md(section)}", ""]
            current = section
        lines.append(f"- {_md(text)} [{', '.join(keys)}]")
    lines += ["", "## Sources", ""]
    for key, where, fetched in sources:
        lines.append(f"- {key}: {_md(where)}" + (f" (fetched {fetched})" if fetched else ""))
    return "\n".join(lines).strip() + "\n"


__all__ = ["CSV_COLUMNS", "report_csv", "report_markdown"]
