# Portal workbook: runs by state over time, fire lag percentiles, top failing jobs, dead
# letters, notifications by outcome and kind, deadline misses and queue wait p95 by pool, event
# triggers by outcome. workbook.json is the same file as infra/bicep/modules/workbook.json (a
# test checks).

resource "azurerm_application_insights_workbook" "this" {
  # Workbook names are GUIDs: derive one from the resource group and environment, as Bicep does.
  name                = uuidv5(local.role_assignment_namespace, join("-", [data.azurerm_resource_group.this.id, "ml-scheduler-workbook-${var.environment_name}"]))
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  display_name = "ML scheduler (${var.environment_name})"
  category     = "workbook"
  source_id    = lower(azurerm_application_insights.this.id)
  data_json    = replace(file("${path.module}/workbook.json"), "__SERVICE_BUS_NAMESPACE_ID__", azurerm_servicebus_namespace.this.id)
}
