# Alert rules and the action group they notify. Log alerts query Application Insights (the
# custom metrics the scheduler emits, named in docs/monitoring.md); the dead-letter metric
# alert watches the Service Bus namespace itself, so it fires even when the app is down.

locals {
  # One entry per log alert, keyed as in infra/bicep/modules/alerts.bicep; a test compares
  # the two. A rule with an empty measure counts result rows.
  log_alert_rules = {
    "function-failures" = {
      display_name          = "Scheduler: function failures"
      description           = "A function invocation failed (requests with success == false)."
      severity              = 1
      query                 = "requests | where success == false"
      time_aggregation      = "Count"
      metric_measure_column = ""
      operator              = "GreaterThan"
      threshold             = 0
      window_duration       = "PT5M"
    }
    "runs-failed" = {
      display_name          = "Scheduler: runs finished FAILED or TIMED_OUT"
      description           = "A run reached FAILED or TIMED_OUT (custom metric scheduler.runs_finished)."
      severity              = 2
      query                 = "customMetrics | where name == \"scheduler.runs_finished\" | extend state = tostring(customDimensions[\"state\"]) | where state in (\"FAILED\", \"TIMED_OUT\") | project timestamp, failed_runs = valueSum"
      time_aggregation      = "Total"
      metric_measure_column = "failed_runs"
      operator              = "GreaterThan"
      threshold             = 0
      window_duration       = "PT5M"
    }
    "dead-letters" = {
      display_name          = "Scheduler: messages dead-lettered"
      description           = "The app recorded a dead-lettered message (custom metric scheduler.dead_letters)."
      severity              = 1
      query                 = "customMetrics | where name == \"scheduler.dead_letters\" | project timestamp, dead_letters = valueSum"
      time_aggregation      = "Total"
      metric_measure_column = "dead_letters"
      operator              = "GreaterThan"
      threshold             = 0
      window_duration       = "PT5M"
    }
    "fire-lag" = {
      display_name          = "Scheduler: fire lag above threshold"
      description           = "A launch started later than the threshold after its scheduled time (custom metric scheduler.fire_lag_ms, largest value in the window)."
      severity              = 2
      query                 = "customMetrics | where name == \"scheduler.fire_lag_ms\" | project timestamp, fire_lag_ms = valueMax"
      time_aggregation      = "Maximum"
      metric_measure_column = "fire_lag_ms"
      operator              = "GreaterThan"
      threshold             = var.fire_lag_threshold_ms
      window_duration       = "PT5M"
    }
    "runs-given-up" = {
      display_name          = "Scheduler: runs given up by the watchdog"
      description           = "The watchdog gave up on a run after repeated repairs without progress and ended it (custom metric scheduler.repairs with state given_up)."
      severity              = 1
      query                 = "customMetrics | where name == \"scheduler.repairs\" | extend state = tostring(customDimensions[\"state\"]) | where state == \"given_up\" | project timestamp, given_up_runs = valueSum"
      time_aggregation      = "Total"
      metric_measure_column = "given_up_runs"
      operator              = "GreaterThan"
      threshold             = 0
      window_duration       = "PT15M"
    }
    "deadline-missed" = {
      display_name          = "Scheduler: runs missed their deadline"
      description           = "A run was unfinished at its deadline or ended after it (custom metric scheduler.deadline_missed)."
      severity              = 2
      query                 = "customMetrics | where name == \"scheduler.deadline_missed\" | project timestamp, deadline_missed = valueSum"
      time_aggregation      = "Total"
      metric_measure_column = "deadline_missed"
      operator              = "GreaterThan"
      threshold             = 0
      window_duration       = "PT15M"
    }
    "notifications-failed" = {
      display_name          = "Scheduler: notifications failed"
      description           = "A notification (webhook, Teams, Slack) could not be delivered and was given up (custom metric scheduler.notifications with outcome failed)."
      severity              = 2
      query                 = "customMetrics | where name == \"scheduler.notifications\" | extend outcome = tostring(customDimensions[\"outcome\"]) | where outcome == \"failed\" | project timestamp, failed_notifications = valueSum"
      time_aggregation      = "Total"
      metric_measure_column = "failed_notifications"
      operator              = "GreaterThan"
      threshold             = 0
      window_duration       = "PT15M"
    }
    "queue-wait" = {
      display_name          = "Scheduler: runs wait long for a pool slot"
      description           = "The 95th percentile of a pool's queue wait over 30 minutes exceeds the threshold in minutes (custom metric scheduler.queue_wait_ms; percentile of each export interval's largest wait, an upper bound)."
      severity              = 2
      query                 = "customMetrics | where name == \"scheduler.queue_wait_ms\" | extend pool = tostring(customDimensions[\"pool\"]) | summarize queue_wait_p95_minutes = percentile(valueMax, 95) / 60000.0, timestamp = max(timestamp) by pool"
      time_aggregation      = "Maximum"
      metric_measure_column = "queue_wait_p95_minutes"
      operator              = "GreaterThan"
      threshold             = var.queue_wait_alert_minutes
      window_duration       = "PT30M"
    }
    "no-tick" = {
      display_name          = "Scheduler: no tick in 5 minutes"
      description           = "The timer tick did not run for 5 minutes (no scheduler.ticks data): nothing is being scheduled."
      severity              = 0
      query                 = "customMetrics | where name == \"scheduler.ticks\" | where valueSum > 0"
      time_aggregation      = "Count"
      metric_measure_column = ""
      operator              = "LessThan"
      threshold             = 1
      window_duration       = "PT5M"
    }
  }
}

resource "azurerm_monitor_action_group" "this" {
  name                = local.names.action_group
  resource_group_name = data.azurerm_resource_group.this.name
  location            = "global"
  short_name          = "mlscheduler"
  enabled             = true
  tags                = var.tags

  dynamic "email_receiver" {
    for_each = { for index, email in var.alert_email_receivers : index => email }
    content {
      name                    = "email-${email_receiver.key}"
      email_address           = email_receiver.value
      use_common_alert_schema = true
    }
  }
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "this" {
  for_each = local.log_alert_rules

  name                = "${local.names.alert_prefix}-${each.key}"
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  display_name         = each.value.display_name
  description          = each.value.description
  severity             = each.value.severity
  enabled              = true
  evaluation_frequency = "PT5M"
  window_duration      = each.value.window_duration
  scopes               = [azurerm_application_insights.this.id]

  auto_mitigation_enabled = true

  criteria {
    query                   = each.value.query
    time_aggregation_method = each.value.time_aggregation
    metric_measure_column   = each.value.metric_measure_column == "" ? null : each.value.metric_measure_column
    operator                = each.value.operator
    threshold               = each.value.threshold

    failing_periods {
      number_of_evaluation_periods             = 1
      minimum_failing_periods_to_trigger_alert = 1
    }
  }

  action {
    action_groups = [azurerm_monitor_action_group.this.id]
  }
}

resource "azurerm_monitor_metric_alert" "dead_lettered_messages" {
  name                = "${local.names.alert_prefix}-dead-lettered-messages"
  resource_group_name = data.azurerm_resource_group.this.name
  tags                = var.tags

  description   = "A Service Bus queue of the scheduler holds dead-lettered messages (platform metric DeadletteredMessages)."
  severity      = 1
  enabled       = true
  scopes        = [azurerm_servicebus_namespace.this.id]
  frequency     = "PT1M"
  window_size   = "PT5M"
  auto_mitigate = true

  criteria {
    metric_namespace = "Microsoft.ServiceBus/namespaces"
    metric_name      = "DeadletteredMessages"
    aggregation      = "Average"
    operator         = "GreaterThan"
    threshold        = 0

    dimension {
      name     = "EntityName"
      operator = "Include"
      values   = ["*"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.this.id
  }
}
