"""Bicep and Terraform deploy the same system: same inputs and outputs, same naming pattern,
same Function App, queues, tables, role assignments, alerts and workbook; and the metric names
they query are the ones docs/monitoring.md promises."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BICEP_DIR, MONITORING_DOC, TERRAFORM_DIR
from iac_model import (
    hcl_text,
    kql,
    name_pattern,
    snake_case,
    terraform_blocks,
    terraform_locals,
    terraform_resources,
)

pytestmark = pytest.mark.timeout(900)  # the first test of a session may install .venv-infra

# Built-in roles the identity needs, by role definition id.
ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",  # token mode only
}

# Inputs only one tool has: Bicep gets the subscription and resource group from the CLI.
TERRAFORM_ONLY_VARIABLES = {"subscription_id", "resource_group_name"}

WORKBOOKS = (BICEP_DIR / "modules" / "workbook.json", TERRAFORM_DIR / "workbook.json")


def _documented_metrics() -> set[str]:
    text = MONITORING_DOC.read_text()
    section = text.split("## Metric names", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(scheduler\.[a-z_]+)`", section, re.MULTILINE))


def _infra_text() -> str:
    files = [*BICEP_DIR.rglob("*.bicep"), *TERRAFORM_DIR.rglob("*.tf"), *WORKBOOKS]
    return "\n".join(path.read_text() for path in files)


# --- inputs, outputs, names -------------------------------------------------------------------


def test_terraform_variables_are_the_bicep_parameters(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    parameters = {snake_case(name) for name in bicep("main.bicep")["parameters"]}
    variables = set(terraform_blocks(terraform, "variable")) - TERRAFORM_ONLY_VARIABLES
    assert parameters - variables == set(), "Bicep parameters with no Terraform variable"
    assert variables - parameters == set(), "Terraform variables with no Bicep parameter"


def test_terraform_defaults_are_the_bicep_defaults(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    variables = terraform_blocks(terraform, "variable")
    different = {}
    for name, parameter in bicep("main.bicep")["parameters"].items():
        default = parameter.get("default")
        if isinstance(default, dict) and default:  # an expression, e.g. resourceGroup().location
            continue
        tf_default = hcl_text(variables[snake_case(name)].get("default"))
        if tf_default != default and not (tf_default is None and default in ("", None)):
            different[name] = (default, tf_default)
    # entraTenantId defaults to the deploying tenant in both (tenant().tenantId / null).
    different.pop("entraTenantId", None)
    assert not different, f"parameter: (Bicep default, Terraform default) {different}"


def test_outputs_are_the_same_in_both_tools(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    bicep_outputs = set(bicep("main.bicep")["outputs"])
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in bicep_outputs), "upper snake case"
    assert {name.lower() for name in bicep_outputs} == set(terraform_blocks(terraform, "output"))


def test_resource_names_follow_the_same_pattern(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    bicep_names = {
        snake_case(key): name_pattern(value, {"environmentName": "env", "resourceToken": "token"})
        for key, value in bicep("main.bicep")["variables"]["names"]["value"].items()
    }
    terraform_names = {
        key: name_pattern(hcl_text(value), {"var.environment_name": "env", "local.resource_token": "token"})
        for key, value in terraform_locals(terraform)["names"].items()
        if not key.startswith("__")
    }
    assert bicep_names == terraform_names
    assert bicep_names["function_app"] == "func-{env}-{token}"


# --- the Function App --------------------------------------------------------------------------


def test_the_function_app_is_the_same_flex_consumption_site(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    module = bicep("modules/function-app.bicep")["resources"]
    site = module["functionApp"]
    assert site["type"] == "Microsoft.Web/sites"
    bicep_properties = site["config"]["properties"]
    tf_site = terraform_resources(terraform, "azapi_resource")["function_app"]
    assert hcl_text(tf_site["type"]) == f"Microsoft.Web/sites@{site['api_version']}"
    tf_properties = tf_site["body"]["properties"]

    for properties, tool in ((bicep_properties, "bicep"), (tf_properties, "terraform")):
        config = properties["functionAppConfig"]
        assert properties["httpsOnly"] is True, tool
        assert {hcl_text(v) for v in config["runtime"].values()} == {"python", "3.11"}, tool
        storage = config["deployment"]["storage"]
        assert hcl_text(storage["type"]) == "blobContainer", tool
        assert hcl_text(storage["authentication"]["type"]) == "UserAssignedIdentity", tool
        assert set(config["scaleAndConcurrency"]) == {"instanceMemoryMB", "maximumInstanceCount"}, tool
        site_config = properties["siteConfig"]
        assert hcl_text(site_config["minTlsVersion"]) == "1.2", tool
        assert hcl_text(site_config["scmMinTlsVersion"]) == "1.2", tool
        assert hcl_text(site_config["ftpsState"]) == "Disabled", tool
        assert site_config["remoteDebuggingEnabled"] is False, tool
    assert hcl_text(tf_site["body"]["kind"]) == site["config"]["kind"] == "functionapp,linux"
    assert "UserAssigned" in json.dumps(site["config"]["identity"])
    assert "UserAssigned" in json.dumps(tf_site["identity"])
    assert module["plan"]["config"]["sku"]["name"] == "FC1"
    assert hcl_text(terraform_resources(terraform, "azurerm_service_plan")["this"]["sku_name"]) == "FC1"


def test_basic_publishing_credentials_are_off_in_both_tools(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    resources = bicep("modules/function-app.bicep")["resources"]
    policies = {
        r["config"]["name"]: r["config"]["properties"]["allow"]
        for r in resources.values()
        if r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert policies == {"ftp": False, "scm": False}
    updates = terraform_resources(terraform, "azapi_update_resource")
    tf_policies = {
        hcl_text(u["name"]): u["body"]["properties"]["allow"]
        for u in updates.values()
        if "basicPublishingCredentialsPolicies" in u["type"]
    }
    assert tf_policies == {"ftp": False, "scm": False}


# --- Service Bus and storage -------------------------------------------------------------------


def test_the_queues_have_the_same_settings(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    queue = bicep("modules/servicebus.bicep")["resources"]["queues"]["config"]["config"]["properties"]
    assert queue["requiresDuplicateDetection"] is True
    assert queue["deadLetteringOnMessageExpiration"] is True
    tf_queue = terraform_resources(terraform, "azurerm_servicebus_queue")["this"]
    assert tf_queue["requires_duplicate_detection"] is True
    assert tf_queue["dead_lettering_on_message_expiration"] is True
    assert tf_queue["for_each"] == "${toset([var.launch_queue_name, var.poll_queue_name])}"
    main = bicep("main.bicep")["modules"]["serviceBus"]["config"]["params"]
    assert main["queueNames"] == ["launchQueueName", "pollQueueName"]
    # Window, delivery count and lock duration are inputs of both tools.
    assert queue["duplicateDetectionHistoryTimeWindow"] == "duplicateDetectionWindow"
    assert tf_queue["duplicate_detection_history_time_window"] == "${var.duplicate_detection_window}"
    assert tf_queue["max_delivery_count"] == "${var.max_delivery_count}"
    assert tf_queue["lock_duration"] == "${var.lock_duration}"


def test_the_tables_are_the_same(bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]) -> None:
    assert bicep("main.bicep")["modules"]["storage"]["config"]["params"]["tableNames"] == [
        "jobsTable",
        "runsTable",
    ]
    table = terraform_resources(terraform, "azapi_resource")["table"]
    assert table["for_each"] == "${toset([var.jobs_table, var.runs_table])}"


# --- role assignments --------------------------------------------------------------------------

BICEP_ROLE_ASSIGNMENT = re.compile(
    r"((?:^//[^\n]*\n)+)^resource (\w+) 'Microsoft\.Authorization/roleAssignments@[^']+' = \{\n(.*?)^\}",
    re.MULTILINE | re.DOTALL,
)
TERRAFORM_ROLE_ASSIGNMENT = re.compile(
    r"((?:^#[^\n]*\n)+)^resource \"azurerm_role_assignment\" \"(\w+)\" \{\n(.*?)^\}",
    re.MULTILINE | re.DOTALL,
)


def _role_assignments(tool: str) -> list[tuple[str, str, str]]:
    """(leading comment, resource name, body) of every role assignment of a tool."""
    if tool == "bicep":
        texts, pattern, marker = (
            [p.read_text() for p in BICEP_DIR.rglob("*.bicep")],
            BICEP_ROLE_ASSIGNMENT,
            "roleAssignments@",
        )
    else:
        texts, pattern, marker = (
            [p.read_text() for p in TERRAFORM_DIR.rglob("*.tf")],
            TERRAFORM_ROLE_ASSIGNMENT,
            '"azurerm_role_assignment"',
        )
    found = [m.groups() for text in texts for m in pattern.finditer(text)]
    declared = sum(text.count(marker) for text in texts)
    assert len(found) == declared, f"{tool}: a role assignment without a comment naming the role"
    return found


@pytest.mark.parametrize("tool", ["bicep", "terraform"])
def test_each_role_assignment_names_its_role_and_is_named_by_scope_principal_role(tool: str) -> None:
    seen = set()
    for comment, resource, body in _role_assignments(tool):
        role_ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", body))
        role_ids -= {"11fb06fb-712d-4ddd-98c7-e71bbd588830"}  # the guid() namespace in Terraform
        assert len(role_ids) == 1 and role_ids <= set(ROLES), f"{resource}: unknown role {role_ids}"
        role_id = role_ids.pop()
        first_line = comment.splitlines()[0].lstrip("/# ")
        assert first_line.startswith(ROLES[role_id]), f"{resource}: comment must name {ROLES[role_id]}"
        if tool == "bicep":
            scope = re.search(r"^\s*scope: (\w+)$", body, re.MULTILINE).group(1)  # type: ignore[union-attr]
            assert f"name: guid({scope}.id, principalId, '{role_id}')" in body, resource
            assert f"roleDefinitions', '{role_id}')" in body, resource
        else:
            scope = re.search(r"^\s*scope\s*= (\S+)$", body, re.MULTILINE).group(1)  # type: ignore[union-attr]
            assert f'join("-", [{scope}, local.principal_id, "{role_id}"])' in body, resource
            assert f'role_definition_id = "${{local.role_definition_prefix}}/{role_id}"' in body, resource
        assert re.search(r"principal_?[tT]ype\s*[:=] ['\"]ServicePrincipal['\"]", body), resource
        seen.add(role_id)
    assert seen == set(ROLES), f"{tool} misses {[ROLES[r] for r in set(ROLES) - seen]}"


# --- alerts, workbook, metric names ------------------------------------------------------------


def test_the_alert_rules_are_the_same_in_both_tools(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    bicep_rules = {
        rule["key"]: (
            rule["severity"],
            kql(rule["query"]),
            rule["timeAggregation"],
            rule["metricMeasureColumn"],
            rule["operator"],
            rule["threshold"] if not isinstance(rule["threshold"], str) else snake_case(rule["threshold"]),
            rule["windowSize"],
        )
        for rule in bicep("modules/alerts.bicep")["variables"]["logAlertRules"]["value"]
    }
    tf_rules = {
        hcl_text(key): (
            rule["severity"],
            kql(hcl_text(rule["query"])),
            hcl_text(rule["time_aggregation"]),
            hcl_text(rule["metric_measure_column"]),
            hcl_text(rule["operator"]),
            rule["threshold"]
            if not isinstance(rule["threshold"], str)
            else rule["threshold"].strip("${}").removeprefix("var."),
            hcl_text(rule["window_duration"]),
        )
        for key, rule in terraform_locals(terraform)["log_alert_rules"].items()
        if not key.startswith("__")
    }
    assert bicep_rules == tf_rules


def test_the_alerts_cover_what_the_issue_asks_for(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    queries = " ".join(
        r["query"] for r in bicep("modules/alerts.bicep")["variables"]["logAlertRules"]["value"]
    )
    assert "requests | where success == false" in queries
    for metric in (
        "scheduler.runs_finished",
        "scheduler.dead_letters",
        "scheduler.fire_lag_ms",
        "scheduler.ticks",
        "scheduler.repairs",
    ):
        assert metric in queries
    assert '"FAILED", "TIMED_OUT"' in queries
    assert 'state == "given_up"' in queries
    metric_alert = bicep("modules/alerts.bicep")["resources"]["deadLetteredMessages"]["config"]["properties"]
    assert metric_alert["criteria"]["allOf"][0]["metricName"] == "DeadletteredMessages"
    tf_alert = terraform_resources(terraform, "azurerm_monitor_metric_alert")["dead_lettered_messages"]
    assert hcl_text(tf_alert["criteria"][0]["metric_name"]) == "DeadletteredMessages"


def test_both_tools_ship_the_same_workbook() -> None:
    bicep_workbook, terraform_workbook = (path.read_text() for path in WORKBOOKS)
    assert bicep_workbook == terraform_workbook, "copy infra/bicep/modules/workbook.json to infra/terraform"
    workbook = json.loads(bicep_workbook)
    assert workbook["version"] == "Notebook/1.0"
    text = json.dumps(workbook)
    for metric in ("scheduler.runs_finished", "scheduler.fire_lag_ms", "scheduler.dead_letters"):
        assert metric in text
    assert "__SERVICE_BUS_NAMESPACE_ID__" in text
    assert "percentile" in text and "top 20" in text and "DeadletteredMessages" in text


def test_the_infrastructure_queries_only_documented_metric_names() -> None:
    documented = _documented_metrics()
    assert {
        "scheduler.fire_lag_ms",
        "scheduler.runs_finished",
        "scheduler.ticks",
        "scheduler.dead_letters",
    } <= documented
    used = set(re.findall(r"scheduler\.[a-z_]+", _infra_text()))
    assert used, "the infrastructure queries no custom metric"
    assert used <= documented, f"undocumented metric names: {sorted(used - documented)}"
