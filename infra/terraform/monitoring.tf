# Log Analytics workspace and workspace-based Application Insights. Local (instrumentation
# key) ingestion is disabled: telemetry must be sent with an Entra ID token of the app's
# identity, which holds Monitoring Metrics Publisher on the component.

resource "azurerm_log_analytics_workspace" "this" {
  name                = local.names.log_analytics
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  sku               = "PerGB2018"
  retention_in_days = var.log_retention_in_days
}

resource "azurerm_application_insights" "this" {
  name                = local.names.application_insights
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  application_type              = "web"
  workspace_id                  = azurerm_log_analytics_workspace.this.id
  local_authentication_disabled = true
  internet_ingestion_enabled    = true
  internet_query_enabled        = true
}

# Monitoring Metrics Publisher: Entra ID ingestion of the app's traces, logs and metrics.
resource "azurerm_role_assignment" "monitoring_metrics_publisher" {
  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_application_insights.this.id, local.principal_id, "3913510d-42f4-4e42-8a64-420c390055eb"]))
  scope              = azurerm_application_insights.this.id
  role_definition_id = "${local.role_definition_prefix}/3913510d-42f4-4e42-8a64-420c390055eb"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}
