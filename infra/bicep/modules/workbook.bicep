// Portal workbook: runs by state over time, fire lag percentiles, top failing jobs, dead
// letters, notifications by outcome and kind, deadline misses and queue wait p95 by pool, event
// triggers by outcome. workbook.json is shared word for word with infra/terraform (a test checks).

@description('Display name of the workbook.')
param displayName string

@description('Seed of the workbook name (workbook names are GUIDs).')
param nameSeed string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object = {}

@description('Resource id of the Application Insights component the workbook reads.')
param applicationInsightsId string

@description('Resource id of the Service Bus namespace (dead-letter metric chart).')
param serviceBusNamespaceId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, nameSeed)
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: applicationInsightsId
    serializedData: replace(loadTextContent('workbook.json'), '__SERVICE_BUS_NAMESPACE_ID__', serviceBusNamespaceId)
  }
}

output id string = workbook.id
