// Service Bus namespace with the scheduler's queues (launch, poll, notify), all configured
// alike. Entra ID only: SAS (local auth) is disabled, so no connection string with a key exists
// to leak.

@description('Name of the Service Bus namespace.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Namespace tier.')
@allowed([
  'Standard'
  'Premium'
])
param skuName string

@description('Messaging units when the tier is Premium.')
@allowed([
  1
  2
  4
  8
  16
])
param premiumCapacity int

@description('Queue names: launch messages, poll messages and notification deliveries.')
param queueNames array

@description('Duplicate detection window (ISO 8601 duration).')
param duplicateDetectionWindow string

@description('Deliveries before a message is dead-lettered.')
param maxDeliveryCount int

@description('Peek-lock duration (ISO 8601 duration, at most PT5M).')
param lockDuration string

@description('Principal id of the Function App identity that sends and receives.')
param principalId string

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: skuName == 'Premium' ? premiumCapacity : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queues 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [
  for queueName in queueNames: {
    parent: namespace
    name: queueName
    properties: {
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
      maxDeliveryCount: maxDeliveryCount
      lockDuration: lockDuration
      deadLetteringOnMessageExpiration: true
      requiresSession: false
      enablePartitioning: false
    }
  }
]

// Azure Service Bus Data Sender: the tick sends launch messages, launch and poll send poll
// and retry messages, and a run's notifications go to the notify queue (namespace scope: every
// queue).
resource dataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39')
  scope: namespace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39')
  }
}

// Azure Service Bus Data Receiver: the launch, poll and notify queue triggers.
resource dataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')
  scope: namespace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')
  }
}

output id string = namespace.id
output name string = namespace.name
// serviceBusEndpoint is https://<name>.servicebus.<cloud suffix>:443/: keep the host only.
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
