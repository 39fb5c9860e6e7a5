"""Settings: every app setting the code reads, validated once at start.

The field aliases are the app-setting names exactly as they appear in
`local.settings.sample.json`, `infra/bicep` and `infra/terraform`; a test keeps
the three in step with this model. Secrets never live here in Azure: storage,
Service Bus and Databricks are reached with the app's managed identity. The
connection-string settings exist for the local stack only.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthMode(StrEnum):
    """How the HTTP API learns who is calling (see docs/security.md)."""

    APP_SERVICE = "app_service"  # App Service Authentication injects X-MS-CLIENT-PRINCIPAL
    FUNCTION_KEY = "function_key"  # a trusted backend holding a function key names the tenant
    DEVELOPMENT = "development"  # local only: a development principal unless the request names one


class DatabricksAuth(StrEnum):
    MANAGED_IDENTITY = "managed_identity"
    TOKEN = "token"
    SERVICE_PRINCIPAL = "service_principal"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, frozen=True, env_ignore_empty=True
    )

    # Table Storage: endpoint + managed identity in Azure, connection string locally.
    tables_endpoint: str | None = Field(None, alias="TABLES_ENDPOINT")
    tables_connection_string: SecretStr | None = Field(None, alias="TABLES_CONNECTION_STRING")
    jobs_table: str = Field("jobs", alias="JOBS_TABLE", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    runs_table: str = Field("runs", alias="RUNS_TABLE", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")
    # Partitions of the runs table (each holds its jobs' runs, due rows and watch hints). A job
    # keeps the shard it was created in, so changing this moves no existing job.
    run_shards: int = Field(16, alias="RUN_SHARDS", ge=1, le=100)

    # Client id of the user-assigned managed identity (DefaultAzureCredential reads it too).
    azure_client_id: str | None = Field(None, alias="AZURE_CLIENT_ID")

    # Service Bus: the same settings the queue triggers bind to.
    servicebus_namespace: str | None = Field(None, alias="ServiceBusConnection__fullyQualifiedNamespace")
    # Local only: a Service Bus connection string (the Docker emulator, or a dev namespace). With
    # neither setting, the local stack uses its in-process queues.
    servicebus_connection_string: SecretStr | None = Field(None, alias="ServiceBusConnection")
    launch_queue: str = Field("launch", alias="LaunchQueueName")
    poll_queue: str = Field("poll", alias="PollQueueName")
    notify_queue: str = Field("notify", alias="NotifyQueueName")

    # Notifications: how long a destination may take to answer, and the console's public address
    # for the links in each message (default: this app's host name, as App Service sets it).
    notification_timeout_seconds: float = Field(10.0, alias="NOTIFICATION_TIMEOUT_SECONDS", gt=0, le=60)
    console_url: str | None = Field(None, alias="CONSOLE_URL")
    website_hostname: str | None = Field(None, alias="WEBSITE_HOSTNAME")

    # The tick.
    tick_lookahead_seconds: int = Field(75, alias="TICK_LOOKAHEAD_SECONDS", ge=0, le=600)
    tick_concurrency: int = Field(16, alias="TICK_CONCURRENCY", ge=1, le=64)

    # The watchdog: how long after it is due a message counts as lost (and the base of the backoff
    # between repairs), and how often a RUNNING run that no poll has ended is checked.
    watchdog_grace_seconds: int = Field(120, alias="WATCHDOG_GRACE_SECONDS", ge=10, le=3600)
    run_check_seconds: int = Field(3600, alias="RUN_CHECK_SECONDS", ge=60, le=86400)

    # Databricks.
    databricks_host: str | None = Field(None, alias="DATABRICKS_HOST")
    databricks_auth: DatabricksAuth = Field(DatabricksAuth.MANAGED_IDENTITY, alias="DATABRICKS_AUTH")
    poll_initial_seconds: int = Field(15, alias="POLL_INITIAL_SECONDS", ge=1)
    poll_max_seconds: int = Field(300, alias="POLL_MAX_SECONDS", ge=1)

    # HTTP API identity and limits.
    auth_mode: AuthMode = Field(AuthMode.APP_SERVICE, alias="AUTH_MODE")
    admin_role: str = Field("Scheduler.Admin", alias="ADMIN_ROLE")
    tenant_role_prefix: str = Field("Scheduler.Tenant.", alias="TENANT_ROLE_PREFIX")
    dev_tenant: str = Field("dev", alias="DEV_TENANT")
    max_body_bytes: int = Field(32_768, alias="MAX_BODY_BYTES", ge=1024, le=1_048_576)
    # A batch's body lists up to 1,000 points: POST /api/batches reads up to this much.
    max_batch_body_bytes: int = Field(1_048_576, alias="MAX_BATCH_BODY_BYTES", ge=1024, le=4_194_304)

    # Monitoring: azure-monitor-opentelemetry is configured only when this is set.
    applicationinsights_connection_string: str | None = Field(
        None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )

    @property
    def public_console_url(self) -> str:
        if self.console_url:
            return self.console_url.rstrip("/")
        if self.website_hostname:
            return f"https://{self.website_hostname}/console"
        return ""

    @model_validator(mode="after")
    def _caps_not_below_starts(self) -> Settings:
        if self.poll_max_seconds < self.poll_initial_seconds:
            raise ValueError("POLL_MAX_SECONDS must be >= POLL_INITIAL_SECONDS")
        if self.run_check_seconds < self.watchdog_grace_seconds:
            raise ValueError("RUN_CHECK_SECONDS must be >= WATCHDOG_GRACE_SECONDS")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment once."""
    return Settings()
