"""Job notifications (issue 14) in both tools: the notify queue and its setting, the signing
secrets as Key Vault references the app resolves with its identity, the alerts and the
workbook tiles on the notification, deadline and queue-wait metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BICEP_DIR, ROOT, TERRAFORM_DIR
from iac_model import hcl_text, terraform_blocks, terraform_locals, terraform_resources

pytestmark = pytest.mark.timeout(900)  # the first test of a session may install .venv-infra

# A job's destination names its signing secret by `secret_ref`; the app reads the setting
# NOTIFICATION_SECRET_<REF> (shared/adapters/webhooks.py), a reference to this Key Vault secret.
SETTING_PREFIX = "NOTIFICATION_SECRET_"
SECRET_PREFIX = "notification-secret-"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
VALID_NAMES = ["a", "9", "team-a-webhook", "x" * 40, "ops-2-slack"]
INVALID_NAMES = ["", "x" * 41, "Team-A", "team_a", "-team", "team a", "team.a", "tëam"]


def _setting(name: str) -> str:
    return SETTING_PREFIX + name.upper().replace("-", "_")


# --- a tiny evaluator of the interpolations the two tools use in these settings ---------------

FUNCTIONS: dict[str, Callable[..., str]] = {
    "toUpper": str.upper,
    "upper": str.upper,
    "toLower": str.lower,
    "lower": str.lower,
    "replace": lambda text, old, new: text.replace(old, new),
}
TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][\w.]*)|'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|(?P<sym>[(),]))"
)


def _evaluate(expression: str, names: dict[str, str]) -> str:
    """Evaluate `f(g(x, '-', '_'))`-style expressions: calls of FUNCTIONS, quoted strings and
    the identifiers in `names`. Anything else fails the test: this is not a general parser."""
    tokens = [m for m in TOKEN.finditer(expression) if m.group().strip()]
    assert "".join(m.group().strip() for m in tokens) == re.sub(r"\s+", "", expression), expression
    position = 0

    def take() -> re.Match[str]:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def value() -> str:
        token = take()
        if token["single"] is not None or token["double"] is not None:
            return token["single"] if token["single"] is not None else token["double"]
        name = token["name"]
        assert name, f"unexpected {token.group()!r} in {expression!r}"
        if position < len(tokens) and tokens[position]["sym"] == "(":
            take()
            args = [value()]
            while take()["sym"] == ",":
                args.append(value())
            return FUNCTIONS[name](*args)
        return names[name]

    result = value()
    assert position == len(tokens), expression
    return result


def _render(template: str, names: dict[str, str]) -> str:
    """A Bicep or Terraform string with its ${...} parts evaluated."""
    out, index = [], 0
    while (start := template.find("${", index)) >= 0:
        depth, end = 0, start + 2
        while depth or template[end] != "}":
            depth += {"(": 1, ")": -1}.get(template[end], 0)
            end += 1
        out += [template[index:start], _evaluate(template[start + 2 : end], names)]
        index = end + 1
    return "".join([*out, template[index:]])


def test_the_evaluator_reads_what_the_templates_write() -> None:
    names = {"n": "team-a", "names.keyVault": "kv"}
    assert _render("X_${toUpper(replace(n, '-', '_'))}", names) == "X_TEAM_A"
    assert _render('X_${upper(replace(n, "-", "_"))}-${names.keyVault}', names) == "X_TEAM_A-kv"
    with pytest.raises(KeyError):
        _render("${unknown(n)}", names)


# --- the notify queue --------------------------------------------------------------------------


def test_the_notify_queue_and_its_setting_are_deployed_like_launch_and_poll(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    main = bicep("main.bicep")
    assert main["parameters"]["notifyQueueName"]["default"] == "notify"
    assert "notifyQueueName" in main["modules"]["serviceBus"]["config"]["params"]["queueNames"]
    assert main["variables"]["schedulerAppSettings"]["value"]["NotifyQueueName"] == "notifyQueueName"
    variables = terraform_blocks(terraform, "variable")
    assert hcl_text(variables["notify_queue_name"]["default"]) == "notify"
    queue = terraform_resources(terraform, "azurerm_servicebus_queue")["this"]
    assert "var.notify_queue_name" in queue["for_each"]
    settings = terraform_locals(terraform)["scheduler_app_settings"]
    assert settings["NotifyQueueName"] == "${var.notify_queue_name}"


def test_every_queue_setting_a_trigger_binds_to_is_deployed(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    """queue_name="%NotifyQueueName%" in functions/ resolves only if the app has that setting."""
    bound = {
        match.group(1)
        for path in (ROOT / "functions").glob("*.py")
        for match in re.finditer(r'queue_name="%(\w+)%"', path.read_text())
    }
    assert {"LaunchQueueName", "PollQueueName"} <= bound
    bicep_settings = set(bicep("main.bicep")["variables"]["schedulerAppSettings"]["value"])
    tf_settings = {hcl_text(k) for k in terraform_locals(terraform)["scheduler_app_settings"]}
    assert bound <= bicep_settings, f"Bicep does not set {sorted(bound - bicep_settings)}"
    assert bound <= tf_settings, f"Terraform does not set {sorted(bound - tf_settings)}"


def test_the_dead_letter_alert_and_tile_cover_every_queue(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    """No per-queue list to forget notify in: the platform alert and chart split by EntityName."""
    criterion = bicep("modules/alerts.bicep")["resources"]["deadLetteredMessages"]["config"]["properties"][
        "criteria"
    ]["allOf"][0]
    assert criterion["dimensions"] == [{"name": "EntityName", "operator": "Include", "values": ["*"]}]
    tf_alert = terraform_resources(terraform, "azurerm_monitor_metric_alert")["dead_lettered_messages"]
    dimension = tf_alert["criteria"][0]["dimension"][0]
    assert (hcl_text(dimension["name"]), [hcl_text(v) for v in dimension["values"]]) == ("EntityName", ["*"])
    workbook = json.loads((TERRAFORM_DIR / "workbook.json").read_text())
    (chart,) = [item for item in workbook["items"] if item["name"] == "dead-letters-platform"]
    assert chart["content"]["metrics"][0]["splitBy"] == "EntityName"


# --- signing secrets: Key Vault references -----------------------------------------------------


def _bicep_secret_settings(bicep: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    loop = bicep("main.bicep")["variables"]["notificationSecretAppSettings"]["value"]
    assert loop["loop_type"] == {
        "type": "array",
        "detail": {
            "item_name": loop["loop_type"]["detail"]["item_name"],
            "array_name": "notificationSecretNames",
        },
    }
    assert loop["condition"] is None
    config: dict[str, Any] = loop["config"]
    assert set(config) == {"name", "value"}
    return {"item": loop["loop_type"]["detail"]["item_name"], **config}


def _terraform_secret_settings(terraform: dict[str, Any]) -> dict[str, str]:
    expression = terraform_locals(terraform)["notification_secret_app_settings"]
    match = re.fullmatch(
        r'\$\{\{for (\w+) in var\.notification_secret_names : "(.*)" => "(.*)"\}\}', expression
    )
    assert match, expression
    return {"item": match.group(1), "name": match.group(2), "value": match.group(3)}


@pytest.mark.parametrize("secret_name", ["team-a-webhook", "ops2"])
def test_each_secret_name_becomes_a_key_vault_reference_in_both_tools(
    secret_name: str, bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    vault = "kvdevtoken"
    expected = (
        _setting(secret_name),
        f"@Microsoft.KeyVault(VaultName={vault};SecretName={SECRET_PREFIX}{secret_name})",
    )
    b = _bicep_secret_settings(bicep)
    names = {b["item"]: secret_name, "names.keyVault": vault}
    assert (_render(b["name"], names), _render(b["value"], names)) == expected
    t = _terraform_secret_settings(terraform)
    names = {t["item"]: secret_name, "local.names.key_vault": vault}
    assert (_render(t["name"], names), _render(t["value"], names)) == expected


def test_the_references_name_the_vault_the_deployment_creates(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    assert "${names.keyVault}" in _bicep_secret_settings(bicep)["value"]
    vault_name = bicep("main.bicep")["modules"]["keyVault"]["config"]["config"]["params"]["name"]
    assert vault_name == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "names", "operand_2": "keyVault"}}
    }
    assert "${local.names.key_vault}" in _terraform_secret_settings(terraform)["value"]
    assert terraform_resources(terraform, "azurerm_key_vault")["this"]["name"] == "${local.names.key_vault}"


def test_the_secret_settings_reach_the_site(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    params = bicep("main.bicep")["modules"]["functionApp"]["config"]["params"]
    assert params["extraAppSettings"] == "notificationSecretAppSettings"
    site = bicep("modules/function-app.bicep")
    app_settings = site["resources"]["functionApp"]["config"]["properties"]["siteConfig"]["appSettings"]
    assert app_settings == {
        "function": {
            "type": "concat",
            "parameters": {"arg_1": "namedAppSettings", "arg_2": "extraAppSettings"},
        }
    }
    assert (
        site["variables"]["namedAppSettings"]["value"]["loop_type"]["detail"]["object_name"] == "appSettings"
    )
    merged = terraform_locals(terraform)["app_settings"]
    assert "local.notification_secret_app_settings" in merged


def test_the_key_vault_is_deployed_when_a_secret_is_named(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    main = bicep("main.bicep")
    use = main["variables"]["useKeyVault"]["value"]["operator"]
    assert use["type"] == "or"
    assert use["operands"]["operand_1"] == "useDatabricksToken"
    assert use["operands"]["operand_2"] == {
        "operator": {
            "type": "not",
            "operands": {
                "bool_value": {
                    "function": {"type": "empty", "parameters": {"item_to_test": "notificationSecretNames"}}
                }
            },
        }
    }
    assert main["modules"]["keyVault"]["config"]["condition"] == "useKeyVault"
    output = main["outputs"]["KEY_VAULT_NAME"]["value"]["operator"]["operands"]
    assert output["condition"] == "useKeyVault"

    local_values = terraform_locals(terraform)
    assert local_values["use_key_vault"] == (
        "${local.use_databricks_token || length(var.notification_secret_names) > 0}"
    )
    for resource_type, name in (
        ("azurerm_key_vault", "this"),
        ("azurerm_monitor_diagnostic_setting", "key_vault_audit"),
        ("azurerm_role_assignment", "key_vault_secrets_user"),
    ):
        assert (
            terraform_resources(terraform, resource_type)[name]["count"] == "${local.use_key_vault ? 1 : 0}"
        )
    output_value = terraform_blocks(terraform, "output")["key_vault_name"]["value"]
    assert output_value.startswith("${local.use_key_vault ? ")


def test_the_app_resolves_references_with_its_user_assigned_identity(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    """With only a user-assigned identity, the platform needs keyVaultReferenceIdentity; that
    identity holds Key Vault Secrets User on the vault (keyvault.bicep, keyvault.tf)."""
    site = bicep("modules/function-app.bicep")["resources"]["functionApp"]["config"]
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    assert "identity" in json.dumps(
        bicep("main.bicep")["modules"]["functionApp"]["config"]["params"]["identityId"]
    )
    role = bicep("modules/keyvault.bicep")["resources"]["secretsUser"]["config"]
    assert role["scope"] == "keyVault" and "4633458b-17de-408a-b874-0445c86b69e6" in json.dumps(role)
    holder = json.dumps(
        bicep("main.bicep")["modules"]["keyVault"]["config"]["config"]["params"]["principalId"]
    )
    assert all(f'"{part}"' in holder for part in ("identity", "outputs", "principalId")), holder

    tf_site = terraform_resources(terraform, "azapi_resource")["function_app"]
    assert (
        tf_site["body"]["properties"]["keyVaultReferenceIdentity"]
        == "${azurerm_user_assigned_identity.this.id}"
    )
    assert tf_site["identity"][0]["identity_ids"] == ["${azurerm_user_assigned_identity.this.id}"]
    tf_role = terraform_resources(terraform, "azurerm_role_assignment")["key_vault_secrets_user"]
    assert tf_role["scope"] == "${azurerm_key_vault.this[0].id}"
    assert tf_role["principal_id"] == "${local.principal_id}"
    assert "${azurerm_role_assignment.key_vault_secrets_user}" in tf_site["depends_on"]


# --- secret names: validation -----------------------------------------------------------------


def _tf_name_regex(terraform: dict[str, Any]) -> str:
    validations = terraform_blocks(terraform, "variable")["notification_secret_names"]["validation"]
    patterns = [m for v in validations for m in re.findall(r'regex\("([^"]+)"', v["condition"])]
    assert len(patterns) == 1, validations
    return patterns[0]


def test_terraform_validates_the_names_and_bicep_documents_them(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    assert _tf_name_regex(terraform) == NAME_PATTERN
    validations = terraform_blocks(terraform, "variable")["notification_secret_names"]["validation"]
    assert any("distinct(var.notification_secret_names)" in v["condition"] for v in validations)
    assert terraform_blocks(terraform, "variable")["notification_secret_names"]["default"] == []
    # Bicep has no per-item check pycep (checkov's parser) reads: the description states the rule.
    parameter = bicep("main.bicep")["parameters"]["notificationSecretNames"]
    assert parameter["default"] == []
    (description,) = [d["argument"] for d in parameter["decorators"] if d["type"] == "description"]
    assert "1-40 lowercase letters, digits or hyphens, starting with a letter or digit" in description
    for name in VALID_NAMES:
        assert re.fullmatch(NAME_PATTERN, name), name
    for name in INVALID_NAMES:
        assert not re.fullmatch(NAME_PATTERN, name), name


def test_the_names_are_the_secret_refs_the_api_accepts() -> None:
    """The Terraform rule and the API's rule for `secret_ref` accept the same names."""
    notifications = pytest.importorskip("shared.domain.notifications")
    secret_ref = getattr(notifications, "SecretRef", None)
    if secret_ref is None:
        pytest.skip("shared.domain.notifications has no SecretRef")
    from pydantic import TypeAdapter, ValidationError

    adapter = TypeAdapter(secret_ref)
    for name in [*VALID_NAMES, *INVALID_NAMES]:
        try:
            adapter.validate_python(name)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == bool(re.fullmatch(NAME_PATTERN, name)), name


def test_the_app_reads_the_setting_the_infrastructure_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    webhooks = pytest.importorskip("shared.adapters.webhooks")
    read = getattr(webhooks, "secret_from_settings", None)
    if read is None:
        pytest.skip("shared.adapters.webhooks has no secret_from_settings")
    for name in ("team-a-webhook", "ops2"):
        monkeypatch.setenv(_setting(name), f"secret of {name}")
        assert read(name) == f"secret of {name}"


def _listed(text: str, pattern: str) -> list[str]:
    match = re.search(pattern, text, re.MULTILINE | re.DOTALL)
    assert match, pattern
    return re.findall(r"['\"]([^'\"]*)['\"]", match.group(1))


def test_the_parameter_files_name_valid_secrets() -> None:
    """Bicep cannot check the names itself: check every parameter file in the repository."""
    files = sorted(BICEP_DIR.glob("*.bicepparam"))
    assert files
    for path in files:
        text = path.read_text()
        if "notificationSecretNames" not in text:
            continue
        names = _listed(text, r"^param notificationSecretNames = \[(.*?)\]")
        assert all(re.fullmatch(NAME_PATTERN, n) for n in names), (path.name, names)
        assert len(set(names)) == len(names), (path.name, names)
    example = (TERRAFORM_DIR / "terraform.tfvars.example").read_text()
    names = _listed(example, r"^notification_secret_names = \[(.*?)\]")
    assert all(re.fullmatch(NAME_PATTERN, n) for n in names), names


# --- alerts and workbook -----------------------------------------------------------------------


def _bicep_rules(bicep: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        rule["key"]: rule for rule in bicep("modules/alerts.bicep")["variables"]["logAlertRules"]["value"]
    }


def test_failed_notifications_alert(bicep: Callable[[str], dict[str, Any]]) -> None:
    rule = _bicep_rules(bicep)["notifications-failed"]
    sev2_over_15_minutes = (2, "PT15M", "GreaterThan", 0)
    assert (rule["severity"], rule["windowSize"], rule["operator"], rule["threshold"]) == sev2_over_15_minutes
    assert 'name == "scheduler.notifications"' in rule["query"]
    assert 'customDimensions["outcome"]' in rule["query"] and 'outcome == "failed"' in rule["query"]
    assert (rule["timeAggregation"], rule["metricMeasureColumn"]) == ("Total", "failed_notifications")
    assert "failed_notifications = valueSum" in rule["query"]


def test_deadline_missed_alert(bicep: Callable[[str], dict[str, Any]]) -> None:
    rule = _bicep_rules(bicep)["deadline-missed"]
    sev2_over_15_minutes = (2, "PT15M", "GreaterThan", 0)
    assert (rule["severity"], rule["windowSize"], rule["operator"], rule["threshold"]) == sev2_over_15_minutes
    assert 'name == "scheduler.deadline_missed"' in rule["query"]
    assert rule["timeAggregation"] == "Total"


def test_queue_wait_alert_compares_the_p95_of_a_pool_with_minutes(
    bicep: Callable[[str], dict[str, Any]], terraform: dict[str, Any]
) -> None:
    rule = _bicep_rules(bicep)["queue-wait"]
    assert (rule["severity"], rule["windowSize"], rule["operator"]) == (2, "PT30M", "GreaterThan")
    assert rule["threshold"] == "queueWaitAlertMinutes"
    assert 'name == "scheduler.queue_wait_ms"' in rule["query"]
    # p95 per pool, in minutes (the threshold's unit), over the whole window; the worst pool counts.
    assert "percentile(valueMax, 95) / 60000.0" in rule["query"] and rule["query"].endswith("by pool")
    assert (rule["timeAggregation"], rule["metricMeasureColumn"]) == ("Maximum", "queue_wait_p95_minutes")
    main = bicep("main.bicep")
    assert main["parameters"]["queueWaitAlertMinutes"]["default"] == 30
    assert main["modules"]["alerts"]["config"]["params"]["queueWaitAlertMinutes"] == "queueWaitAlertMinutes"
    assert terraform_blocks(terraform, "variable")["queue_wait_alert_minutes"]["default"] == 30


WORKBOOK_TILES = {
    "notifications": ("scheduler.notifications", ['customDimensions["outcome"]', 'customDimensions["kind"]']),
    "deadline-missed": ("scheduler.deadline_missed", ['customDimensions["pool"]', "by pool"]),
    "queue-wait": (
        "scheduler.queue_wait_ms",
        ['customDimensions["pool"]', "percentile(valueMax, 95)", "by pool"],
    ),
    "events-by-outcome": ("scheduler.events", ['customDimensions["outcome"]', "by outcome"]),
}


@pytest.mark.parametrize("tile", list(WORKBOOK_TILES))
def test_the_workbook_has_a_tile(tile: str) -> None:
    metric, fragments = WORKBOOK_TILES[tile]
    workbook = json.loads((BICEP_DIR / "modules" / "workbook.json").read_text())
    (item,) = [item for item in workbook["items"] if item["name"] == tile]
    query = item["content"]["query"]
    assert f'name == "{metric}"' in query
    assert all(fragment in query for fragment in fragments), query
    assert item["content"]["timeContextFromParameter"] == "TimeRange"
    assert "{TimeRange:grain}" in query
