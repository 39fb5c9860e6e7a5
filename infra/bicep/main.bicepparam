// Parameters of one environment. Copy this file per environment (dev.bicepparam,
// prod.bicepparam, ...) and deploy with:
//   az deployment group create --resource-group <rg> --template-file main.bicep --parameters main.bicepparam
// No value here is a secret: every connection uses the Function App's managed identity.
using './main.bicep'

param environmentName = 'dev'

// The Databricks workspace URL (the one manual step: add the app's managed identity to this
// workspace as a service principal that may run the jobs; see docs/deployment.md).
param databricksHost = 'https://adb-0000000000000000.0.azuredatabricks.net'
param databricksAuth = 'managed_identity'

// Sizing of the Flex Consumption app.
param instanceMemoryMB = 2048
param maximumInstanceCount = 40

// Service Bus: Standard by default; Premium for isolation and private endpoints.
param serviceBusSku = 'Standard'
param duplicateDetectionWindow = 'PT10M'
param maxDeliveryCount = 10
param lockDuration = 'PT1M'

// API identity: set enableEntraAuth and the app registration to put Entra ID in front.
param enableEntraAuth = false
param entraClientId = ''
param entraAllowedAudiences = []

// File arrival triggers (Event Grid). Publish the code first, then set enableFileArrivalEvents
// to true and deploy again (Event Grid checks that the blob_created function exists). Empty
// landingStorageAccountIds watches this deployment's own storage account.
param enableFileArrivalEvents = false
param landingStorageAccountIds = []
// param landingStorageAccountIds = [
//   '/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Storage/storageAccounts/<landing account>'
// ]
param watchedContainers = []

// Notifications: the names of the signing secrets jobs may use as "secret_ref" (1-40 lowercase
// letters, digits or hyphens each, starting with a letter or digit). Each needs the Key Vault
// secret notification-secret-<name>, set after the deployment (docs/deployment.md); the values
// never go in this file.
param notificationSecretNames = []
// param notificationSecretNames = [
//   'team-a-webhook'
// ]

// Alerts.
param alertEmailReceivers = [
  'ml-platform-oncall@example.com'
]
param fireLagThresholdMs = 60000
param queueWaitAlertMinutes = 30

param tags = {
  application: 'ml-scheduler'
  environment: 'dev'
}
