# Key Vault for the Databricks token and the notification signing secrets, deployed only when
# one is used (databricks_auth is "token", or notification_secret_names is not empty). RBAC
# mode, soft delete and purge protection; Terraform creates no secret: the platform team stores
# them (docs/deployment.md), and the app reads them through Key Vault references.

resource "azurerm_key_vault" "this" {
  # checkov:skip=CKV_AZURE_109: Key Vault references resolve from the Function App's outbound addresses, which a vault firewall cannot allow without VNet integration; access is RBAC only.
  # checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: the app has no private network path to the vault without VNet integration.
  # checkov:skip=CKV2_AZURE_32: Private endpoints need VNet integration of the Function App, which this deployment leaves to the platform team's network design.
  count = local.use_key_vault ? 1 : 0

  name                = local.names.key_vault
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  soft_delete_retention_days    = 90
  purge_protection_enabled      = true
  public_network_access_enabled = true

  network_acls {
    bypass         = "AzureServices"
    default_action = "Allow"
  }
}

resource "azurerm_monitor_diagnostic_setting" "key_vault_audit" {
  count = local.use_key_vault ? 1 : 0

  name                       = "audit-to-log-analytics"
  target_resource_id         = azurerm_key_vault.this[0].id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category_group = "audit"
  }
}

# Key Vault Secrets User: resolve the Key Vault references (DATABRICKS_TOKEN and the
# NOTIFICATION_SECRET_* settings).
resource "azurerm_role_assignment" "key_vault_secrets_user" {
  count = local.use_key_vault ? 1 : 0

  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_key_vault.this[0].id, local.principal_id, "4633458b-17de-408a-b874-0445c86b69e6"]))
  scope              = azurerm_key_vault.this[0].id
  role_definition_id = "${local.role_definition_prefix}/4633458b-17de-408a-b874-0445c86b69e6"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}
