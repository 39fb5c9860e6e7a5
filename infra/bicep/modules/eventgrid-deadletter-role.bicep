// The role that lets an Event Grid system topic's identity write dead-lettered events into the
// dead-letter container (and nowhere else in the account).

@description('Principal id of the system topic\'s system-assigned identity.')
param principalId string

@description('Name of the storage account that holds the dead-letter container.')
param storageAccountName string

@description('Blob container of dead-lettered events.')
param containerName string

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

// Storage Blob Data Contributor on the dead-letter container only: Event Grid writes the events
// it gives up on there with the topic's identity (deadLetterWithResourceIdentity).
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, principalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: deadLetterContainer
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  }
}
