"""Guest networks: the zone's physical networks, network offerings, networks, their addresses and
NICs, and the virtual routers that serve them (see docs/networking.md)."""
