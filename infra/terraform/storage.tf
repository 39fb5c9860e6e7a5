# Storage account: host storage for the Functions runtime, the Flex Consumption deployment
# package container, the container of dead-lettered Event Grid events, and the scheduler's
# tables. Entra ID only: shared keys are disabled.

resource "azurerm_storage_account" "this" {
  # checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches the account over its public endpoint; access is Entra ID only (shared key off). Deny by default needs VNet integration and private endpoints (see docs/deployment.md).
  # checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the app has no private network path without VNet integration.
  # checkov:skip=CKV2_AZURE_33: Private endpoints need VNet integration of the Function App, which this deployment leaves to the platform team's network design.
  # checkov:skip=CKV_AZURE_206: Replication is the storage_sku variable (default Standard_ZRS, zone-redundant in the region); geo-replication is a per-environment choice.
  # checkov:skip=CKV2_AZURE_1: Microsoft-managed keys; customer-managed keys need a key life-cycle the scheduler does not own, and the Bicep deployment makes the same choice.
  # checkov:skip=CKV_AZURE_33: Queue logging is classic Storage Analytics, configured with the account key, which is disabled; the scheduler uses Service Bus, not storage queues.
  name                = local.names.storage
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  account_kind             = "StorageV2"
  account_tier             = split("_", var.storage_sku)[0]
  account_replication_type = split("_", var.storage_sku)[1]
  access_tier              = "Hot"

  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  allow_nested_items_to_be_public   = false
  cross_tenant_replication_enabled  = false
  local_user_enabled                = false
  sftp_enabled                      = false
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  infrastructure_encryption_enabled = true
  public_network_access_enabled     = true

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices"]
  }

  sas_policy {
    expiration_period = "0.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_container" "deployment" {
  # checkov:skip=CKV2_AZURE_21: The check wants Log Analytics storage insights, which reads the account with its key; shared-key access is disabled.
  name                  = local.deployment_container_name
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "dead_letter" {
  # checkov:skip=CKV2_AZURE_21: The check wants Log Analytics storage insights, which reads the account with its key; shared-key access is disabled.
  name                  = local.dead_letter_container_name
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

# Tables through the management plane (AzAPI), so the deploying identity needs no data-plane
# role on the account.
resource "azapi_resource" "table" {
  for_each = toset([var.jobs_table, var.runs_table])

  type      = "Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01"
  name      = each.value
  parent_id = "${azurerm_storage_account.this.id}/tableServices/default"
  body      = {}
}

# Storage Blob Data Owner: the Functions host keeps its leases and keys in blobs, and Flex
# Consumption reads the deployment package with this identity.
resource "azurerm_role_assignment" "storage_blob_data_owner" {
  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_storage_account.this.id, local.principal_id, "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"]))
  scope              = azurerm_storage_account.this.id
  role_definition_id = "${local.role_definition_prefix}/b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# Storage Table Data Contributor: the scheduler's jobs and runs tables.
resource "azurerm_role_assignment" "storage_table_data_contributor" {
  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_storage_account.this.id, local.principal_id, "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"]))
  scope              = azurerm_storage_account.this.id
  role_definition_id = "${local.role_definition_prefix}/0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# Storage Queue Data Contributor: the Functions host uses storage queues internally
# (e.g. for blob trigger receipts and diagnostics), not the scheduler.
resource "azurerm_role_assignment" "storage_queue_data_contributor" {
  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_storage_account.this.id, local.principal_id, "974c5e8b-45b9-4653-ba55-5f855dd0fb88"]))
  scope              = azurerm_storage_account.this.id
  role_definition_id = "${local.role_definition_prefix}/974c5e8b-45b9-4653-ba55-5f855dd0fb88"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}
