"""The app settings of Bicep, Terraform and local.settings.sample.json stay in step with the
settings the code reads (the aliases of shared.config.Settings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import SAMPLE_SETTINGS
from iac_model import bicep_param_refs, hcl_text, terraform_blocks, terraform_locals, terraform_var_refs

from shared.config import Settings

pytestmark = pytest.mark.timeout(900)  # the first test of a session may install .venv-infra

MODEL_SETTINGS = {field.alias for field in Settings.model_fields.values() if field.alias}

# Settings the code reads that must NOT be deployed, with the reason.
LOCAL_ONLY = {
    # In Azure the app reaches tables at TABLES_ENDPOINT with its managed identity; a
    # connection string would carry an account key, and the account has shared keys disabled.
    "TABLES_CONNECTION_STRING": "Azurite connection string for the local stack only",
    # Same for Service Bus: in Azure the triggers and the sender use the identity-based
    # ServiceBusConnection__* settings; a plain ServiceBusConnection would be a SAS
    # connection string (local auth is disabled on the namespace) and would take precedence.
    "ServiceBusConnection": "Service Bus connection string (emulator or dev namespace), local only",
}

# Settings the code reads that App Service sets on every app itself: never deployed.
PLATFORM_SET = {
    "WEBSITE_HOSTNAME": "the app's default host name, set by App Service (the console links' fallback)",
}

# The identity-based connection prefix the Service Bus triggers bind to, taken from the model.
SERVICE_BUS_PREFIX = Settings.model_fields["servicebus_namespace"].alias.split("__")[0]

# Settings the Functions host (not the scheduler code) needs in Azure, in both tools.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    f"{SERVICE_BUS_PREFIX}__credential",
    f"{SERVICE_BUS_PREFIX}__clientId",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

# Deployed only when Databricks authenticates with a token (a Key Vault reference).
TOKEN_MODE_ONLY = {"DATABRICKS_TOKEN"}

# What the local host needs besides the model's settings.
SAMPLE_HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"}

# Flex Consumption rejects these (the runtime is in functionAppConfig), and a plain
# AzureWebJobsStorage would be a connection string.
NEVER_DEPLOYED = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "AzureWebJobsStorage"}

# Settings whose Azure default differs from the model's default on purpose.
DIFFERENT_DEFAULT_IN_AZURE = {
    "AUTH_MODE": "function_key until App Service Authentication is enabled, then app_service",
}

BICEP_SETTING_VARIABLES = ("hostAppSettings", "schedulerAppSettings", "databricksTokenAppSettings")
TERRAFORM_SETTING_LOCALS = ("host_app_settings", "scheduler_app_settings", "databricks_token_app_settings")


@pytest.fixture(scope="module")
def bicep_settings(bicep: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Every app setting main.bicep can deploy: name -> value expression."""
    variables = bicep("main.bicep")["variables"]
    settings: dict[str, Any] = {}
    for name in BICEP_SETTING_VARIABLES:
        settings.update(variables[name]["value"])
    return settings


@pytest.fixture(scope="module")
def terraform_settings(terraform: dict[str, Any]) -> dict[str, Any]:
    """Every app setting main.tf can deploy: name -> value expression."""
    local_values = terraform_locals(terraform)
    settings: dict[str, Any] = {}
    for name in TERRAFORM_SETTING_LOCALS:
        settings.update({hcl_text(k): v for k, v in local_values[name].items() if not k.startswith("__")})
    return settings


@pytest.fixture(scope="module")
def sample_settings() -> dict[str, str]:
    sample = json.loads(SAMPLE_SETTINGS.read_text())
    assert sample["IsEncrypted"] is False
    values: dict[str, str] = sample["Values"]
    return values


def test_bicep_deploys_exactly_the_setting_variables(bicep: Callable[[str], dict[str, Any]]) -> None:
    main = bicep("main.bicep")
    union = main["variables"]["appSettings"]["value"]["function"]
    assert union["type"] == "union"
    args = json.dumps(union["parameters"])
    assert all(f'"{name}"' in args for name in BICEP_SETTING_VARIABLES)
    assert main["modules"]["functionApp"]["config"]["params"]["appSettings"] == "appSettings"


def test_terraform_deploys_exactly_the_setting_locals(terraform: dict[str, Any]) -> None:
    local_values = terraform_locals(terraform)
    merged = local_values["app_settings"]
    assert merged.startswith("${merge(")
    assert all(f"local.{name}" in merged for name in TERRAFORM_SETTING_LOCALS)
    site = json.dumps(terraform["resource"])
    assert "for name, value in local.app_settings" in site


def test_bicep_and_terraform_deploy_the_same_settings(
    bicep_settings: dict[str, Any], terraform_settings: dict[str, Any]
) -> None:
    assert set(bicep_settings) - set(terraform_settings) == set(), "only in Bicep"
    assert set(terraform_settings) - set(bicep_settings) == set(), "only in Terraform"


@pytest.mark.parametrize("tool", ["bicep", "terraform"])
def test_every_setting_the_code_reads_is_deployed(tool: str, request: pytest.FixtureRequest) -> None:
    deployed = set(request.getfixturevalue(f"{tool}_settings"))
    missing = MODEL_SETTINGS - set(LOCAL_ONLY) - set(PLATFORM_SET) - deployed
    assert not missing, f"{tool} does not set {sorted(missing)}"


@pytest.mark.parametrize("tool", ["bicep", "terraform"])
def test_nothing_but_the_code_and_host_settings_is_deployed(
    tool: str, request: pytest.FixtureRequest
) -> None:
    deployed = set(request.getfixturevalue(f"{tool}_settings"))
    assert deployed >= HOST_SETTINGS, f"{tool} lacks host settings {sorted(HOST_SETTINGS - deployed)}"
    unknown = deployed - MODEL_SETTINGS - HOST_SETTINGS - TOKEN_MODE_ONLY
    assert not unknown, f"{tool} sets {sorted(unknown)}: not read by the code nor needed by the host"
    assert not deployed & set(LOCAL_ONLY), "local-only settings must not reach Azure"
    assert not deployed & set(PLATFORM_SET), "App Service sets these itself"
    assert not deployed & NEVER_DEPLOYED


def test_the_sample_has_every_setting_the_code_reads(sample_settings: dict[str, str]) -> None:
    missing = MODEL_SETTINGS - set(sample_settings)
    assert not missing, f"local.settings.sample.json lacks {sorted(missing)}"
    extra = set(sample_settings) - MODEL_SETTINGS - SAMPLE_HOST_SETTINGS
    assert not extra, f"local.settings.sample.json sets {sorted(extra)}, which nothing reads"


def test_the_sample_is_valid_for_the_settings_model(sample_settings: dict[str, str]) -> None:
    settings = Settings(**sample_settings)  # type: ignore[arg-type]
    assert settings.auth_mode == "development"
    assert sample_settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert sample_settings["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"


def _model_default(alias: str) -> Any:
    field = next(f for f in Settings.model_fields.values() if f.alias == alias)
    return field.default


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # the model's 10.0 is the templates' 10
    return str(value)


def test_bicep_defaults_are_the_model_defaults(
    bicep: Callable[[str], dict[str, Any]], bicep_settings: dict[str, Any]
) -> None:
    parameters = bicep("main.bicep")["parameters"]
    wrong = {}
    for alias in sorted(MODEL_SETTINGS - set(LOCAL_ONLY) - set(DIFFERENT_DEFAULT_IN_AZURE)):
        default = _model_default(alias)
        if default is None:
            continue
        if alias not in bicep_settings:
            continue  # reported by test_every_setting_the_code_reads_is_deployed
        value = bicep_settings[alias]
        refs = bicep_param_refs(value, parameters)
        deployed = parameters[refs[0]]["default"] if refs else value
        if _literal(deployed) != _literal(default):
            wrong[alias] = (deployed, default)
    assert not wrong, f"setting: (Bicep default, model default) {wrong}"


def test_terraform_defaults_are_the_model_defaults(
    terraform: dict[str, Any], terraform_settings: dict[str, Any]
) -> None:
    variables = terraform_blocks(terraform, "variable")
    wrong = {}
    for alias in sorted(MODEL_SETTINGS - set(LOCAL_ONLY) - set(DIFFERENT_DEFAULT_IN_AZURE)):
        default = _model_default(alias)
        if default is None:
            continue
        if alias not in terraform_settings:
            continue  # reported by test_every_setting_the_code_reads_is_deployed
        value = terraform_settings[alias]
        refs = terraform_var_refs(value)
        deployed = hcl_text(variables[refs[0]]["default"]) if refs else hcl_text(value)
        if _literal(deployed) != _literal(default):
            wrong[alias] = (deployed, default)
    assert not wrong, f"setting: (Terraform default, model default) {wrong}"


def test_the_sample_defaults_are_the_model_defaults(sample_settings: dict[str, str]) -> None:
    wrong = {
        alias: (sample_settings[alias], _model_default(alias))
        for alias in MODEL_SETTINGS - {"AUTH_MODE"}
        if alias in sample_settings
        and _model_default(alias) is not None
        and sample_settings[alias] != _literal(_model_default(alias))
    }
    assert not wrong


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        pytest.param("AzureWebJobsStorage__credential", "managedidentity", id="host-storage-identity"),
        pytest.param(f"{SERVICE_BUS_PREFIX}__credential", "managedidentity", id="service-bus-identity"),
    ],
)
def test_connections_use_the_managed_identity(
    setting: str, value: str, bicep_settings: dict[str, Any], terraform_settings: dict[str, Any]
) -> None:
    assert bicep_settings[setting] == value
    assert hcl_text(terraform_settings[setting]) == value


def test_client_ids_are_the_user_assigned_identity(
    bicep_settings: dict[str, Any], terraform_settings: dict[str, Any]
) -> None:
    for setting in ("AZURE_CLIENT_ID", "AzureWebJobsStorage__clientId", f"{SERVICE_BUS_PREFIX}__clientId"):
        assert "identity" in json.dumps(bicep_settings[setting]) and "clientId" in json.dumps(
            bicep_settings[setting]
        ), setting
        assert terraform_settings[setting] == "${local.client_id}", setting
    assert "identity.outputs.clientId" in bicep_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "Authorization=AAD" in bicep_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "Authorization=AAD" in terraform_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


def test_auth_mode_follows_entra_auth_in_both_tools(
    bicep_settings: dict[str, Any], terraform_settings: dict[str, Any]
) -> None:
    operands = bicep_settings["AUTH_MODE"]["operator"]["operands"]
    assert operands == {
        "condition": "enableEntraAuth",
        "true_value": "app_service",
        "false_value": "function_key",
    }
    assert terraform_settings["AUTH_MODE"] == '${var.enable_entra_auth ? "app_service" : "function_key"}'


def test_the_databricks_token_is_a_key_vault_reference(
    bicep_settings: dict[str, Any], terraform_settings: dict[str, Any]
) -> None:
    assert bicep_settings["DATABRICKS_TOKEN"].startswith("@Microsoft.KeyVault(VaultName=")
    assert hcl_text(terraform_settings["DATABRICKS_TOKEN"]).startswith("@Microsoft.KeyVault(VaultName=")
