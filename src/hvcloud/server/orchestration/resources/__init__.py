"""The resource manager: zones, pods, clusters, hosts, primary storage pools and image stores.

CloudStack's ResourceManager and StorageManager in small modules. The API commands parse and check
their parameters, then call one function here, which reads and changes the rows in the caller's
transaction (or, for host discovery, decides where that transaction ends) and raises the API's
errors for conflicts (a duplicate name, a zone that still holds pods). The async commands' jobs
are registered here too.
"""
