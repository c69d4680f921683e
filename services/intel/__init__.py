"""Competitor Intel: sourced, structured competitor reports that run on the run engine.

* `reports`: the request (validation), estimate, blockers, start, and what people read.
* `runner`: the run: fetch the sources, build and validate the report, settle or release;
  recovery of lost workers and the 15-minute sweep.
* `fetcher`: httpx with time and size limits, robots.txt, the address guard.
* `extract`: the main text of a page (selectolax).
* `schema`: the report as pydantic types and the citation validator.
* `builder`: the local, extractive report builder (offline); `hosted`: a hosted model's.
* `changes`: what changed since the last report (structured fields only).
* `export`: Markdown and CSV.
"""
