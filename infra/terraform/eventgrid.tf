# File arrival triggers: one Event Grid system topic per watched storage account and the
# subscription that delivers its BlobCreated events to the Function App's Event Grid-triggered
# function (blob_created, functions/events.py). No key anywhere: Event Grid validates and calls
# an AzureFunction endpoint by its resource id, and dead-letters with the topic's own identity.
# infra/bicep/modules/eventgrid.bicep deploys the same (tests/infra checks).

locals {
  blob_created_function_name = "blob_created"

  # The blob APIs whose BlobCreated event announces a complete blob; the function ignores the
  # others (e.g. CreateFile on Data Lake), so Event Grid need not deliver them.
  created_blob_apis = ["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"]

  # The app's own containers in its account: host leases and timer status blobs, keys, the code
  # package, and the dead-letter container (delivering those would loop a failing event).
  app_blob_containers = [
    "azure-webjobs-hosts",
    "azure-webjobs-secrets",
    local.deployment_container_name,
    local.dead_letter_container_name,
  ]

  event_grid_subject_prefix = "/blobServices/default/containers/"

  # Watched accounts by name (names are global, so they key the topics). A topic must be in the
  # account's region, so a landing account's region is read from the account itself.
  watches_own_storage = length(var.landing_storage_account_ids) == 0
  watched_storage_accounts = local.watches_own_storage ? tomap({
    (local.names.storage) = {
      id       = azurerm_storage_account.this.id
      location = local.location
      own      = true
    }
    }) : tomap({
    for id in var.landing_storage_account_ids : element(split("/", id), 8) => {
      id       = id
      location = data.azapi_resource.landing_storage_account[id].location
      own      = element(split("/", id), 8) == local.names.storage
    }
  })

  dead_letter_container_id = "${azurerm_storage_account.this.id}/blobServices/default/containers/${azurerm_storage_container.dead_letter.name}"

  # Platform metrics of each system topic, keyed as the alertRules of the Bicep module.
  event_grid_alert_rules = {
    "events-dead-lettered" = {
      description = "Event Grid dead-lettered a BlobCreated event for the scheduler (platform metric DeadLetteredCount): its blob started no run. Replay it from the dead-letter container (docs/deployment.md)."
      metric_name = "DeadLetteredCount"
      severity    = 1
    }
    "events-dropped" = {
      description = "Event Grid dropped a BlobCreated event for the scheduler without dead-lettering it (platform metric DroppedEventCount): the dead-letter container was unreachable."
      metric_name = "DroppedEventCount"
      severity    = 1
    }
  }
}

data "azapi_resource" "landing_storage_account" {
  for_each = toset(var.landing_storage_account_ids)

  type        = "Microsoft.Storage/storageAccounts@2023-05-01"
  resource_id = each.value
}

resource "azurerm_eventgrid_system_topic" "storage" {
  for_each = local.watched_storage_accounts

  name                = "${local.names.event_grid_topic}-${each.key}"
  resource_group_name = data.azurerm_resource_group.this.name
  location            = each.value.location
  tags                = var.tags

  # Named source_resource_id from azurerm 5.0 on; providers.tf pins 4.x.
  source_arm_resource_id = each.value.id
  topic_type             = "Microsoft.Storage.StorageAccounts"

  identity {
    type = "SystemAssigned"
  }
}

# Storage Blob Data Contributor on the dead-letter container only: Event Grid writes the events
# it gives up on there with the topic's identity (dead_letter_identity).
resource "azurerm_role_assignment" "event_grid_dead_letter_writer" {
  for_each = azurerm_eventgrid_system_topic.storage

  name               = uuidv5(local.role_assignment_namespace, join("-", [local.dead_letter_container_id, each.value.identity[0].principal_id, "ba92f5b4-2d11-453d-a403-e96b0029c9fe"]))
  scope              = local.dead_letter_container_id
  role_definition_id = "${local.role_definition_prefix}/ba92f5b4-2d11-453d-a403-e96b0029c9fe"
  principal_id       = each.value.identity[0].principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_eventgrid_system_topic_event_subscription" "blob_created" {
  # Event Grid checks at creation that the function exists: only once the code is published.
  for_each = { for key, topic in azurerm_eventgrid_system_topic.storage : key => topic if var.enable_file_arrival_events }

  name                  = "blob-created"
  system_topic          = each.value.name
  resource_group_name   = data.azurerm_resource_group.this.name
  event_delivery_schema = "EventGridSchema"

  azure_function_endpoint {
    function_id                       = "${azapi_resource.function_app.id}/functions/${local.blob_created_function_name}"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }

  included_event_types = ["Microsoft.Storage.BlobCreated"]

  # Event Grid allows 25 filter values per subscription: 4 APIs, at most 4 excluded and at most
  # 17 watched containers.
  advanced_filter {
    string_in {
      key    = "data.api"
      values = local.created_blob_apis
    }

    dynamic "string_begins_with" {
      for_each = length(var.watched_containers) > 0 ? [var.watched_containers] : []
      content {
        key    = "subject"
        values = [for container in string_begins_with.value : "${local.event_grid_subject_prefix}${container}/"]
      }
    }

    dynamic "string_not_begins_with" {
      for_each = local.watched_storage_accounts[each.key].own ? [local.app_blob_containers] : []
      content {
        key    = "subject"
        values = [for container in string_not_begins_with.value : "${local.event_grid_subject_prefix}${container}/"]
      }
    }
  }

  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.this.id
    storage_blob_container_name = azurerm_storage_container.dead_letter.name
  }

  # Event Grid checks the dead-letter destination with the topic's identity.
  depends_on = [azurerm_role_assignment.event_grid_dead_letter_writer]
}

resource "azurerm_monitor_metric_alert" "event_grid" {
  for_each = {
    for pair in setproduct(keys(local.watched_storage_accounts), keys(local.event_grid_alert_rules)) :
    "${pair[1]}-${pair[0]}" => { account = pair[0], rule = local.event_grid_alert_rules[pair[1]] }
  }

  name                = "${local.names.alert_prefix}-${each.key}"
  resource_group_name = data.azurerm_resource_group.this.name
  tags                = var.tags

  description   = each.value.rule.description
  severity      = each.value.rule.severity
  enabled       = true
  scopes        = [azurerm_eventgrid_system_topic.storage[each.value.account].id]
  frequency     = "PT5M"
  window_size   = "PT15M"
  auto_mitigate = true

  criteria {
    metric_namespace = "Microsoft.EventGrid/systemTopics"
    metric_name      = each.value.rule.metric_name
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 0
  }

  action {
    action_group_id = azurerm_monitor_action_group.this.id
  }
}
