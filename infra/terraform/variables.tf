# Inputs. Each matches a parameter of infra/bicep/main.bicep (camelCase there, snake_case
# here); tests/infra checks the two lists stay in step.

# -------------------------------------------------------------------------------------------
# Placement and naming
# -------------------------------------------------------------------------------------------

variable "subscription_id" {
  description = "Subscription to deploy to. Null uses ARM_SUBSCRIPTION_ID from the environment."
  type        = string
  default     = null
}

variable "resource_group_name" {
  description = "Existing resource group to deploy into (as az deployment group create does for Bicep)."
  type        = string
}

variable "environment_name" {
  description = "Short environment name used in every resource name: 2-9 lowercase letters or digits, starting with a letter (e.g. dev, prod)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,8}$", var.environment_name))
    error_message = "environment_name must be 2-9 lowercase letters or digits and start with a letter."
  }
}

variable "location" {
  description = "Azure region of the resources. Null uses the resource group's region. Flex Consumption must be available there."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# -------------------------------------------------------------------------------------------
# Function App
# -------------------------------------------------------------------------------------------

variable "instance_memory_mb" {
  description = "Memory of each Flex Consumption instance in MB."
  type        = number
  default     = 2048

  validation {
    condition     = contains([512, 2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 512, 2048 or 4096."
  }
}

variable "maximum_instance_count" {
  description = "Most instances the Function App scales out to."
  type        = number
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000
    error_message = "maximum_instance_count must be between 1 and 1000."
  }
}

variable "enable_entra_auth" {
  description = "Put App Service Authentication (Entra ID) in front of the HTTP API; AUTH_MODE becomes app_service (function_key otherwise)."
  type        = bool
  default     = false
}

variable "entra_client_id" {
  description = "Client id of the API's Entra ID app registration (required when enable_entra_auth is true)."
  type        = string
  default     = ""

  validation {
    condition     = !var.enable_entra_auth || can(regex("^[0-9a-fA-F-]{36}$", var.entra_client_id))
    error_message = "entra_client_id must be the app registration's client id (a GUID) when enable_entra_auth is true."
  }
}

variable "entra_tenant_id" {
  description = "Entra ID tenant that issues the API tokens. Null uses the tenant of the deploying identity."
  type        = string
  default     = null
}

variable "entra_allowed_audiences" {
  description = "Token audiences accepted besides the client id and api://<client id>."
  type        = list(string)
  default     = []
}

variable "admin_role" {
  description = "App role that sees and changes every tenant's jobs (ADMIN_ROLE)."
  type        = string
  default     = "Scheduler.Admin"
}

variable "tenant_role_prefix" {
  description = "Prefix of the app roles that name a tenant, e.g. Scheduler.Tenant.team-a (TENANT_ROLE_PREFIX)."
  type        = string
  default     = "Scheduler.Tenant."
}

variable "max_body_bytes" {
  description = "Largest request body the API accepts, in bytes (MAX_BODY_BYTES)."
  type        = number
  default     = 32768

  validation {
    condition     = var.max_body_bytes >= 1024 && var.max_body_bytes <= 1048576
    error_message = "max_body_bytes must be between 1024 and 1048576."
  }
}

variable "max_batch_body_bytes" {
  description = "Largest body POST /api/batches accepts (up to 1,000 points), in bytes (MAX_BATCH_BODY_BYTES)."
  type        = number
  default     = 1048576

  validation {
    condition     = var.max_batch_body_bytes >= 1024 && var.max_batch_body_bytes <= 4194304
    error_message = "max_batch_body_bytes must be between 1024 and 4194304."
  }
}

# -------------------------------------------------------------------------------------------
# Scheduler behaviour
# -------------------------------------------------------------------------------------------

variable "tick_lookahead_seconds" {
  description = "How far ahead of now the tick reads the due index, in seconds (TICK_LOOKAHEAD_SECONDS)."
  type        = number
  default     = 75

  validation {
    condition     = var.tick_lookahead_seconds >= 0 && var.tick_lookahead_seconds <= 600
    error_message = "tick_lookahead_seconds must be between 0 and 600."
  }
}

variable "tick_concurrency" {
  description = "Occurrences the tick records and sends at once (TICK_CONCURRENCY)."
  type        = number
  default     = 16

  validation {
    condition     = var.tick_concurrency >= 1 && var.tick_concurrency <= 64
    error_message = "tick_concurrency must be between 1 and 64."
  }
}

variable "run_shards" {
  description = "Partitions of the runs table; each holds its jobs' runs, due rows and watch hints. A job keeps the shard it was created in, so changing this moves no existing job (RUN_SHARDS)."
  type        = number
  default     = 16

  validation {
    condition     = var.run_shards >= 1 && var.run_shards <= 100
    error_message = "run_shards must be between 1 and 100."
  }
}

variable "poll_initial_seconds" {
  description = "First poll delay after a launch, in seconds (POLL_INITIAL_SECONDS)."
  type        = number
  default     = 15

  validation {
    condition     = var.poll_initial_seconds >= 1
    error_message = "poll_initial_seconds must be at least 1."
  }
}

variable "poll_max_seconds" {
  description = "Longest delay between polls, in seconds; not below poll_initial_seconds (POLL_MAX_SECONDS)."
  type        = number
  default     = 300

  validation {
    condition     = var.poll_max_seconds >= var.poll_initial_seconds
    error_message = "poll_max_seconds must be at least poll_initial_seconds."
  }
}

variable "watchdog_grace_seconds" {
  description = "How long after it is due a message counts as lost, in seconds; also the base of the backoff between the watchdog's repairs (WATCHDOG_GRACE_SECONDS)."
  type        = number
  default     = 120

  validation {
    condition     = var.watchdog_grace_seconds >= 10 && var.watchdog_grace_seconds <= 3600
    error_message = "watchdog_grace_seconds must be between 10 and 3600."
  }
}

variable "run_check_seconds" {
  description = "How often the watchdog checks with Databricks a RUNNING run that no poll has ended, in seconds; not below watchdog_grace_seconds (RUN_CHECK_SECONDS)."
  type        = number
  default     = 3600

  validation {
    condition     = var.run_check_seconds >= 60 && var.run_check_seconds <= 86400
    error_message = "run_check_seconds must be between 60 and 86400."
  }

  validation {
    condition     = var.run_check_seconds >= var.watchdog_grace_seconds
    error_message = "run_check_seconds must be at least watchdog_grace_seconds."
  }
}

# -------------------------------------------------------------------------------------------
# Storage
# -------------------------------------------------------------------------------------------

variable "storage_sku" {
  description = "Replication of the storage account."
  type        = string
  default     = "Standard_ZRS"

  validation {
    condition     = contains(["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_GZRS", "Standard_RAGRS", "Standard_RAGZRS"], var.storage_sku)
    error_message = "storage_sku must be one of Standard_LRS, Standard_ZRS, Standard_GRS, Standard_GZRS, Standard_RAGRS, Standard_RAGZRS."
  }
}

variable "jobs_table" {
  description = "Table of job definitions (JOBS_TABLE)."
  type        = string
  default     = "jobs"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9]{2,62}$", var.jobs_table))
    error_message = "jobs_table must be a valid table name (3-63 letters or digits, starting with a letter)."
  }
}

variable "runs_table" {
  description = "Table of runs (RUNS_TABLE)."
  type        = string
  default     = "runs"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9]{2,62}$", var.runs_table))
    error_message = "runs_table must be a valid table name (3-63 letters or digits, starting with a letter)."
  }
}

# -------------------------------------------------------------------------------------------
# File arrival triggers (Event Grid)
# -------------------------------------------------------------------------------------------

variable "enable_file_arrival_events" {
  description = "Create the Event Grid subscriptions that deliver BlobCreated events to the blob_created function. Event Grid checks at creation that the function exists: leave false until the code is published, then apply again with true."
  type        = bool
  default     = false
}

variable "landing_storage_account_ids" {
  description = "Resource ids of the storage accounts whose new blobs start file arrival triggers, one system topic each; same Azure subscription as the deployment. Empty watches the deployment's own storage account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.landing_storage_account_ids : can(regex("^/(?i:subscriptions)/[^/]+/(?i:resourceGroups)/[^/]+/(?i:providers/Microsoft\\.Storage/storageAccounts)/[a-z0-9]{3,24}$", id))])
    error_message = "landing_storage_account_ids must hold storage account resource ids, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Storage/storageAccounts/<name>."
  }

  validation {
    condition     = length(distinct([for id in var.landing_storage_account_ids : lower(id)])) == length(var.landing_storage_account_ids)
    error_message = "landing_storage_account_ids must not name an account twice."
  }
}

variable "watched_containers" {
  description = "Containers whose new blobs are delivered (at most 17); empty delivers every container. The app's own containers are never delivered."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.watched_containers) <= 17
    error_message = "watched_containers holds at most 17 names: Event Grid allows 25 filter values per subscription, and the blob API and app container filters take 8."
  }

  validation {
    condition     = alltrue([for name in var.watched_containers : length(name) >= 3 && length(name) <= 63 && can(regex("^[a-z0-9]+(-[a-z0-9]+)*$", name))])
    error_message = "watched_containers must hold container names: 3-63 lowercase letters, digits or single hyphens, starting and ending with a letter or digit."
  }
}

# -------------------------------------------------------------------------------------------
# Service Bus
# -------------------------------------------------------------------------------------------

variable "service_bus_sku" {
  description = "Service Bus tier."
  type        = string
  default     = "Standard"

  validation {
    condition     = contains(["Standard", "Premium"], var.service_bus_sku)
    error_message = "service_bus_sku must be Standard or Premium."
  }
}

variable "service_bus_premium_capacity" {
  description = "Messaging units when service_bus_sku is Premium."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2, 4, 8, 16], var.service_bus_premium_capacity)
    error_message = "service_bus_premium_capacity must be 1, 2, 4, 8 or 16."
  }
}

variable "launch_queue_name" {
  description = "Queue of launch messages (LaunchQueueName)."
  type        = string
  default     = "launch"
}

variable "poll_queue_name" {
  description = "Queue of poll messages (PollQueueName)."
  type        = string
  default     = "poll"
}

variable "notify_queue_name" {
  description = "Queue of notification deliveries (NotifyQueueName)."
  type        = string
  default     = "notify"
}

variable "duplicate_detection_window" {
  description = "Duplicate detection window of the queues (ISO 8601 duration, 20 seconds to 7 days)."
  type        = string
  default     = "PT10M"

  validation {
    condition     = can(regex("^P(\\d+D)?(T(\\d+H)?(\\d+M)?(\\d+S)?)?$", var.duplicate_detection_window))
    error_message = "duplicate_detection_window must be an ISO 8601 duration such as PT10M."
  }
}

variable "max_delivery_count" {
  description = "Deliveries of a message before Service Bus dead-letters it."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_count >= 1 && var.max_delivery_count <= 2000
    error_message = "max_delivery_count must be between 1 and 2000."
  }
}

variable "lock_duration" {
  description = "Peek-lock duration of the queues (ISO 8601 duration, at most PT5M); the Functions host renews it while a handler runs."
  type        = string
  default     = "PT1M"

  validation {
    condition     = can(regex("^PT(\\d+M)?(\\d+S)?$", var.lock_duration))
    error_message = "lock_duration must be an ISO 8601 duration of at most five minutes, such as PT1M."
  }
}

# -------------------------------------------------------------------------------------------
# Databricks
# -------------------------------------------------------------------------------------------

variable "databricks_host" {
  description = "Workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net (DATABRICKS_HOST)."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+/?$", var.databricks_host))
    error_message = "databricks_host must be the workspace URL, https://<host>."
  }
}

variable "databricks_auth" {
  description = "How the app authenticates to Databricks (DATABRICKS_AUTH): managed_identity (default, no secret) or token (a token kept in Key Vault)."
  type        = string
  default     = "managed_identity"

  validation {
    condition     = contains(["managed_identity", "token"], var.databricks_auth)
    error_message = "databricks_auth must be managed_identity or token."
  }
}

variable "databricks_token_secret_name" {
  description = "Name of the Key Vault secret that holds the Databricks token (token mode only)."
  type        = string
  default     = "databricks-token"
}

# -------------------------------------------------------------------------------------------
# Notifications
# -------------------------------------------------------------------------------------------

variable "notification_secret_names" {
  description = "Names of the notification signing secrets, each 1-40 lowercase letters, digits or hyphens, starting with a letter or digit. Each name n becomes the app setting NOTIFICATION_SECRET_<N> (upper case, hyphens as underscores), a Key Vault reference to the secret notification-secret-<n> in the scheduler's key vault, which the platform team sets (docs/deployment.md). A job's destination names it as \"secret_ref\": \"<n>\"."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.notification_secret_names : can(regex("^[a-z0-9][a-z0-9-]{0,39}$", name))])
    error_message = "notification_secret_names must hold names of 1-40 lowercase letters, digits or hyphens, starting with a letter or digit (the secret_ref of a job's destination)."
  }

  validation {
    condition     = length(distinct(var.notification_secret_names)) == length(var.notification_secret_names)
    error_message = "notification_secret_names must not name a secret twice."
  }
}

variable "notification_timeout_seconds" {
  description = "How long a notification destination may take to answer, in seconds (NOTIFICATION_TIMEOUT_SECONDS)."
  type        = number
  default     = 10

  validation {
    condition     = var.notification_timeout_seconds >= 1 && var.notification_timeout_seconds <= 60
    error_message = "notification_timeout_seconds must be between 1 and 60."
  }
}

variable "console_url" {
  description = "Public address of the web console for the links in notifications (CONSOLE_URL); empty uses https://<the app's host name>/console."
  type        = string
  default     = ""

  validation {
    condition     = var.console_url == "" || can(regex("^https://[^/]+", var.console_url))
    error_message = "console_url must be empty or an https:// address."
  }
}

# -------------------------------------------------------------------------------------------
# Monitoring
# -------------------------------------------------------------------------------------------

variable "log_retention_in_days" {
  description = "Days Log Analytics keeps the logs."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_in_days >= 30 && var.log_retention_in_days <= 730
    error_message = "log_retention_in_days must be between 30 and 730."
  }
}

variable "alert_email_receivers" {
  description = "Email addresses the alerts notify."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.alert_email_receivers : can(regex("^[^@\\s]+@[^@\\s]+$", email))])
    error_message = "alert_email_receivers must hold email addresses."
  }
}

variable "fire_lag_threshold_ms" {
  description = "Alert when a launch starts more than this many milliseconds after its scheduled time."
  type        = number
  default     = 60000

  validation {
    condition     = var.fire_lag_threshold_ms >= 1000
    error_message = "fire_lag_threshold_ms must be at least 1000."
  }
}

variable "queue_wait_alert_minutes" {
  description = "Alert when the 95th percentile of a pool's queue wait (scheduler.queue_wait_ms) over 30 minutes exceeds this many minutes."
  type        = number
  default     = 30

  validation {
    condition     = var.queue_wait_alert_minutes >= 1 && var.queue_wait_alert_minutes <= 1440
    error_message = "queue_wait_alert_minutes must be between 1 and 1440."
  }
}
