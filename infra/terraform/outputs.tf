# The same outputs as infra/bicep/main.bicep, in lower snake case.

output "resource_group" {
  description = "Resource group of the deployment."
  value       = data.azurerm_resource_group.this.name
}

output "function_app_name" {
  description = "Name of the Function App (publish the code to it)."
  value       = azapi_resource.function_app.name
}

output "function_app_url" {
  description = "Base URL of the HTTP API."
  value       = "https://${azapi_resource.function_app.output.properties.defaultHostName}"
}

output "managed_identity_client_id" {
  description = "Client id of the app's user-assigned identity (AZURE_CLIENT_ID)."
  value       = azurerm_user_assigned_identity.this.client_id
}

output "managed_identity_principal_id" {
  description = "Object (principal) id of the app's identity: add it to the Databricks workspace."
  value       = azurerm_user_assigned_identity.this.principal_id
}

output "storage_account_name" {
  description = "Name of the storage account."
  value       = azurerm_storage_account.this.name
}

output "tables_endpoint" {
  description = "Table endpoint the app uses (TABLES_ENDPOINT)."
  value       = azurerm_storage_account.this.primary_table_endpoint
}

output "service_bus_namespace" {
  description = "Fully qualified Service Bus namespace (ServiceBusConnection__fullyQualifiedNamespace)."
  value       = local.service_bus_fqdn
}

output "application_insights_name" {
  description = "Name of the Application Insights component."
  value       = azurerm_application_insights.this.name
}

output "log_analytics_workspace_name" {
  description = "Name of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.name
}

output "key_vault_name" {
  description = "Name of the key vault holding the Databricks token and the notification signing secrets (empty unless databricks_auth is token or notification_secret_names is set)."
  value       = local.use_key_vault ? azurerm_key_vault.this[0].name : ""
}

output "workbook_id" {
  description = "Resource id of the workbook."
  value       = azurerm_application_insights_workbook.this.id
}

output "event_grid_system_topic_names" {
  description = "Event Grid system topics of the watched storage accounts (file arrival triggers)."
  value       = [for topic in azurerm_eventgrid_system_topic.storage : topic.name]
}
