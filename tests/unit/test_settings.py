"""Settings: embedded defaults in development, refusal of unsafe production configuration."""

import pytest

from core import settings as settings_module
from core.settings import InsecureConfiguration, Settings

STRONG_SECRET = "Zq7-vB2xLk9pW4mN8rT1yH6cF3jD5sA0gE_uI2oQ"


def _production(monkeypatch, **overrides):
    """A complete production environment; overrides set (or with None remove) variables."""
    values = {
        "APP_ENV": "production",
        "SECRET_KEY": STRONG_SECRET,
        "APP_BASE_URL": "https://studio.example.com",
        "STRIPE_SECRET_KEY": "sk_live_123",
        "STRIPE_WEBHOOK_SECRET": "whsec_123",
        "SMTP_HOST": "smtp.example.com",
        **overrides,
    }
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def test_a_complete_production_configuration_is_accepted(monkeypatch):
    _production(monkeypatch)
    settings = Settings()
    assert settings.is_production and settings.production_problems() == []


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"SECRET_KEY": "a" * 48}, "SECRET_KEY is long enough but not random"),
        ({"SECRET_KEY": "password" * 6}, "SECRET_KEY is long enough but not random"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET is not set"),
        ({"SMTP_HOST": None}, "SMTP_HOST is not set"),
        ({"APP_BASE_URL": None}, "APP_BASE_URL is http://localhost:3000, a local address"),
        ({"APP_BASE_URL": "http://127.0.0.1:3000"}, "APP_BASE_URL is http://127.0.0.1:3000"),
        ({"API_BASE_URL": "http://localhost:8000"}, "API_BASE_URL is http://localhost:8000"),
    ],
)
def test_production_refuses_what_would_break_it_and_says_what_to_set(monkeypatch, overrides, says):
    _production(monkeypatch, **overrides)
    with pytest.raises(InsecureConfiguration, match=says) as refused:
        Settings()
    assert "Set " in str(refused.value)


def test_production_lists_every_problem_at_once(monkeypatch):
    _production(monkeypatch, SMTP_HOST=None, STRIPE_WEBHOOK_SECRET=None, APP_BASE_URL=None)
    with pytest.raises(InsecureConfiguration) as refused:
        Settings()
    message = str(refused.value)
    assert all(name in message for name in ("SMTP_HOST", "STRIPE_WEBHOOK_SECRET", "APP_BASE_URL"))


def test_production_refuses_a_missing_secret(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(InsecureConfiguration, match="SECRET_KEY is missing or weak"):
        Settings()


@pytest.mark.parametrize("weak", ["changeme", "secret", "short-but-not-empty"])
def test_production_refuses_a_weak_secret(monkeypatch, weak):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", weak)
    with pytest.raises(InsecureConfiguration):
        Settings()


def test_production_refuses_local_payment_mode_unless_allowed(monkeypatch):
    _production(monkeypatch, STRIPE_SECRET_KEY=None, STRIPE_WEBHOOK_SECRET=None)
    with pytest.raises(InsecureConfiguration, match="STRIPE_SECRET_KEY is not set"):
        Settings()
    monkeypatch.setenv("ALLOW_LOCAL_PAYMENTS", "true")
    assert Settings().payments_mode == "local"


def test_production_accepts_a_strong_secret_and_never_seeds(monkeypatch):
    _production(monkeypatch, SEED_DEMO_DATA="true")
    settings = Settings()
    assert settings.is_production and settings.seed_demo_data is False


def test_development_generates_a_secret_once_into_an_untracked_file(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setattr(settings_module, "SECRET_KEY_FILE", tmp_path / ".secret_key")
    first = Settings().secret_key
    second = Settings().secret_key
    assert len(first) >= 32 and first == second
    assert (tmp_path / ".secret_key").stat().st_mode & 0o777 == 0o600


def test_embedded_defaults(monkeypatch):
    for var in ("DATABASE_URL", "STRIPE_SECRET_KEY", "SMTP_HOST", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings()
    assert settings.database_url.startswith("sqlite:///")
    assert settings.payments_mode == "local"
    assert settings.mail_mode == "outbox"
    assert settings.scheduler == "inline"


def test_manage_refuses_to_start_in_production_without_secret(monkeypatch, capsys):
    from core import manage
    from core.settings import reset_settings_cache

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    reset_settings_cache()
    assert manage.main(["check-config"]) == 2
    assert "SECRET_KEY" in capsys.readouterr().err


def test_org_slug_from_path_and_safe_redirects():
    from core import routes

    assert routes.org_slug_from_path("/org/Acme/billing") == "acme"
    assert routes.org_slug_from_path("/sign-in") == ""
    assert routes.is_safe_next("/org/acme/team")
    assert not routes.is_safe_next("//evil.example/x")
    assert not routes.is_safe_next("https://evil.example/")
    assert routes.sign_in("/org/acme/billing") == "/sign-in?next=/org/acme/billing"


def test_backend_url_defaults_follow_the_deployment_shape(monkeypatch):
    monkeypatch.delenv("API_BASE_URL", raising=False)
    monkeypatch.setenv("BACKEND_PORT", "8123")
    assert Settings().backend_base_url == "http://localhost:8123"
    _production(monkeypatch, APP_BASE_URL="https://studio.example.com/")
    assert Settings().backend_base_url == "https://studio.example.com"
    monkeypatch.setenv("API_BASE_URL", "https://api.example.com")
    assert Settings().backend_base_url == "https://api.example.com"


def test_check_config_names_every_refusal(monkeypatch, capsys):
    from core import manage
    from core.settings import reset_settings_cache

    _production(monkeypatch, SMTP_HOST=None, SECRET_KEY="a" * 40)
    reset_settings_cache()
    assert manage.main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "SMTP_HOST is not set" in err and "SECRET_KEY is long enough but not random" in err


def test_browser_origins_are_the_deployment_own_never_any_site(monkeypatch):
    _production(monkeypatch, ALLOWED_ORIGINS="https://www.studio.example.com/, ")
    origins = Settings().browser_origins(dev_ports=(3000,))
    assert origins == ["https://studio.example.com", "https://www.studio.example.com"]
    assert "*" not in origins


def test_development_allows_its_own_localhost_ports_only(monkeypatch):
    monkeypatch.delenv("APP_BASE_URL", raising=False)
    monkeypatch.delenv("ALLOWED_ORIGINS", raising=False)
    origins = Settings().browser_origins(dev_ports=(3000, 8000))
    assert set(origins) == {
        "http://localhost:3000",
        "http://localhost:8000",
        "http://127.0.0.1:3000",
        "http://127.0.0.1:8000",
    }
