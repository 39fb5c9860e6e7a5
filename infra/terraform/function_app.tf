# The Function App on the Flex Consumption plan: Python 3.11 on Linux, HTTPS only, TLS 1.2+,
# FTP and basic publishing credentials off, running as the user-assigned identity. The
# deployment package container is read with that identity too: no storage key anywhere.
# The site is an AzAPI resource with the same ARM body as infra/bicep (see providers.tf).

resource "azurerm_service_plan" "this" {
  # checkov:skip=CKV_AZURE_225: Zone redundancy of a Flex Consumption plan depends on the region; enable it per region (docs/deployment.md) rather than fail deployments where it is not offered.
  # checkov:skip=CKV_AZURE_212: Flex Consumption adds and removes instances by itself; there is no minimum worker count to set.
  name                = local.names.plan
  resource_group_name = data.azurerm_resource_group.this.name
  location            = local.location
  tags                = var.tags

  os_type  = "Linux"
  sku_name = "FC1"
}

resource "azapi_resource" "function_app" {
  type      = "Microsoft.Web/sites@2024-04-01"
  name      = local.names.function_app
  parent_id = data.azurerm_resource_group.this.id
  location  = local.location
  tags      = var.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.this.id]
  }

  body = {
    kind = "functionapp,linux"
    properties = {
      serverFarmId              = azurerm_service_plan.this.id
      httpsOnly                 = true
      publicNetworkAccess       = "Enabled"
      clientCertEnabled         = false
      keyVaultReferenceIdentity = azurerm_user_assigned_identity.this.id
      functionAppConfig = {
        deployment = {
          storage = {
            type  = "blobContainer"
            value = "${azurerm_storage_account.this.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
            authentication = {
              type                           = "UserAssignedIdentity"
              userAssignedIdentityResourceId = azurerm_user_assigned_identity.this.id
            }
          }
        }
        scaleAndConcurrency = {
          instanceMemoryMB     = var.instance_memory_mb
          maximumInstanceCount = var.maximum_instance_count
        }
        runtime = {
          name    = "python"
          version = "3.11"
        }
      }
      siteConfig = {
        minTlsVersion          = "1.2"
        scmMinTlsVersion       = "1.2"
        ftpsState              = "Disabled"
        http20Enabled          = true
        remoteDebuggingEnabled = false
        appSettings            = [for name, value in local.app_settings : { name = name, value = value }]
      }
    }
  }

  response_export_values = ["properties.defaultHostName"]

  # The identity must hold its storage (and, with a key vault, Key Vault) roles before the host
  # starts, or its first start fails to reach storage or resolve the Key Vault references.
  depends_on = [
    azurerm_role_assignment.storage_blob_data_owner,
    azurerm_role_assignment.storage_table_data_contributor,
    azurerm_role_assignment.storage_queue_data_contributor,
    azurerm_role_assignment.service_bus_data_sender,
    azurerm_role_assignment.service_bus_data_receiver,
    azurerm_role_assignment.monitoring_metrics_publisher,
    azurerm_role_assignment.key_vault_secrets_user,
  ]
}

# Basic-auth publishing (FTP and SCM) stays off: code is published with an Entra ID token.
resource "azapi_update_resource" "ftp_publishing" {
  type      = "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01"
  name      = "ftp"
  parent_id = azapi_resource.function_app.id
  body = {
    properties = {
      allow = false
    }
  }
}

resource "azapi_update_resource" "scm_publishing" {
  type      = "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01"
  name      = "scm"
  parent_id = azapi_resource.function_app.id
  body = {
    properties = {
      allow = false
    }
  }
}

# App Service Authentication validates bearer tokens for the API (no login flow, so no client
# secret); the health probe stays anonymous, and so does the Event Grid webhook of the
# blob_created function, which Event Grid calls without a token (the Functions host requires
# the eventgrid_extension system key there, which Event Grid fetches itself). Both spellings:
# the Functions docs write EventGrid, the host accepts either.
resource "azapi_update_resource" "auth_settings" {
  count = var.enable_entra_auth ? 1 : 0

  type      = "Microsoft.Web/sites/config@2024-04-01"
  name      = "authsettingsV2"
  parent_id = azapi_resource.function_app.id
  body = {
    properties = {
      platform = {
        enabled = true
      }
      globalValidation = {
        requireAuthentication       = true
        unauthenticatedClientAction = "Return401"
        excludedPaths               = ["/api/health", "/runtime/webhooks/EventGrid", "/runtime/webhooks/eventgrid"]
      }
      httpSettings = {
        requireHttps = true
      }
      identityProviders = {
        azureActiveDirectory = {
          enabled = true
          registration = {
            clientId     = var.entra_client_id
            openIdIssuer = "https://login.microsoftonline.com/${coalesce(var.entra_tenant_id, data.azurerm_client_config.current.tenant_id)}/v2.0"
          }
          validation = {
            allowedAudiences = distinct(concat([var.entra_client_id, "api://${var.entra_client_id}"], var.entra_allowed_audiences))
          }
        }
      }
      login = {
        tokenStore = {
          enabled = false
        }
      }
    }
  }
}
