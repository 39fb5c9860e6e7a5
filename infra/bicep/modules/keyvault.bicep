// Key Vault for the Databricks token and the notification signing secrets, deployed only when
// one is used (DATABRICKS_AUTH is 'token', or notificationSecretNames is not empty). RBAC mode,
// soft delete and purge protection; the template creates no secret: the platform team stores
// them (docs/deployment.md), and the app reads them through Key Vault references.

@description('Name of the key vault (3-24 characters).')
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Principal id of the Function App identity that reads the secrets.')
param principalId string

@description('Log Analytics workspace that receives the vault audit logs.')
param logAnalyticsId string

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Key Vault references resolve from the Function App's outbound addresses, which a vault firewall cannot allow without VNet integration; access is RBAC only.
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: the app has no private network path to the vault without VNet integration.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: keyVault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

// Key Vault Secrets User: resolve the Key Vault references (DATABRICKS_TOKEN and the
// NOTIFICATION_SECRET_* settings).
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, '4633458b-17de-408a-b874-0445c86b69e6')
  scope: keyVault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
  }
}

output id string = keyVault.id
output name string = keyVault.name
output uri string = keyVault.properties.vaultUri
