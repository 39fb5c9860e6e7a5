"""Neither the Bicep, the Terraform nor the sample settings hold a secret, a key or a
connection string with a key, and every service that could hand out keys has them disabled."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import BICEP_DIR, SAMPLE_SETTINGS, TERRAFORM_DIR
from iac_model import hcl_text, terraform_blocks, terraform_resources

pytestmark = pytest.mark.timeout(900)  # the first test of a session may install .venv-infra

SCANNED = sorted(
    [*BICEP_DIR.rglob("*"), *TERRAFORM_DIR.rglob("*"), SAMPLE_SETTINGS],
    key=str,
)
SCANNED = [p for p in SCANNED if p.is_file() and ".terraform" not in p.parts]

# What a secret, a key or a way to fetch one looks like in these files.
SECRET_PATTERNS = {
    "storage account key": r"AccountKey\s*=",
    "SAS or Service Bus key": r"SharedAccess(Key|Signature)",
    "SAS token": r"[?&]sig=",
    "key listing in Bicep": r"\blist(Keys|ConnectionStrings|Secrets|AccountSas|ServiceSas)\(",
    "key attribute in Terraform": r"\b(primary|secondary)_(access_key|connection_string|key)\b",
    "Service Bus key attribute": r"\bdefault_(primary|secondary)_(key|connection_string)\b",
    "instrumentation key": r"InstrumentationKey\s*=|\binstrumentation_key\b",
    "client secret": r"client_?secret|clientSecret",
    "password": r"(?i)\bpassword\b",
    "Databricks personal access token": r"\bdapi[0-9a-f]{32}\b",
    "private key": r"-----BEGIN",
    "Azurite account key": r"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
    "JSON web token": r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
}


def test_the_scan_covers_both_tools_and_the_sample() -> None:
    suffixes = {p.suffix for p in SCANNED}
    assert {".bicep", ".bicepparam", ".tf", ".json", ".example"} <= suffixes
    assert SAMPLE_SETTINGS in SCANNED


@pytest.mark.parametrize(("what", "pattern"), list(SECRET_PATTERNS.items()), ids=list(SECRET_PATTERNS))
def test_no_file_holds_a_secret(what: str, pattern: str) -> None:
    hits = [
        f"{path.relative_to(BICEP_DIR.parents[1])}:{number}: {line.strip()}"
        for path in SCANNED
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(pattern, line)
    ]
    assert not hits, f"{what}:\n" + "\n".join(hits)


def test_the_patterns_catch_a_connection_string_with_a_key(tmp_path: Path) -> None:
    line = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc==;EndpointSuffix=core.windows.net"
    assert re.search(SECRET_PATTERNS["storage account key"], line)
    line = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=abc="
    assert re.search(SECRET_PATTERNS["SAS or Service Bus key"], line)


def test_no_bicep_parameter_or_output_is_secret() -> None:
    for path in BICEP_DIR.rglob("*.bicep"):
        assert "@secure()" not in path.read_text(), f"{path.name}: the deployment needs no secret input"


def test_no_terraform_variable_or_output_is_sensitive(terraform: dict[str, Any]) -> None:
    for kind in ("variable", "output"):
        sensitive = [
            name for name, body in terraform_blocks(terraform, kind).items() if body.get("sensitive")
        ]
        assert not sensitive, f"{kind}s {sensitive}: the deployment needs no secret"


def test_key_based_access_is_disabled_in_bicep(bicep: Callable[[str], dict[str, Any]]) -> None:
    storage = bicep("modules/storage.bicep")["resources"]["storageAccount"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    namespace = bicep("modules/servicebus.bicep")["resources"]["namespace"]["config"]["properties"]
    assert namespace["disableLocalAuth"] is True
    assert namespace["minimumTlsVersion"] == "1.2"
    insights = bicep("modules/monitoring.bicep")["resources"]["applicationInsights"]["config"]["properties"]
    assert insights["DisableLocalAuth"] is True
    vault = bicep("modules/keyvault.bicep")["resources"]["keyVault"]["config"]["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True


def test_key_based_access_is_disabled_in_terraform(terraform: dict[str, Any]) -> None:
    storage = terraform_resources(terraform, "azurerm_storage_account")["this"]
    assert storage["shared_access_key_enabled"] is False
    assert storage["allow_nested_items_to_be_public"] is False
    assert hcl_text(storage["min_tls_version"]) == "TLS1_2"
    namespace = terraform_resources(terraform, "azurerm_servicebus_namespace")["this"]
    assert namespace["local_auth_enabled"] is False
    assert hcl_text(namespace["minimum_tls_version"]) == "1.2"
    insights = terraform_resources(terraform, "azurerm_application_insights")["this"]
    assert insights["local_authentication_disabled"] is True
    vault = terraform_resources(terraform, "azurerm_key_vault")["this"]
    assert vault["rbac_authorization_enabled"] is True
    assert vault["purge_protection_enabled"] is True
    providers = {hcl_text(name): body for block in terraform["provider"] for name, body in block.items()}
    assert providers["azurerm"]["storage_use_azuread"] is True
