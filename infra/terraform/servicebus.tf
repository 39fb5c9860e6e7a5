# Service Bus namespace with the scheduler's queues (launch, poll, notify), all configured
# alike. Entra ID only: SAS (local auth) is disabled, so no connection string with a key exists
# to leak.

resource "azurerm_servicebus_namespace" "this" {
  # checkov:skip=CKV_AZURE_199: Double encryption needs Premium and customer-managed keys; messages carry run ids, not data.
  # checkov:skip=CKV_AZURE_201: Customer-managed keys need Premium and a key life-cycle the scheduler does not own.
  # checkov:skip=CKV_AZURE_202: A namespace identity only serves customer-managed keys; the namespace calls nothing.
  # checkov:skip=CKV_AZURE_204: The Function App reaches the namespace over its public endpoint without VNet integration; access is Entra ID only (local auth off). Private endpoints need Premium and VNet integration.
  name                = local.names.service_bus
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  sku                           = var.service_bus_sku
  capacity                      = var.service_bus_sku == "Premium" ? var.service_bus_premium_capacity : 0
  premium_messaging_partitions  = var.service_bus_sku == "Premium" ? 1 : 0
  local_auth_enabled            = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = true
}

resource "azurerm_servicebus_queue" "this" {
  for_each = toset([var.launch_queue_name, var.poll_queue_name, var.notify_queue_name])

  name         = each.value
  namespace_id = azurerm_servicebus_namespace.this.id

  requires_duplicate_detection            = true
  duplicate_detection_history_time_window = var.duplicate_detection_window
  max_delivery_count                      = var.max_delivery_count
  lock_duration                           = var.lock_duration
  dead_lettering_on_message_expiration    = true
  requires_session                        = false
  partitioning_enabled                    = false
}

locals {
  # endpoint is https://<name>.servicebus.<cloud suffix>:443/: keep the host only.
  service_bus_fqdn = split(":", trimprefix(azurerm_servicebus_namespace.this.endpoint, "https://"))[0]
}

# Azure Service Bus Data Sender: the tick sends launch messages, launch and poll send poll
# and retry messages, and a run's notifications go to the notify queue (namespace scope: every
# queue).
resource "azurerm_role_assignment" "service_bus_data_sender" {
  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_servicebus_namespace.this.id, local.principal_id, "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"]))
  scope              = azurerm_servicebus_namespace.this.id
  role_definition_id = "${local.role_definition_prefix}/69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}

# Azure Service Bus Data Receiver: the launch, poll and notify queue triggers.
resource "azurerm_role_assignment" "service_bus_data_receiver" {
  name               = uuidv5(local.role_assignment_namespace, join("-", [azurerm_servicebus_namespace.this.id, local.principal_id, "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"]))
  scope              = azurerm_servicebus_namespace.this.id
  role_definition_id = "${local.role_definition_prefix}/4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
  principal_id       = local.principal_id
  principal_type     = "ServicePrincipal"
}
