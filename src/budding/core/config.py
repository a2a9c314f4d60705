"""Configuration from ``BUDDING_*`` environment variables (and an optional ``.env`` file)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = {"secret_key", "smtp_password", "database_url", "jobs_url"}


class Settings(BaseSettings):
    """Effective settings of one Budding installation.

    Every process behind a load balancer must see the same values; nothing here
    is derived from process-local state except the generated secret key, which
    is written to the data folder so that all processes on the host share it.
    """

    model_config = SettingsConfigDict(env_prefix="BUDDING_", env_file=".env", extra="ignore")

    data_dir: Path = Path("budding-data")
    database_url: str = ""
    secret_key: SecretStr = SecretStr("")
    base_url: str = "http://127.0.0.1:8000"
    jobs_url: str = ""  # durable job queue storage; defaults to the main database

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_sender: str = "Budding <budding@localhost>"
    smtp_starttls: bool = False

    default_locale: str = "en"
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    magic_link_minutes: int = 15
    session_days: int = 14
    max_request_bytes: int = 2_000_000
    # PostgreSQL: how many requests of one server process may hold a database session at
    # once; the others wait their turn in the event loop. 0: twice the CPU cores (at
    # least 4). More only adds threads contending for the GIL and connections to open.
    db_concurrency: int = Field(default=0, ge=0)
    secure_cookies: bool = False  # set true behind HTTPS
    # Proxies (load balancers) whose X-Forwarded-For / X-Forwarded-Proto `budding serve`
    # trusts: comma-separated IPs or networks ("10.0.0.5", "10.0.0.0/8"), or "*" for any.
    # Empty (the default): none, and the client address is the TCP peer's.
    forwarded_allow_ips: str = ""

    # Webhooks: may endpoints point to private/loopback/link-local addresses (internal
    # services of a self-hosted team)? Off: such URLs are refused (SSRF protection).
    webhooks_allow_private: bool = False
    # Days a webhook delivery (its request body, the receiver's answers) is kept.
    webhook_retention_days: int = 30

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'budding.db').as_posix()}"
        self.base_url = self.base_url.rstrip("/")
        return self

    def resolved_secret_key(self) -> str:
        """The secret key; generated once and stored in the data folder when not configured."""
        if self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL: when two processes start at once, exactly one key wins.
        try:
            with path.open("x") as fh:
                fh.write(key)
            path.chmod(0o600)
        except FileExistsError:
            return path.read_text().strip()
        return key

    def masked(self) -> dict[str, str]:
        """Settings as strings with secrets (and database passwords) masked."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********" if value.get_secret_value() else ""
                if name == "secret_key" and not text:
                    text = f"(generated, kept in {self.data_dir / 'secret_key'})"
            else:
                text = str(value)
            if name in {"database_url", "jobs_url"}:
                text = _mask_url_password(text)
            out[name] = text
        return out


def _mask_url_password(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":********"
    return f"{scheme}://{creds}@{host}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
