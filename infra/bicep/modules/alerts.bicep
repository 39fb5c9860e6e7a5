// Alert rules and the action group they notify. Log alerts query Application Insights (the
// custom metrics the scheduler emits, named in docs/monitoring.md); the dead-letter metric
// alert watches the Service Bus namespace itself, so it fires even when the app is down.

@description('Prefix of the alert rule names.')
param namePrefix string

@description('Name of the action group.')
param actionGroupName string

@description('Azure region of the log alert rules (that of Application Insights).')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Email addresses notified by the action group.')
param emailReceivers array

@description('Resource id of the Application Insights component.')
param applicationInsightsId string

@description('Resource id of the Service Bus namespace.')
param serviceBusNamespaceId string

@description('Alert when a launch starts more than this many milliseconds after its scheduled time.')
param fireLagThresholdMs int

@description('Alert when the 95th percentile of a pool\'s queue wait over 30 minutes exceeds this many minutes.')
param queueWaitAlertMinutes int

// One entry per log alert. Terraform keeps the same list (infra/terraform/alerts.tf); a test
// compares the two. A rule with an empty measure counts result rows.
var logAlertRules = [
  {
    key: 'function-failures'
    displayName: 'Scheduler: function failures'
    description: 'A function invocation failed (requests with success == false).'
    severity: 1
    query: 'requests | where success == false'
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT5M'
  }
  {
    key: 'runs-failed'
    displayName: 'Scheduler: runs finished FAILED or TIMED_OUT'
    description: 'A run reached FAILED or TIMED_OUT (custom metric scheduler.runs_finished).'
    severity: 2
    query: 'customMetrics | where name == "scheduler.runs_finished" | extend state = tostring(customDimensions["state"]) | where state in ("FAILED", "TIMED_OUT") | project timestamp, failed_runs = valueSum'
    timeAggregation: 'Total'
    metricMeasureColumn: 'failed_runs'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT5M'
  }
  {
    key: 'dead-letters'
    displayName: 'Scheduler: messages dead-lettered'
    description: 'The app recorded a dead-lettered message (custom metric scheduler.dead_letters).'
    severity: 1
    query: 'customMetrics | where name == "scheduler.dead_letters" | project timestamp, dead_letters = valueSum'
    timeAggregation: 'Total'
    metricMeasureColumn: 'dead_letters'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT5M'
  }
  {
    key: 'fire-lag'
    displayName: 'Scheduler: fire lag above threshold'
    description: 'A launch started later than the threshold after its scheduled time (custom metric scheduler.fire_lag_ms, largest value in the window).'
    severity: 2
    query: 'customMetrics | where name == "scheduler.fire_lag_ms" | project timestamp, fire_lag_ms = valueMax'
    timeAggregation: 'Maximum'
    metricMeasureColumn: 'fire_lag_ms'
    operator: 'GreaterThan'
    threshold: fireLagThresholdMs
    windowSize: 'PT5M'
  }
  {
    key: 'runs-given-up'
    displayName: 'Scheduler: runs given up by the watchdog'
    description: 'The watchdog gave up on a run after repeated repairs without progress and ended it (custom metric scheduler.repairs with state given_up).'
    severity: 1
    query: 'customMetrics | where name == "scheduler.repairs" | extend state = tostring(customDimensions["state"]) | where state == "given_up" | project timestamp, given_up_runs = valueSum'
    timeAggregation: 'Total'
    metricMeasureColumn: 'given_up_runs'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT15M'
  }
  {
    key: 'deadline-missed'
    displayName: 'Scheduler: runs missed their deadline'
    description: 'A run was unfinished at its deadline or ended after it (custom metric scheduler.deadline_missed).'
    severity: 2
    query: 'customMetrics | where name == "scheduler.deadline_missed" | project timestamp, deadline_missed = valueSum'
    timeAggregation: 'Total'
    metricMeasureColumn: 'deadline_missed'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT15M'
  }
  {
    key: 'notifications-failed'
    displayName: 'Scheduler: notifications failed'
    description: 'A notification (webhook, Teams, Slack) could not be delivered and was given up (custom metric scheduler.notifications with outcome failed).'
    severity: 2
    query: 'customMetrics | where name == "scheduler.notifications" | extend outcome = tostring(customDimensions["outcome"]) | where outcome == "failed" | project timestamp, failed_notifications = valueSum'
    timeAggregation: 'Total'
    metricMeasureColumn: 'failed_notifications'
    operator: 'GreaterThan'
    threshold: 0
    windowSize: 'PT15M'
  }
  {
    key: 'queue-wait'
    displayName: 'Scheduler: runs wait long for a pool slot'
    description: 'The 95th percentile of a pool\'s queue wait over 30 minutes exceeds the threshold in minutes (custom metric scheduler.queue_wait_ms; percentile of each export interval\'s largest wait, an upper bound).'
    severity: 2
    query: 'customMetrics | where name == "scheduler.queue_wait_ms" | extend pool = tostring(customDimensions["pool"]) | summarize queue_wait_p95_minutes = percentile(valueMax, 95) / 60000.0, timestamp = max(timestamp) by pool'
    timeAggregation: 'Maximum'
    metricMeasureColumn: 'queue_wait_p95_minutes'
    operator: 'GreaterThan'
    threshold: queueWaitAlertMinutes
    windowSize: 'PT30M'
  }
  {
    key: 'no-tick'
    displayName: 'Scheduler: no tick in 5 minutes'
    description: 'The timer tick did not run for 5 minutes (no scheduler.ticks data): nothing is being scheduled.'
    severity: 0
    query: 'customMetrics | where name == "scheduler.ticks" | where valueSum > 0'
    timeAggregation: 'Count'
    metricMeasureColumn: ''
    operator: 'LessThan'
    threshold: 1
    windowSize: 'PT5M'
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'mlscheduler'
    enabled: true
    emailReceivers: [
      for (email, index) in emailReceivers: {
        name: 'email-${index}'
        emailAddress: email
        useCommonAlertSchema: true
      }
    ]
  }
}

resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in logAlertRules: {
    name: '${namePrefix}-${rule.key}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      evaluationFrequency: 'PT5M'
      windowSize: rule.windowSize
      scopes: [
        applicationInsightsId
      ]
      autoMitigate: true
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: rule.timeAggregation
            metricMeasureColumn: empty(rule.metricMeasureColumn) ? null : rule.metricMeasureColumn
            operator: rule.operator
            threshold: rule.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

resource deadLetteredMessages 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-dead-lettered-messages'
  location: 'global'
  tags: tags
  properties: {
    description: 'A Service Bus queue of the scheduler holds dead-lettered messages (platform metric DeadletteredMessages).'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'dead-lettered-messages'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          timeAggregation: 'Average'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

output actionGroupId string = actionGroup.id
