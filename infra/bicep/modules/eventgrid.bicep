// File arrival triggers: an Event Grid system topic on one storage account and the subscription
// that delivers its BlobCreated events to the Function App's Event Grid-triggered function
// (blob_created, functions/events.py). No key anywhere: Event Grid validates and calls an
// AzureFunction endpoint by its resource id, and dead-letters with the topic's own identity.
// main.bicep deploys this module once per watched account; infra/terraform/eventgrid.tf does
// the same (tests/infra checks).

@description('Name of the system topic.')
param systemTopicName string

@description('Region of the system topic: that of the watched storage account.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Resource id of the storage account whose blob events the topic publishes.')
param sourceStorageAccountId string

@description('Resource id of the Function App.')
param functionAppId string

@description('Event Grid-triggered function that receives the events.')
param functionName string

@description('Create the event subscription. Event Grid checks at creation that the function exists, so this stays false until the code is published.')
param createSubscription bool

@description('Blob APIs whose BlobCreated events announce a complete blob (the function counts only these).')
param createdBlobApis array

@description('Containers whose blobs start runs; empty means every container of the account.')
@maxLength(17)
param watchedContainers array

@description('Containers never delivered (the app\'s own containers when the account is the app\'s own).')
param excludedContainers array

@description('Name of the storage account that receives dead-lettered events (the app\'s).')
param deadLetterStorageAccountName string

@description('Blob container of dead-lettered events.')
param deadLetterContainerName string

@description('Prefix of the alert rule names.')
param alertNamePrefix string

@description('Action group the alerts notify.')
param actionGroupId string

var subjectPrefix = '/blobServices/default/containers/'
// Top-level loops: Bicep cannot compile a for-expression inside an operator.
var watchedSubjects = [for container in watchedContainers: '${subjectPrefix}${container}/']
var excludedSubjects = [for container in excludedContainers: '${subjectPrefix}${container}/']

// Event Grid allows 25 filter values per subscription: 4 APIs, at most 4 excluded and at most
// 17 watched containers.
var apiFilter = [
  {
    operatorType: 'StringIn'
    key: 'data.api'
    values: createdBlobApis
  }
]
var containerFilter = empty(watchedContainers) ? [] : [
  {
    operatorType: 'StringBeginsWith'
    key: 'subject'
    values: watchedSubjects
  }
]
var exclusionFilter = empty(excludedContainers) ? [] : [
  {
    operatorType: 'StringNotBeginsWith'
    key: 'subject'
    values: excludedSubjects
  }
]

// Platform metrics of the system topic; terraform keeps the same list (event_grid_alert_rules).
var alertRules = [
  {
    key: 'events-dead-lettered'
    description: 'Event Grid dead-lettered a BlobCreated event for the scheduler (platform metric DeadLetteredCount): its blob started no run. Replay it from the dead-letter container (docs/deployment.md).'
    metricName: 'DeadLetteredCount'
    severity: 1
  }
  {
    key: 'events-dropped'
    description: 'Event Grid dropped a BlobCreated event for the scheduler without dead-lettering it (platform metric DroppedEventCount): the dead-letter container was unreachable.'
    metricName: 'DroppedEventCount'
    severity: 1
  }
]

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: sourceStorageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource deadLetterStorageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: deadLetterStorageAccountName
}

// The topic's identity may write to the dead-letter container (a module, so that its principal
// id is a parameter there and the assignment is named guid(scope, principal, role)).
module deadLetterWriter 'eventgrid-deadletter-role.bicep' = {
  name: 'evgt-dead-letter-role-${uniqueString(systemTopic.id)}'
  params: {
    principalId: systemTopic.identity.principalId
    storageAccountName: deadLetterStorageAccountName
    containerName: deadLetterContainerName
  }
}

resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (createSubscription) {
  parent: systemTopic
  name: 'blob-created'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      advancedFilters: concat(apiFilter, containerFilter, exclusionFilter)
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccount.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  // Event Grid checks the dead-letter destination with the topic's identity.
  dependsOn: [
    deadLetterWriter
  ]
}

resource alerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [
  for rule in alertRules: {
    name: '${alertNamePrefix}-${rule.key}-${last(split(sourceStorageAccountId, '/'))}'
    location: 'global'
    tags: tags
    properties: {
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        systemTopic.id
      ]
      evaluationFrequency: 'PT5M'
      windowSize: 'PT15M'
      autoMitigate: true
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
        allOf: [
          {
            name: rule.metricName
            criterionType: 'StaticThresholdCriterion'
            metricNamespace: 'Microsoft.EventGrid/systemTopics'
            metricName: rule.metricName
            timeAggregation: 'Total'
            operator: 'GreaterThan'
            threshold: 0
          }
        ]
      }
      actions: [
        {
          actionGroupId: actionGroupId
        }
      ]
    }
  }
]

output id string = systemTopic.id
output name string = systemTopic.name
output principalId string = systemTopic.identity.principalId
