"""guest networks: physical networks and their traffic types, service providers and virtual router
elements, network offerings, networks with their segment ids, address ranges, NICs (every VM's NIC
copied from vm_instance) and virtual routers

Revision ID: 0010_networks
Revises: 0009_resource_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_networks'
down_revision = '0009_resource_limits'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_offering',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('unique_name', sa.String(length=255), nullable=True),
    sa.Column('display_text', sa.String(length=255), nullable=False),
    sa.Column('guest_ip_type', sa.String(length=32), nullable=False),
    sa.Column('traffic_type', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('availability', sa.String(length=32), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('is_system', sa.Boolean(), nullable=False),
    sa.Column('specify_vlan', sa.Boolean(), nullable=False),
    sa.Column('specify_ip_ranges', sa.Boolean(), nullable=False),
    sa.Column('conserve_mode', sa.Boolean(), nullable=False),
    sa.Column('egress_default_policy', sa.Boolean(), nullable=False),
    sa.Column('network_rate', sa.Integer(), nullable=True),
    sa.Column('tags', sa.String(length=255), nullable=True),
    sa.Column('services_json', sa.Text(), nullable=False),
    sa.Column('details_json', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unique_name')
    )
    op.create_table('physical_network',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('domain_id', sa.String(length=36), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('isolation_methods', sa.String(length=255), nullable=False),
    sa.Column('vnet_range', sa.String(length=1024), nullable=True),
    sa.Column('broadcast_domain_range', sa.String(length=32), nullable=False),
    sa.Column('network_speed', sa.String(length=32), nullable=True),
    sa.Column('tags', sa.String(length=255), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_physical_network_zone_id'), 'physical_network', ['zone_id'], unique=False)
    op.create_table('network',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('display_text', sa.String(length=255), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('physical_network_id', sa.String(length=36), nullable=True),
    sa.Column('network_offering_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('domain_id', sa.String(length=36), nullable=False),
    sa.Column('acl_type', sa.String(length=32), nullable=False),
    sa.Column('subdomain_access', sa.Boolean(), nullable=True),
    sa.Column('guest_type', sa.String(length=32), nullable=False),
    sa.Column('traffic_type', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=True),
    sa.Column('gateway', sa.String(length=64), nullable=True),
    sa.Column('start_ip', sa.String(length=64), nullable=True),
    sa.Column('end_ip', sa.String(length=64), nullable=True),
    sa.Column('broadcast_domain_type', sa.String(length=32), nullable=True),
    sa.Column('broadcast_uri', sa.String(length=255), nullable=True),
    sa.Column('vnet', sa.Integer(), nullable=True),
    sa.Column('specify_vlan', sa.Boolean(), nullable=False),
    sa.Column('network_domain', sa.String(length=255), nullable=True),
    sa.Column('dns1', sa.String(length=64), nullable=True),
    sa.Column('dns2', sa.String(length=64), nullable=True),
    sa.Column('restart_required', sa.Boolean(), nullable=False),
    sa.Column('display_network', sa.Boolean(), nullable=False),
    sa.Column('idle_since', sa.DateTime(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ),
    sa.ForeignKeyConstraint(['network_offering_id'], ['network_offering.id'], ),
    sa.ForeignKeyConstraint(['physical_network_id'], ['physical_network.id'], ),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_network_account', 'network', ['account_id', 'removed'], unique=False)
    op.create_index(op.f('ix_network_zone_id'), 'network', ['zone_id'], unique=False)
    op.create_table('network_service_provider',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('physical_network_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('services', sa.String(length=1024), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['physical_network_id'], ['physical_network.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('physical_network_id', 'name')
    )
    op.create_table('physical_network_traffic_type',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('physical_network_id', sa.String(length=36), nullable=False),
    sa.Column('traffic_type', sa.String(length=32), nullable=False),
    sa.Column('kvm_label', sa.String(length=255), nullable=True),
    sa.Column('hyperv_label', sa.String(length=255), nullable=True),
    sa.Column('xen_label', sa.String(length=255), nullable=True),
    sa.Column('vmware_label', sa.String(length=255), nullable=True),
    sa.Column('simulator_label', sa.String(length=255), nullable=True),
    sa.Column('vlan', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['physical_network_id'], ['physical_network.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('physical_network_id', 'traffic_type')
    )
    op.create_table('guest_vnet',
    sa.Column('physical_network_id', sa.String(length=36), nullable=False),
    sa.Column('vnet', sa.Integer(), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=True),
    sa.Column('taken', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['physical_network_id'], ['physical_network.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('physical_network_id', 'vnet')
    )
    op.create_index(op.f('ix_guest_vnet_network_id'), 'guest_vnet', ['network_id'], unique=False)
    op.create_table('virtual_router_element',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('provider_id', sa.String(length=36), nullable=False),
    sa.Column('element_type', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['network_service_provider.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id')
    )
    op.create_table('vlan_ip_range',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('physical_network_id', sa.String(length=36), nullable=True),
    sa.Column('network_id', sa.String(length=36), nullable=True),
    sa.Column('pod_id', sa.String(length=36), nullable=True),
    sa.Column('account_id', sa.String(length=36), nullable=True),
    sa.Column('domain_id', sa.String(length=36), nullable=True),
    sa.Column('vlan_tag', sa.String(length=255), nullable=False),
    sa.Column('gateway', sa.String(length=64), nullable=False),
    sa.Column('netmask', sa.String(length=64), nullable=False),
    sa.Column('start_ip', sa.String(length=64), nullable=False),
    sa.Column('end_ip', sa.String(length=64), nullable=False),
    sa.Column('for_virtual_network', sa.Boolean(), nullable=False),
    sa.Column('for_system_vms', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['physical_network_id'], ['physical_network.id'], ),
    sa.ForeignKeyConstraint(['pod_id'], ['pod.id'], ),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_vlan_ip_range_network_id'), 'vlan_ip_range', ['network_id'], unique=False)
    op.create_index(op.f('ix_vlan_ip_range_physical_network_id'), 'vlan_ip_range', ['physical_network_id'],
                    unique=False)
    op.create_index(op.f('ix_vlan_ip_range_zone_id'), 'vlan_ip_range', ['zone_id'], unique=False)
    op.create_table('domain_router',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('vm_number', sa.BigInteger(), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('domain_id', sa.String(length=36), nullable=False),
    sa.Column('host_id', sa.String(length=36), nullable=True),
    sa.Column('last_host_id', sa.String(length=36), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('guest_ip', sa.String(length=64), nullable=True),
    sa.Column('guest_mac', sa.String(length=17), nullable=False),
    sa.Column('public_ip', sa.String(length=64), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('redundant_state', sa.String(length=32), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=True),
    sa.Column('service_offering_id', sa.String(length=36), nullable=True),
    sa.Column('state_changed', sa.DateTime(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['last_host_id'], ['host.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['service_offering_id'], ['service_offering.id'], ),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('guest_mac'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('vm_number')
    )
    op.create_index(op.f('ix_domain_router_host_id'), 'domain_router', ['host_id'], unique=False)
    op.create_index('ix_domain_router_network', 'domain_router', ['network_id', 'removed'], unique=False)
    op.create_table('nic',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vm_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('mac_address', sa.String(length=17), nullable=False),
    sa.Column('ip4_address', sa.String(length=64), nullable=True),
    sa.Column('ip_key', sa.String(length=128), nullable=True),
    sa.Column('netmask', sa.String(length=64), nullable=True),
    sa.Column('gateway', sa.String(length=64), nullable=True),
    sa.Column('broadcast_uri', sa.String(length=255), nullable=True),
    sa.Column('isolation_uri', sa.String(length=255), nullable=True),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('mode', sa.String(length=32), nullable=False),
    sa.Column('reservation_strategy', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('network_label', sa.String(length=255), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ip_key'),
    sa.UniqueConstraint('mac_address')
    )
    op.create_index('ix_nic_network', 'nic', ['network_id', 'removed'], unique=False)
    op.create_index('ix_nic_vm', 'nic', ['vm_id', 'removed'], unique=False)
    # every VM's one NIC becomes a row of its own: a NIC of no guest network (the zone's guest bridge)
    op.execute(
        "INSERT INTO nic (id, vm_id, network_id, device_id, mac_address, ip4_address, ip_key, netmask, gateway, "
        "broadcast_uri, isolation_uri, is_default, mode, reservation_strategy, state, network_label, created, removed) "
        "SELECT nic_id, id, NULL, 0, mac_address, NULL, NULL, NULL, NULL, 'vlan://untagged', NULL, "
        "{true}, 'Dhcp', 'Start', CASE WHEN removed IS NULL THEN 'Reserved' ELSE 'Deallocating' END, "
        "network_label, created, removed FROM vm_instance".replace(
            "{true}", "true" if op.get_bind().dialect.name == "postgresql" else "1"))


def downgrade() -> None:
    op.drop_index('ix_nic_vm', table_name='nic')
    op.drop_index('ix_nic_network', table_name='nic')
    op.drop_table('nic')
    op.drop_index('ix_domain_router_network', table_name='domain_router')
    op.drop_index(op.f('ix_domain_router_host_id'), table_name='domain_router')
    op.drop_table('domain_router')
    op.drop_index(op.f('ix_vlan_ip_range_zone_id'), table_name='vlan_ip_range')
    op.drop_index(op.f('ix_vlan_ip_range_physical_network_id'), table_name='vlan_ip_range')
    op.drop_index(op.f('ix_vlan_ip_range_network_id'), table_name='vlan_ip_range')
    op.drop_table('vlan_ip_range')
    op.drop_table('virtual_router_element')
    op.drop_index(op.f('ix_guest_vnet_network_id'), table_name='guest_vnet')
    op.drop_table('guest_vnet')
    op.drop_table('physical_network_traffic_type')
    op.drop_table('network_service_provider')
    op.drop_index(op.f('ix_network_zone_id'), table_name='network')
    op.drop_index('ix_network_account', table_name='network')
    op.drop_table('network')
    op.drop_index(op.f('ix_physical_network_zone_id'), table_name='physical_network')
    op.drop_table('physical_network')
    op.drop_table('network_offering')
