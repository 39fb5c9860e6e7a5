// The ML job scheduler: a Python Function App on the Flex Consumption plan with Table Storage,
// Service Bus, Application Insights, alerts, a workbook and Event Grid system topics for file
// arrival triggers. Every connection uses the app's user-assigned managed identity (Event Grid
// its topics' own identities): the deployment needs no secret and creates no key. Secrets the
// app needs (a Databricks token, notification signing secrets) are Key Vault references to a
// vault the platform team fills in (docs/deployment.md).
//
//   az deployment group create --resource-group <rg> --template-file main.bicep --parameters main.bicepparam
//
// infra/terraform deploys the same resources with the same app settings (tests/infra checks).

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Naming and placement
// ---------------------------------------------------------------------------------------------

@description('Short environment name used in every resource name: 2-9 lowercase letters or digits, starting with a letter (e.g. dev, prod).')
@minLength(2)
@maxLength(9)
param environmentName string

@description('Azure region of the resources. Flex Consumption must be available there.')
param location string = resourceGroup().location

@description('Tags added to every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------
// Function App
// ---------------------------------------------------------------------------------------------

@description('Memory of each Flex Consumption instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the Function App scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Put App Service Authentication (Entra ID) in front of the HTTP API; AUTH_MODE becomes app_service (function_key otherwise).')
param enableEntraAuth bool = false

@description('Client id of the API\'s Entra ID app registration (required when enableEntraAuth is true).')
param entraClientId string = ''

@description('Entra ID tenant that issues the API tokens.')
param entraTenantId string = tenant().tenantId

@description('Token audiences accepted besides the client id and api://<client id>.')
param entraAllowedAudiences array = []

@description('App role that sees and changes every tenant\'s jobs (ADMIN_ROLE).')
param adminRole string = 'Scheduler.Admin'

@description('Prefix of the app roles that name a tenant, e.g. Scheduler.Tenant.team-a (TENANT_ROLE_PREFIX).')
param tenantRolePrefix string = 'Scheduler.Tenant.'

@description('Largest request body the API accepts, in bytes (MAX_BODY_BYTES).')
@minValue(1024)
@maxValue(1048576)
param maxBodyBytes int = 32768

@description('Largest body POST /api/batches accepts (up to 1,000 points), in bytes (MAX_BATCH_BODY_BYTES).')
@minValue(1024)
@maxValue(4194304)
param maxBatchBodyBytes int = 1048576

// ---------------------------------------------------------------------------------------------
// Scheduler behaviour
// ---------------------------------------------------------------------------------------------

@description('How far ahead of now the tick reads the due index, in seconds (TICK_LOOKAHEAD_SECONDS).')
@minValue(0)
@maxValue(600)
param tickLookaheadSeconds int = 75

@description('Occurrences the tick records and sends at once (TICK_CONCURRENCY).')
@minValue(1)
@maxValue(64)
param tickConcurrency int = 16

@description('Partitions of the runs table; each holds its jobs\' runs, due rows and watch hints. A job keeps the shard it was created in, so changing this moves no existing job (RUN_SHARDS).')
@minValue(1)
@maxValue(100)
param runShards int = 16

@description('First poll delay after a launch, in seconds (POLL_INITIAL_SECONDS).')
@minValue(1)
param pollInitialSeconds int = 15

@description('Longest delay between polls, in seconds; not below pollInitialSeconds (POLL_MAX_SECONDS).')
@minValue(1)
param pollMaxSeconds int = 300

@description('How long after it is due a message counts as lost, in seconds; also the base of the backoff between the watchdog\'s repairs (WATCHDOG_GRACE_SECONDS).')
@minValue(10)
@maxValue(3600)
param watchdogGraceSeconds int = 120

@description('How often the watchdog checks with Databricks a RUNNING run that no poll has ended, in seconds; not below watchdogGraceSeconds (RUN_CHECK_SECONDS).')
@minValue(60)
@maxValue(86400)
param runCheckSeconds int = 3600

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Table of job definitions (JOBS_TABLE).')
param jobsTable string = 'jobs'

@description('Table of runs (RUNS_TABLE).')
param runsTable string = 'runs'

// ---------------------------------------------------------------------------------------------
// File arrival triggers (Event Grid)
// ---------------------------------------------------------------------------------------------

@description('Create the Event Grid subscriptions that deliver BlobCreated events to the blob_created function. Event Grid checks at creation that the function exists: leave false until the code is published, then deploy again with true.')
param enableFileArrivalEvents bool = false

@description('Resource ids of the storage accounts whose new blobs start file arrival triggers, one system topic each; same Azure subscription as the deployment. Empty watches the deployment\'s own storage account.')
param landingStorageAccountIds array = []

@description('Containers whose new blobs are delivered (at most 17); empty delivers every container. The app\'s own containers are never delivered.')
@maxLength(17)
param watchedContainers array = []

// ---------------------------------------------------------------------------------------------
// Service Bus
// ---------------------------------------------------------------------------------------------

@description('Service Bus tier.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Messaging units when serviceBusSku is Premium.')
@allowed([
  1
  2
  4
  8
  16
])
param serviceBusPremiumCapacity int = 1

@description('Queue of launch messages (LaunchQueueName).')
param launchQueueName string = 'launch'

@description('Queue of poll messages (PollQueueName).')
param pollQueueName string = 'poll'

@description('Queue of notification deliveries (NotifyQueueName).')
param notifyQueueName string = 'notify'

@description('Duplicate detection window of the queues (ISO 8601 duration, 20 seconds to 7 days).')
param duplicateDetectionWindow string = 'PT10M'

@description('Deliveries of a message before Service Bus dead-letters it.')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int = 10

@description('Peek-lock duration of the queues (ISO 8601 duration, at most PT5M); the Functions host renews it while a handler runs.')
param lockDuration string = 'PT1M'

// ---------------------------------------------------------------------------------------------
// Databricks
// ---------------------------------------------------------------------------------------------

@description('Workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net (DATABRICKS_HOST).')
param databricksHost string

@description('How the app authenticates to Databricks (DATABRICKS_AUTH): managed_identity (default, no secret) or token (a token kept in Key Vault).')
@allowed([
  'managed_identity'
  'token'
])
param databricksAuth string = 'managed_identity'

@description('Name of the Key Vault secret that holds the Databricks token (token mode only).')
param databricksTokenSecretName string = 'databricks-token'

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

// Bicep cannot check each name (typed arrays and lambdas are beyond pycep, checkov's parser):
// infra/terraform validates the same list, and tests/infra checks the parameter files.
@description('Names of the notification signing secrets, each 1-40 lowercase letters, digits or hyphens, starting with a letter or digit. Each name n becomes the app setting NOTIFICATION_SECRET_<N> (upper case, hyphens as underscores), a Key Vault reference to the secret notification-secret-<n> in the scheduler\'s key vault, which the platform team sets (docs/deployment.md). A job\'s destination names it as "secret_ref": "<n>".')
param notificationSecretNames array = []

@description('How long a notification destination may take to answer, in seconds (NOTIFICATION_TIMEOUT_SECONDS).')
@minValue(1)
@maxValue(60)
param notificationTimeoutSeconds int = 10

@description('Public address of the web console for the links in notifications (CONSOLE_URL); empty uses https://<the app\'s host name>/console.')
param consoleUrl string = ''

// ---------------------------------------------------------------------------------------------
// Monitoring
// ---------------------------------------------------------------------------------------------

@description('Days Log Analytics keeps the logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Email addresses the alerts notify.')
param alertEmailReceivers array = []

@description('Alert when a launch starts more than this many milliseconds after its scheduled time.')
@minValue(1000)
param fireLagThresholdMs int = 60000

@description('Alert when the 95th percentile of a pool\'s queue wait (scheduler.queue_wait_ms) over 30 minutes exceeds this many minutes.')
@minValue(1)
@maxValue(1440)
param queueWaitAlertMinutes int = 30

// ---------------------------------------------------------------------------------------------
// Names: {abbreviation}-{environmentName}-{resourceToken}. Storage account and key vault names
// allow no hyphens (and at most 24 characters), so theirs drop them.
// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var names = {
  identity: 'id-${environmentName}-${resourceToken}'
  storage: 'st${environmentName}${resourceToken}'
  serviceBus: 'sb-${environmentName}-${resourceToken}'
  logAnalytics: 'log-${environmentName}-${resourceToken}'
  applicationInsights: 'appi-${environmentName}-${resourceToken}'
  plan: 'plan-${environmentName}-${resourceToken}'
  functionApp: 'func-${environmentName}-${resourceToken}'
  keyVault: 'kv${environmentName}${resourceToken}'
  actionGroup: 'ag-${environmentName}-${resourceToken}'
  alertPrefix: 'alert-${environmentName}-${resourceToken}'
  eventGridTopic: 'evgt-${environmentName}-${resourceToken}'
}
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'
var useDatabricksToken = databricksAuth == 'token'
// The key vault exists when a Key Vault reference needs it: token mode or a notification secret.
var useKeyVault = useDatabricksToken || !empty(notificationSecretNames)

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    tableNames: [
      jobsTable
      runsTable
    ]
    principalId: identity.outputs.principalId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: names.serviceBus
    location: location
    tags: tags
    skuName: serviceBusSku
    premiumCapacity: serviceBusPremiumCapacity
    queueNames: [
      launchQueueName
      pollQueueName
      notifyQueueName
    ]
    duplicateDetectionWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    principalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = if (useKeyVault) {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

// ---------------------------------------------------------------------------------------------
// App settings. The scheduler's own settings are the aliases of shared.config.Settings; the
// host settings make the Functions runtime, the Service Bus triggers and Application Insights
// use the identity. tests/infra/test_infra_settings_parity.py keeps these, infra/terraform and
// local.settings.sample.json in step with the settings model.
// ---------------------------------------------------------------------------------------------

var hostAppSettings = {
  AzureWebJobsStorage__accountName: storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identity.outputs.clientId
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
}

var schedulerAppSettings = {
  TABLES_ENDPOINT: storage.outputs.tableEndpoint
  JOBS_TABLE: jobsTable
  RUNS_TABLE: runsTable
  RUN_SHARDS: string(runShards)
  AZURE_CLIENT_ID: identity.outputs.clientId
  ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  LaunchQueueName: launchQueueName
  PollQueueName: pollQueueName
  NotifyQueueName: notifyQueueName
  TICK_LOOKAHEAD_SECONDS: string(tickLookaheadSeconds)
  TICK_CONCURRENCY: string(tickConcurrency)
  WATCHDOG_GRACE_SECONDS: string(watchdogGraceSeconds)
  RUN_CHECK_SECONDS: string(max(runCheckSeconds, watchdogGraceSeconds))
  DATABRICKS_HOST: databricksHost
  DATABRICKS_AUTH: databricksAuth
  POLL_INITIAL_SECONDS: string(pollInitialSeconds)
  POLL_MAX_SECONDS: string(max(pollMaxSeconds, pollInitialSeconds))
  AUTH_MODE: enableEntraAuth ? 'app_service' : 'function_key'
  ADMIN_ROLE: adminRole
  TENANT_ROLE_PREFIX: tenantRolePrefix
  // Read only when AUTH_MODE is development (never in Azure); set so Azure matches the model.
  DEV_TENANT: 'dev'
  MAX_BODY_BYTES: string(maxBodyBytes)
  MAX_BATCH_BODY_BYTES: string(maxBatchBodyBytes)
  NOTIFICATION_TIMEOUT_SECONDS: string(notificationTimeoutSeconds)
  CONSOLE_URL: consoleUrl
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
}

// Token mode only: the Databricks SDK reads DATABRICKS_TOKEN; the platform resolves the Key
// Vault reference with the identity (keyVaultReferenceIdentity on the site).
var databricksTokenAppSettings = {
  DATABRICKS_TOKEN: '@Microsoft.KeyVault(VaultName=${names.keyVault};SecretName=${databricksTokenSecretName})'
}

var appSettings = union(hostAppSettings, schedulerAppSettings, useDatabricksToken ? databricksTokenAppSettings : {})

// One signing secret per name in notificationSecretNames: NOTIFICATION_SECRET_<NAME> is a Key
// Vault reference to notification-secret-<name>, resolved like DATABRICKS_TOKEN. A list of
// name/value pairs, not an object: its keys come from a list, which needs toObject() and a
// lambda, and pycep (checkov's Bicep parser) reads neither. The site appends it to appSettings.
var notificationSecretAppSettings = [for secretName in notificationSecretNames: {
  name: 'NOTIFICATION_SECRET_${toUpper(replace(secretName, '-', '_'))}'
  value: '@Microsoft.KeyVault(VaultName=${names.keyVault};SecretName=notification-secret-${secretName})'
}]

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: appSettings
    extraAppSettings: notificationSecretAppSettings
    enableEntraAuth: enableEntraAuth
    entraClientId: entraClientId
    entraTenantId: entraTenantId
    entraAllowedAudiences: entraAllowedAudiences
  }
  // The Key Vault references must resolve on first start (the other modules are implicit
  // dependencies through their outputs).
  dependsOn: [
    keyVault
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: names.alertPrefix
    actionGroupName: names.actionGroup
    location: location
    tags: tags
    emailReceivers: alertEmailReceivers
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    serviceBusNamespaceId: serviceBus.outputs.id
    fireLagThresholdMs: fireLagThresholdMs
    queueWaitAlertMinutes: queueWaitAlertMinutes
  }
}

// ---------------------------------------------------------------------------------------------
// File arrival triggers: one Event Grid system topic per watched storage account, delivering
// BlobCreated events to the blob_created function (functions/events.py). A topic must be in the
// account's region, so a landing account's region is read from the account itself.
// ---------------------------------------------------------------------------------------------

var blobCreatedFunctionName = 'blob_created'
// The blob APIs whose BlobCreated event announces a complete blob; the function ignores the
// others (e.g. CreateFile on Data Lake), so Event Grid need not deliver them.
var createdBlobApis = [
  'PutBlob'
  'PutBlockList'
  'CopyBlob'
  'FlushWithClose'
]
// The app's own containers in its account: host leases and timer status blobs, keys, the code
// package, and the dead-letter container (delivering those would loop a failing event).
var appBlobContainers = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
  deploymentContainerName
  deadLetterContainerName
]
var ownStorageAccountId = resourceId('Microsoft.Storage/storageAccounts', names.storage)
var watchesOwnStorage = empty(landingStorageAccountIds)
var watchedStorageAccountIds = watchesOwnStorage ? [ownStorageAccountId] : landingStorageAccountIds

resource landingStorageAccounts 'Microsoft.Storage/storageAccounts@2023-05-01' existing = [
  for accountId in landingStorageAccountIds: {
    name: last(split(accountId, '/'))
    scope: resourceGroup(split(accountId, '/')[2], split(accountId, '/')[4])
  }
]

module eventGrid 'modules/eventgrid.bicep' = [
  for (accountId, index) in watchedStorageAccountIds: {
    name: 'eventgrid-${uniqueString(accountId)}'
    params: {
      systemTopicName: '${names.eventGridTopic}-${last(split(accountId, '/'))}'
      // if() evaluates only the branch it takes: the own account needs no lookup.
      location: watchesOwnStorage ? location : landingStorageAccounts[index].location
      tags: tags
      sourceStorageAccountId: accountId
      functionAppId: functionApp.outputs.id
      functionName: blobCreatedFunctionName
      createSubscription: enableFileArrivalEvents
      createdBlobApis: createdBlobApis
      watchedContainers: watchedContainers
      excludedContainers: (toLower(accountId) == toLower(ownStorageAccountId)) ? appBlobContainers : []
      deadLetterStorageAccountName: storage.outputs.name
      deadLetterContainerName: storage.outputs.deadLetterContainerName
      alertNamePrefix: names.alertPrefix
      actionGroupId: alerts.outputs.actionGroupId
    }
  }
]

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    displayName: 'ML scheduler (${environmentName})'
    nameSeed: 'ml-scheduler-workbook-${environmentName}'
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    serviceBusNamespaceId: serviceBus.outputs.id
  }
}

// Outputs in upper snake case; infra/terraform has the same outputs in lower snake case.
output RESOURCE_GROUP string = resourceGroup().name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = 'https://${functionApp.outputs.defaultHostName}'
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output STORAGE_ACCOUNT_NAME string = storage.outputs.name
output TABLES_ENDPOINT string = storage.outputs.tableEndpoint
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
output KEY_VAULT_NAME string = useKeyVault ? names.keyVault : ''
output WORKBOOK_ID string = workbook.outputs.id
output EVENT_GRID_SYSTEM_TOPIC_NAMES array = [for (accountId, index) in watchedStorageAccountIds: eventGrid[index].outputs.name]
