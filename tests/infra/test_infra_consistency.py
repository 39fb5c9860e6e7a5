"""Bicep and Terraform deploy the same system: same inputs and outputs, same naming pattern,
same Function App, queues, tables, role assignments, alerts, workbook and Event Grid system
topics; and the metric names they query are the ones docs/monitoring.md promises."""

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
    # Held by each Event Grid system topic's own identity, on the dead-letter container only.
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}

# Who holds a Terraform role assignment: the app's identity, or (for_each over the system
# topics) each Event Grid system topic's system-assigned identity.
TERRAFORM_PRINCIPALS = {
    "local.principal_id": None,
    "each.value.identity[0].principal_id": "for_each = azurerm_eventgrid_system_topic.storage",
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
    assert tf_queue["for_each"] == (
        "${toset([var.launch_queue_name, var.poll_queue_name, var.notify_queue_name])}"
    )
    main = bicep("main.bicep")["modules"]["serviceBus"]["config"]["params"]
    assert main["queueNames"] == ["launchQueueName", "pollQueueName", "notifyQueueName"]
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
            principal = re.search(r"^\s*principal_id\s*= (\S+)$", body, re.MULTILINE).group(1)  # type: ignore[union-attr]
            assert principal in TERRAFORM_PRINCIPALS, f"{resource}: unknown principal {principal}"
            holder = TERRAFORM_PRINCIPALS[principal]
            assert holder is None or f"{holder}\n" in body, f"{resource}: {principal} needs {holder}"
            assert f'join("-", [{scope}, {principal}, "{role_id}"])' in body, resource
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


# --- file arrival triggers (Event Grid) --------------------------------------------------------

FUNCTIONS_DIR = BICEP_DIR.parents[1] / "functions"
BLOB_CREATED_FUNCTION = "blob_created"
# Only these BlobCreated APIs announce a complete blob (shared/services/events.py).
CREATED_BLOB_APIS = ["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"]
SUBJECT_PREFIX = "/blobServices/default/containers/"
DEAD_LETTER_CONTAINER = "eventgrid-deadletter"
# Event Grid allows 25 filter values per subscription: 4 APIs and 4 excluded app containers.
MAX_WATCHED_CONTAINERS = 25 - len(CREATED_BLOB_APIS) - 4


def _bicep_event_grid(bicep: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return bicep("modules/eventgrid.bicep")


def _tf_subscription(terraform: dict[str, Any]) -> dict[str, Any]:
    return terraform_resources(terraform, "azurerm_eventgrid_system_topic_event_subscription")["blob_created"]


def _tf_block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` of a python-hcl2 body."""
    blocks = body[name]
    assert isinstance(blocks, list) and len(blocks) == 1, name
    block: dict[str, Any] = blocks[0]
    return block


def _tf_dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    found = [d[f'"{name}"'] for d in body.get("dynamic", []) if f'"{name}"' in d]
    assert len(found) == 1, f"no dynamic {name} block"
    block: dict[str, Any] = found[0]
    return block


def test_one_system_topic_per_watched_storage_account_with_its_own_identity(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    main = bicep("main.bicep")
    module = main["modules"]["eventGrid"]
    assert module["detail"]["path"] == "modules/eventgrid.bicep"
    assert module["config"]["loop_type"]["detail"]["array_name"] == "watchedStorageAccountIds"
    assert module["config"]["config"]["params"]["sourceStorageAccountId"] == "accountId"
    # Empty landing ids watch the deployment's own account.
    watched = main["variables"]["watchedStorageAccountIds"]["value"]["operator"]["operands"]
    assert watched == {
        "condition": "watchesOwnStorage",
        "true_value": ["ownStorageAccountId"],
        "false_value": "landingStorageAccountIds",
    }
    topic = _bicep_event_grid(bicep)["resources"]["systemTopic"]
    assert topic["type"] == "Microsoft.EventGrid/systemTopics"
    assert topic["config"]["properties"] == {
        "source": "sourceStorageAccountId",
        "topicType": "Microsoft.Storage.StorageAccounts",
    }
    assert topic["config"]["identity"] == {"type": "SystemAssigned"}

    tf_topic = terraform_resources(terraform, "azurerm_eventgrid_system_topic")["storage"]
    assert tf_topic["for_each"] == "${local.watched_storage_accounts}"
    assert hcl_text(tf_topic["topic_type"]) == "Microsoft.Storage.StorageAccounts"
    assert tf_topic["source_arm_resource_id"] == "${each.value.id}"
    assert hcl_text(_tf_block(tf_topic, "identity")["type"]) == "SystemAssigned"
    local_values = terraform_locals(terraform)
    assert local_values["watches_own_storage"] == "${length(var.landing_storage_account_ids) == 0}"
    watched_tf = local_values["watched_storage_accounts"]
    assert watched_tf.startswith(
        "${local.watches_own_storage ? tomap({(local.names.storage) = {id = azurerm_storage_account.this.id"
    )
    assert "for id in var.landing_storage_account_ids" in watched_tf


def test_the_subscription_delivers_blob_created_events_to_the_blob_created_function(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    main = bicep("main.bicep")
    assert main["variables"]["blobCreatedFunctionName"]["value"] == BLOB_CREATED_FUNCTION
    params = main["modules"]["eventGrid"]["config"]["config"]["params"]
    assert params["functionName"] == "blobCreatedFunctionName"
    assert "functionApp" in json.dumps(params["functionAppId"])
    subscription = _bicep_event_grid(bicep)["resources"]["blobCreated"]["config"]["config"]["properties"]
    destination = subscription["destination"]
    assert destination == {
        "endpointType": "AzureFunction",
        "properties": {
            "resourceId": "${functionAppId}/functions/${functionName}",
            "maxEventsPerBatch": 1,
            "preferredBatchSizeInKilobytes": 64,
        },
    }
    assert subscription["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert subscription["eventDeliverySchema"] == "EventGridSchema"

    tf = _tf_subscription(terraform)
    assert hcl_text(terraform_locals(terraform)["blob_created_function_name"]) == BLOB_CREATED_FUNCTION
    endpoint = _tf_block(tf, "azure_function_endpoint")
    assert hcl_text(endpoint["function_id"]) == (
        "${azapi_resource.function_app.id}/functions/${local.blob_created_function_name}"
    )
    assert endpoint["max_events_per_batch"] == 1
    assert endpoint["preferred_batch_size_in_kilobytes"] == 64
    assert [hcl_text(t) for t in tf["included_event_types"]] == ["Microsoft.Storage.BlobCreated"]
    assert hcl_text(tf["event_delivery_schema"]) == "EventGridSchema"
    # An AzureFunction endpoint, never a webhook URL (that would carry the function's key).
    assert "webhook_endpoint" not in tf
    assert "WebHook" not in (BICEP_DIR / "modules" / "eventgrid.bicep").read_text()


def test_the_function_the_infrastructure_names_is_an_event_grid_trigger_in_the_code() -> None:
    """The endpoint names a function the app registers with an Event Grid trigger."""
    registered = {
        match.group(1)
        for path in FUNCTIONS_DIR.glob("*.py")
        for match in re.finditer(
            r'@\w+\.function_name\("(\w+)"\)\s*\n\s*@\w+\.event_grid_trigger\(', path.read_text()
        )
    }
    assert BLOB_CREATED_FUNCTION in registered, f"Event Grid-triggered functions in functions/: {registered}"


def test_only_the_four_blob_apis_that_complete_a_blob_are_delivered(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    assert bicep("main.bicep")["variables"]["createdBlobApis"]["value"] == CREATED_BLOB_APIS
    assert bicep("main.bicep")["modules"]["eventGrid"]["config"]["config"]["params"]["createdBlobApis"] == (
        "createdBlobApis"
    )
    module = _bicep_event_grid(bicep)
    assert module["variables"]["apiFilter"]["value"] == [
        {"operatorType": "StringIn", "key": "data.api", "values": "createdBlobApis"}
    ]
    properties = module["resources"]["blobCreated"]["config"]["config"]["properties"]
    concat = properties["filter"]["advancedFilters"]["function"]
    assert concat["type"] == "concat"
    assert list(concat["parameters"].values()) == ["apiFilter", "containerFilter", "exclusionFilter"]

    assert [hcl_text(api) for api in terraform_locals(terraform)["created_blob_apis"]] == CREATED_BLOB_APIS
    advanced = _tf_block(_tf_subscription(terraform), "advanced_filter")
    string_in = _tf_block(advanced, "string_in")
    assert hcl_text(string_in["key"]) == "data.api"
    assert string_in["values"] == "${local.created_blob_apis}"


def test_watched_containers_become_a_subject_prefix_filter_within_event_grid_limits(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    module = _bicep_event_grid(bicep)
    assert module["variables"]["subjectPrefix"]["value"] == SUBJECT_PREFIX
    operands = module["variables"]["containerFilter"]["value"]["operator"]["operands"]
    assert operands["true_value"] == []  # no containers: no filter, every container
    (container_filter,) = operands["false_value"]
    assert container_filter["operatorType"] == "StringBeginsWith"
    assert container_filter["key"] == "subject"
    assert container_filter["values"] == "watchedSubjects"
    subjects = module["variables"]["watchedSubjects"]["value"]
    assert subjects["loop_type"]["detail"]["array_name"] == "watchedContainers"
    assert subjects["config"] == "${subjectPrefix}${container}/"
    for parameters in (bicep("main.bicep")["parameters"], module["parameters"]):
        limits = [d for d in parameters["watchedContainers"]["decorators"] if d["type"] == "max_length"]
        assert limits == [{"type": "max_length", "argument": MAX_WATCHED_CONTAINERS}]

    assert hcl_text(terraform_locals(terraform)["event_grid_subject_prefix"]) == SUBJECT_PREFIX
    begins_with = _tf_dynamic(_tf_block(_tf_subscription(terraform), "advanced_filter"), "string_begins_with")
    assert begins_with["for_each"] == "${length(var.watched_containers) > 0 ? [var.watched_containers] : []}"
    content = _tf_block(begins_with, "content")
    assert hcl_text(content["key"]) == "subject"
    assert content["values"] == (
        '${[for container in string_begins_with.value : "${local.event_grid_subject_prefix}${container}/"]}'
    )
    validations = terraform_blocks(terraform, "variable")["watched_containers"]["validation"]
    limit = f"${{length(var.watched_containers) <= {MAX_WATCHED_CONTAINERS}}}"
    assert any(validation["condition"] == limit for validation in validations)


def test_the_apps_own_containers_are_never_delivered(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    """Host blobs (timer status every minute) and the dead-letter container stay out: a
    dead-lettered event written to a watched container would be delivered, fail, and loop."""
    main = bicep("main.bicep")
    variables = main["variables"]
    assert variables["deadLetterContainerName"]["value"] == DEAD_LETTER_CONTAINER
    assert variables["appBlobContainers"]["value"] == [
        "azure-webjobs-hosts",
        "azure-webjobs-secrets",
        "deploymentContainerName",
        "deadLetterContainerName",
    ]
    excluded = main["modules"]["eventGrid"]["config"]["config"]["params"]["excludedContainers"]
    assert excluded["operator"]["operands"]["true_value"] == "appBlobContainers"
    assert "ownStorageAccountId" in json.dumps(excluded["operator"]["operands"]["condition"])
    operands = _bicep_event_grid(bicep)["variables"]["exclusionFilter"]["value"]["operator"]["operands"]
    (exclusion,) = operands["false_value"]
    assert (exclusion["operatorType"], exclusion["key"]) == ("StringNotBeginsWith", "subject")
    assert exclusion["values"] == "excludedSubjects"
    subjects = _bicep_event_grid(bicep)["variables"]["excludedSubjects"]["value"]
    assert subjects["loop_type"]["detail"]["array_name"] == "excludedContainers"
    assert subjects["config"] == "${subjectPrefix}${container}/"

    local_values = terraform_locals(terraform)
    assert hcl_text(local_values["dead_letter_container_name"]) == DEAD_LETTER_CONTAINER
    assert local_values["app_blob_containers"] == [
        '"azure-webjobs-hosts"',
        '"azure-webjobs-secrets"',
        "${local.deployment_container_name}",
        "${local.dead_letter_container_name}",
    ]
    not_begins_with = _tf_dynamic(
        _tf_block(_tf_subscription(terraform), "advanced_filter"), "string_not_begins_with"
    )
    assert not_begins_with["for_each"] == (
        "${local.watched_storage_accounts[each.key].own ? [local.app_blob_containers] : []}"
    )
    content = _tf_block(not_begins_with, "content")
    assert hcl_text(content["key"]) == "subject"
    assert "local.event_grid_subject_prefix" in content["values"]


def test_undeliverable_events_are_dead_lettered_with_the_topics_identity(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    properties = _bicep_event_grid(bicep)["resources"]["blobCreated"]["config"]["config"]["properties"]
    assert properties["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    assert "deadLetterDestination" not in properties, "dead-letter with the identity, not with a key"
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"
    assert "deadLetterStorageAccount" in json.dumps(destination["properties"]["resourceId"])
    params = bicep("main.bicep")["modules"]["eventGrid"]["config"]["config"]["params"]
    assert "deadLetterContainerName" in json.dumps(params["deadLetterContainerName"])
    assert "storage" in json.dumps(params["deadLetterStorageAccountName"])
    storage = bicep("modules/storage.bicep")["resources"]["deadLetterContainer"]["config"]
    assert storage["name"] == "deadLetterContainerName"
    assert storage["properties"] == {"publicAccess": "None"}

    tf = _tf_subscription(terraform)
    assert _tf_block(tf, "retry_policy") | {"__is_block__": True} == {
        "max_delivery_attempts": 30,
        "event_time_to_live": 1440,
        "__is_block__": True,
    }
    assert hcl_text(_tf_block(tf, "dead_letter_identity")["type"]) == "SystemAssigned"
    tf_destination = _tf_block(tf, "storage_blob_dead_letter_destination")
    assert tf_destination["storage_account_id"] == "${azurerm_storage_account.this.id}"
    assert tf_destination["storage_blob_container_name"] == "${azurerm_storage_container.dead_letter.name}"
    container = terraform_resources(terraform, "azurerm_storage_container")["dead_letter"]
    assert container["name"] == "${local.dead_letter_container_name}"
    assert hcl_text(container["container_access_type"]) == "private"
    # Delivery needs no identity: Event Grid calls an AzureFunction endpoint itself. Only the
    # dead-letter writes use one, and the subscription waits for its role.
    assert "delivery_identity" not in tf
    assert tf["depends_on"] == ["${azurerm_role_assignment.event_grid_dead_letter_writer}"]
    assert _bicep_event_grid(bicep)["resources"]["blobCreated"]["config"]["config"]["dependsOn"] == [
        "deadLetterWriter"
    ]


def test_the_topics_identity_may_write_only_to_the_dead_letter_container(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    role = bicep("modules/eventgrid-deadletter-role.bicep")["resources"]["deadLetterWriter"]["config"]
    assert role["scope"] == "deadLetterContainer"
    writer = json.dumps(
        _bicep_event_grid(bicep)["modules"]["deadLetterWriter"]["config"]["params"]["principalId"]
    )
    assert "systemTopic" in writer and "principalId" in writer
    tf_role = terraform_resources(terraform, "azurerm_role_assignment")["event_grid_dead_letter_writer"]
    assert tf_role["scope"] == "${local.dead_letter_container_id}"
    assert hcl_text(terraform_locals(terraform)["dead_letter_container_id"]) == (
        "${azurerm_storage_account.this.id}/blobServices/default/containers/"
        "${azurerm_storage_container.dead_letter.name}"
    )


def test_subscriptions_wait_for_enable_file_arrival_events(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    """Event Grid refuses an AzureFunction subscription whose function is not published yet."""
    assert bicep("main.bicep")["parameters"]["enableFileArrivalEvents"]["default"] is False
    params = bicep("main.bicep")["modules"]["eventGrid"]["config"]["config"]["params"]
    assert params["createSubscription"] == "enableFileArrivalEvents"
    assert _bicep_event_grid(bicep)["resources"]["blobCreated"]["config"]["condition"] == "createSubscription"
    assert terraform_blocks(terraform, "variable")["enable_file_arrival_events"]["default"] is False
    assert _tf_subscription(terraform)["for_each"] == (
        "${{for key, topic in azurerm_eventgrid_system_topic.storage : key => topic"
        " if var.enable_file_arrival_events}}"
    )


def test_the_event_grid_alerts_are_the_same_in_both_tools(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    module = _bicep_event_grid(bicep)
    bicep_rules = {
        rule["key"]: (rule["metricName"], rule["severity"], rule["description"])
        for rule in module["variables"]["alertRules"]["value"]
    }
    tf_rules = {
        hcl_text(key): (hcl_text(rule["metric_name"]), rule["severity"], hcl_text(rule["description"]))
        for key, rule in terraform_locals(terraform)["event_grid_alert_rules"].items()
        if not key.startswith("__")
    }
    assert bicep_rules == tf_rules
    assert {metric for metric, _, _ in bicep_rules.values()} == {"DeadLetteredCount", "DroppedEventCount"}
    criterion = module["resources"]["alerts"]["config"]["config"]["properties"]["criteria"]["allOf"][0]
    assert criterion["metricNamespace"] == "Microsoft.EventGrid/systemTopics"
    threshold = ("Total", "GreaterThan", 0)
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == threshold
    tf_alert = terraform_resources(terraform, "azurerm_monitor_metric_alert")["event_grid"]
    tf_criterion = _tf_block(tf_alert, "criteria")
    assert hcl_text(tf_criterion["metric_namespace"]) == "Microsoft.EventGrid/systemTopics"
    tf_threshold = (hcl_text(tf_criterion["aggregation"]), hcl_text(tf_criterion["operator"]))
    assert (*tf_threshold, tf_criterion["threshold"]) == threshold
    assert tf_alert["scopes"] == ["${azurerm_eventgrid_system_topic.storage[each.value.account].id}"]


def test_entra_auth_lets_event_grid_reach_its_webhook(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    """Event Grid calls /runtime/webhooks/EventGrid with the function's system key, no token."""
    auth = bicep("modules/function-app.bicep")["resources"]["authSettings"]["config"]["config"]["properties"]
    excluded = {path.lower() for path in auth["globalValidation"]["excludedPaths"]}
    assert {"/api/health", "/runtime/webhooks/eventgrid"} <= excluded
    tf_auth = terraform_resources(terraform, "azapi_update_resource")["auth_settings"]["body"]["properties"]
    tf_excluded = {hcl_text(path).lower() for path in tf_auth["globalValidation"]["excludedPaths"]}
    assert tf_excluded == excluded
