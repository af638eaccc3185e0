"""The virtual router: DHCP, DNS, metadata and passwords for one guest network.

:mod:`hvcloud.router.api` is the contract the agent drives (no wire objects, no concrete driver);
the runtime that implements it on a Linux host lives beside it and runs each router in a network
namespace, so the same configuration code can later run inside a small Linux system VM.
"""
