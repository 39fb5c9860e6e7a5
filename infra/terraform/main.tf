# The ML job scheduler: a Python Function App on the Flex Consumption plan with Table Storage,
# Service Bus, Application Insights, alerts, a workbook and Event Grid system topics for file
# arrival triggers. Every connection uses the app's user-assigned managed identity (Event Grid
# its topics' own identities): the deployment needs no secret and creates no key. Secrets the
# app needs (a Databricks token, notification signing secrets) are Key Vault references to a
# vault the platform team fills in (docs/deployment.md).
#
# infra/bicep deploys the same resources with the same app settings (tests/infra checks).

data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

locals {
  location = coalesce(var.location, data.azurerm_resource_group.this.location)

  # Names: {abbreviation}-{environment_name}-{resource_token}, as in Bicep. The token is a
  # deterministic hash of the subscription, resource group, environment and region (Bicep uses
  # uniqueString over the same inputs), so names match the Bicep ones in pattern, not in the
  # exact suffix. Storage account and key vault names allow no hyphens.
  resource_token = substr(sha256(join("/", [
    data.azurerm_client_config.current.subscription_id,
    data.azurerm_resource_group.this.id,
    var.environment_name,
    local.location,
  ])), 0, 13)

  names = {
    identity             = "id-${var.environment_name}-${local.resource_token}"
    storage              = "st${var.environment_name}${local.resource_token}"
    service_bus          = "sb-${var.environment_name}-${local.resource_token}"
    log_analytics        = "log-${var.environment_name}-${local.resource_token}"
    application_insights = "appi-${var.environment_name}-${local.resource_token}"
    plan                 = "plan-${var.environment_name}-${local.resource_token}"
    function_app         = "func-${var.environment_name}-${local.resource_token}"
    key_vault            = "kv${var.environment_name}${local.resource_token}"
    action_group         = "ag-${var.environment_name}-${local.resource_token}"
    alert_prefix         = "alert-${var.environment_name}-${local.resource_token}"
    event_grid_topic     = "evgt-${var.environment_name}-${local.resource_token}"
  }

  deployment_container_name  = "app-package"
  dead_letter_container_name = "eventgrid-deadletter"
  use_databricks_token       = var.databricks_auth == "token"
  principal_id               = azurerm_user_assigned_identity.this.principal_id
  client_id                  = azurerm_user_assigned_identity.this.client_id

  # The key vault exists when a Key Vault reference needs it: token mode or a notification secret.
  use_key_vault = local.use_databricks_token || length(var.notification_secret_names) > 0

  # Role assignment names follow Bicep's guid(scope, principal, role): a UUID v5 in the
  # namespace Bicep's guid() uses, over the arguments joined with "-".
  role_assignment_namespace = "11fb06fb-712d-4ddd-98c7-e71bbd588830"
  role_definition_prefix    = "/subscriptions/${data.azurerm_client_config.current.subscription_id}/providers/Microsoft.Authorization/roleDefinitions"

  # -----------------------------------------------------------------------------------------
  # App settings. The scheduler's own settings are the aliases of shared.config.Settings; the
  # host settings make the Functions runtime, the Service Bus triggers and Application
  # Insights use the identity. tests/infra/test_infra_settings_parity.py keeps these, infra/bicep
  # and local.settings.sample.json in step with the settings model.
  # -----------------------------------------------------------------------------------------
  host_app_settings = {
    AzureWebJobsStorage__accountName          = azurerm_storage_account.this.name
    AzureWebJobsStorage__credential           = "managedidentity"
    AzureWebJobsStorage__clientId             = local.client_id
    ServiceBusConnection__credential          = "managedidentity"
    ServiceBusConnection__clientId            = local.client_id
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${local.client_id};Authorization=AAD"
  }

  scheduler_app_settings = {
    TABLES_ENDPOINT                               = azurerm_storage_account.this.primary_table_endpoint
    JOBS_TABLE                                    = var.jobs_table
    RUNS_TABLE                                    = var.runs_table
    RUN_SHARDS                                    = tostring(var.run_shards)
    AZURE_CLIENT_ID                               = local.client_id
    ServiceBusConnection__fullyQualifiedNamespace = local.service_bus_fqdn
    LaunchQueueName                               = var.launch_queue_name
    PollQueueName                                 = var.poll_queue_name
    NotifyQueueName                               = var.notify_queue_name
    TICK_LOOKAHEAD_SECONDS                        = tostring(var.tick_lookahead_seconds)
    TICK_CONCURRENCY                              = tostring(var.tick_concurrency)
    WATCHDOG_GRACE_SECONDS                        = tostring(var.watchdog_grace_seconds)
    RUN_CHECK_SECONDS                             = tostring(max(var.run_check_seconds, var.watchdog_grace_seconds))
    DATABRICKS_HOST                               = var.databricks_host
    DATABRICKS_AUTH                               = var.databricks_auth
    POLL_INITIAL_SECONDS                          = tostring(var.poll_initial_seconds)
    POLL_MAX_SECONDS                              = tostring(max(var.poll_max_seconds, var.poll_initial_seconds))
    AUTH_MODE                                     = var.enable_entra_auth ? "app_service" : "function_key"
    ADMIN_ROLE                                    = var.admin_role
    TENANT_ROLE_PREFIX                            = var.tenant_role_prefix
    # Read only when AUTH_MODE is development (never in Azure); set so Azure matches the model.
    DEV_TENANT                            = "dev"
    MAX_BODY_BYTES                        = tostring(var.max_body_bytes)
    MAX_BATCH_BODY_BYTES                  = tostring(var.max_batch_body_bytes)
    NOTIFICATION_TIMEOUT_SECONDS          = tostring(var.notification_timeout_seconds)
    CONSOLE_URL                           = var.console_url
    APPLICATIONINSIGHTS_CONNECTION_STRING = azurerm_application_insights.this.connection_string
  }

  # Token mode only: the Databricks SDK reads DATABRICKS_TOKEN; the platform resolves the Key
  # Vault reference with the identity (keyVaultReferenceIdentity on the site).
  databricks_token_app_settings = {
    DATABRICKS_TOKEN = "@Microsoft.KeyVault(VaultName=${local.names.key_vault};SecretName=${var.databricks_token_secret_name})"
  }

  # One signing secret per name in notification_secret_names: NOTIFICATION_SECRET_<NAME> is a
  # Key Vault reference to notification-secret-<name>, resolved like DATABRICKS_TOKEN.
  notification_secret_app_settings = {
    for secret_name in var.notification_secret_names :
    "NOTIFICATION_SECRET_${upper(replace(secret_name, "-", "_"))}" => "@Microsoft.KeyVault(VaultName=${local.names.key_vault};SecretName=notification-secret-${secret_name})"
  }

  app_settings = merge(
    local.host_app_settings,
    local.scheduler_app_settings,
    local.use_databricks_token ? local.databricks_token_app_settings : {},
    local.notification_secret_app_settings,
  )
}

resource "azurerm_user_assigned_identity" "this" {
  name                = local.names.identity
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags
}
