"""Operational commands: `python -m core.manage migrate|seed|setup|check-config`."""

from __future__ import annotations

import argparse
import logging
import sys

from alembic import command
from alembic.config import Config
from sqlmodel import Session

from core.db import get_engine, make_engine, session_scope
from core.settings import PROJECT_ROOT, get_settings

log = logging.getLogger("creative_studio.manage")


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def migrate(database_url: str | None = None) -> None:
    """Bring the schema to the newest revision, then load the catalogs (both idempotent)."""
    from services.catalog import catalog_sync
    from services.help_center import help_articles_sync

    command.upgrade(alembic_config(database_url), "head")
    engine = get_engine() if database_url is None else make_engine(database_url)
    with Session(engine) as session:
        result = catalog_sync(session=session)
        help_articles_sync(session=session)
        session.commit()
    if result.changed:
        log.info("catalog loaded: %s", result)


def seed() -> None:
    from services.seed import seed_development_data

    settings = get_settings()
    if settings.is_production or not settings.seed_demo_data:
        print("Seeding is disabled in production.")
        return
    with session_scope() as session:
        report = seed_development_data(session=session)
    print(report)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m core.manage")
    parser.add_argument("command", choices=["migrate", "seed", "setup", "check-config"])
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except Exception as exc:  # refuse to start with an unsafe configuration
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(
            f"environment={settings.app_env} database={settings.database_url.split('@')[-1]} "
            f"payments={settings.payments_mode} mail={settings.mail_mode}"
        )
        return 0
    if args.command in ("migrate", "setup"):
        migrate()
    if args.command in ("seed", "setup"):
        seed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
