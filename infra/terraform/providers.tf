terraform {
  required_version = ">= 1.9.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.42"
    }
    # The Function App, its tables and its site policies go through AzAPI: the ARM body is the
    # same as in infra/bicep. azurerm_function_app_flex_consumption injects an
    # AzureWebJobsStorage connection string with an empty key when the host storage uses a
    # managed identity (hashicorp/terraform-provider-azurerm#29693), which stops the host.
    azapi = {
      source  = "Azure/azapi"
      version = "~> 2.5"
    }
  }

  # State backend: configure per environment, e.g. with -backend-config (docs/deployment.md).
  # backend "azurerm" {}
}

provider "azurerm" {
  features {
    storage {
      # Shared keys are off: manage the account through Resource Manager only (containers by
      # storage_account_id, tables through AzAPI), so the deploying identity needs no
      # data-plane role and no key.
      data_plane_available = false
    }
    key_vault {
      # Purge protection is on: a destroyed vault stays soft-deleted for its retention period.
      purge_soft_delete_on_destroy = false
    }
  }

  subscription_id = var.subscription_id
  # Any data-plane call the provider still makes uses Entra ID, never an account key.
  storage_use_azuread = true
}

provider "azapi" {
  subscription_id = var.subscription_id
}
