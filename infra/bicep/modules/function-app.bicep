// The Function App on the Flex Consumption plan: Python 3.11 on Linux, HTTPS only, TLS 1.2+,
// FTP and basic publishing credentials off, running as the user-assigned identity. The
// deployment package container is read with that identity too: no storage key anywhere.

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Blob container URL Flex Consumption deploys the app package to.')
param deploymentContainerUrl string

@description('Memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('App settings (name to value).')
param appSettings object

@description('More app settings as name/value pairs, for names built from a list (the notification secrets\' Key Vault references): an object\'s keys cannot come from a list without lambdas, which checkov\'s parser does not read.')
param extraAppSettings array = []

@description('Put App Service Authentication (Entra ID) in front of the HTTP API.')
param enableEntraAuth bool

@description('Client id of the Entra ID app registration of the API.')
param entraClientId string

@description('Entra ID tenant that issues the tokens.')
param entraTenantId string

@description('Audiences accepted besides the client id and api://<client id>.')
param entraAllowedAudiences array

var namedAppSettings = [for setting in items(appSettings): {
  name: setting.key
  value: setting.value
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy of a Flex Consumption plan depends on the region; enable it per region (docs/deployment.md) rather than fail deployments where it is not offered.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The HTTP API is called by the Studio platform over the internet; callers are authenticated by function keys or App Service Authentication. Private access needs VNet integration (see docs/deployment.md).
  // checkov:skip=CKV_AZURE_212: Flex Consumption adds and removes instances by itself; there is no minimum worker count to set.
  // checkov:skip=CKV_AZURE_17: Callers authenticate with function keys or Entra ID tokens; client certificates would need every caller to hold one.
  // checkov:skip=CKV_AZURE_213: Flex Consumption manages instance health itself; /api/health serves external probes, and the no-tick alert watches the scheduler.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat(namedAppSettings, extraAppSettings)
    }
  }
}

// Basic-auth publishing (FTP and SCM) stays off: code is published with an Entra ID token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

// App Service Authentication validates bearer tokens for the API (no login flow, so no client
// secret); the health probe stays anonymous, and so does the Event Grid webhook of the
// blob_created function, which Event Grid calls without a token (the Functions host requires
// the eventgrid_extension system key there, which Event Grid fetches itself). Both spellings:
// the Functions docs write EventGrid, the host accepts either.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (enableEntraAuth) {
  // checkov reads every Microsoft.Web/sites/config as the site's web config; this one is
  // authsettingsV2, where the settings below do not exist (the site itself passes them).
  // checkov:skip=CKV_AZURE_13: Not a web config: this resource IS the App Service Authentication setting.
  // checkov:skip=CKV_AZURE_63: Not a web config (authsettingsV2); HTTP logging is not set here.
  // checkov:skip=CKV_AZURE_65: Not a web config (authsettingsV2); detailed error messages are not set here.
  // checkov:skip=CKV_AZURE_66: Not a web config (authsettingsV2); failed request tracing is not set here.
  // checkov:skip=CKV_AZURE_80: Not a web config (authsettingsV2); the app runs Python, not .NET.
  // checkov:skip=CKV_AZURE_88: Not a web config (authsettingsV2); Azure Files mounts are not set here.
  // checkov:skip=CKV_AZURE_222: Not a web config (authsettingsV2); public network access is set on the site (see its skip).
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/health'
        '/runtime/webhooks/EventGrid'
        '/runtime/webhooks/eventgrid'
      ]
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: union([
            entraClientId
            'api://${entraClientId}'
          ], entraAllowedAudiences)
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
