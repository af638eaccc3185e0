"""issue 16: public addresses (user_ip_address), firewall, port forwarding, static NAT and load
balancer rules (firewall_rules with their CIDRs, port_forwarding_rules, load_balancing_rules,
load_balancer_vm_map) and the MACs of routers' public NICs

Revision ID: 0013_public_ips_rules
Revises: 0012_vm_nic_columns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_public_ips_rules'
down_revision = '0012_vm_nic_columns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('router_public_nic',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=False),
    sa.Column('vlan_id', sa.String(length=36), nullable=False),
    sa.Column('mac_address', sa.String(length=17), nullable=False),
    sa.ForeignKeyConstraint(['router_id'], ['domain_router.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vlan_id'], ['vlan_ip_range.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mac_address'),
    sa.UniqueConstraint('router_id', 'vlan_id')
    )
    op.create_table('user_ip_address',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('public_ip_address', sa.String(length=64), nullable=False),
    sa.Column('ip_key', sa.String(length=128), nullable=True),
    sa.Column('zone_id', sa.String(length=36), nullable=False),
    sa.Column('vlan_id', sa.String(length=36), nullable=False),
    sa.Column('physical_network_id', sa.String(length=36), nullable=True),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('domain_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=True),
    sa.Column('source_nat', sa.Boolean(), nullable=False),
    sa.Column('one_to_one_nat', sa.Boolean(), nullable=False),
    sa.Column('vm_id', sa.String(length=36), nullable=True),
    sa.Column('vm_ip', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('is_system', sa.Boolean(), nullable=False),
    sa.Column('display', sa.Boolean(), nullable=False),
    sa.Column('allocated', sa.DateTime(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('removed', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['physical_network_id'], ['physical_network.id'], ),
    sa.ForeignKeyConstraint(['vlan_id'], ['vlan_ip_range.id'], ),
    sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['zone_id'], ['zone.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ip_key')
    )
    op.create_index('ix_user_ip_address_account', 'user_ip_address', ['account_id', 'removed'], unique=False)
    op.create_index('ix_user_ip_address_network', 'user_ip_address', ['network_id', 'removed'], unique=False)
    op.create_table('firewall_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('ip_address_id', sa.String(length=36), nullable=True),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('domain_id', sa.String(length=36), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('traffic_type', sa.String(length=32), nullable=False),
    sa.Column('protocol', sa.String(length=16), nullable=False),
    sa.Column('start_port', sa.Integer(), nullable=True),
    sa.Column('end_port', sa.Integer(), nullable=True),
    sa.Column('icmp_type', sa.Integer(), nullable=True),
    sa.Column('icmp_code', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('related_id', sa.String(length=36), nullable=True),
    sa.Column('display', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['domain_id'], ['domain.id'], ),
    sa.ForeignKeyConstraint(['ip_address_id'], ['user_ip_address.id'], ),
    sa.ForeignKeyConstraint(['network_id'], ['network.id'], ),
    sa.ForeignKeyConstraint(['related_id'], ['firewall_rules.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_firewall_rules_ip', 'firewall_rules', ['ip_address_id', 'purpose'], unique=False)
    op.create_index('ix_firewall_rules_network', 'firewall_rules', ['network_id', 'purpose'], unique=False)
    op.create_table('firewall_rules_cidrs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('rule_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['firewall_rules.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_firewall_rules_cidrs_rule_id'), 'firewall_rules_cidrs', ['rule_id'], unique=False)
    op.create_table('load_balancing_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=4096), nullable=True),
    sa.Column('algorithm', sa.String(length=32), nullable=False),
    sa.Column('default_port_start', sa.Integer(), nullable=False),
    sa.Column('default_port_end', sa.Integer(), nullable=False),
    sa.Column('lb_protocol', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['firewall_rules.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('port_forwarding_rules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vm_id', sa.String(length=36), nullable=False),
    sa.Column('dest_ip', sa.String(length=64), nullable=False),
    sa.Column('dest_port_start', sa.Integer(), nullable=False),
    sa.Column('dest_port_end', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['id'], ['firewall_rules.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_port_forwarding_rules_vm_id'), 'port_forwarding_rules', ['vm_id'], unique=False)
    op.create_table('load_balancer_vm_map',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('load_balancer_id', sa.String(length=36), nullable=False),
    sa.Column('vm_id', sa.String(length=36), nullable=False),
    sa.Column('vm_ip', sa.String(length=64), nullable=True),
    sa.Column('revoke', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['load_balancer_id'], ['load_balancing_rules.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vm_id'], ['vm_instance.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('load_balancer_id', 'vm_id')
    )
    op.create_index(op.f('ix_load_balancer_vm_map_load_balancer_id'), 'load_balancer_vm_map', ['load_balancer_id'],
                    unique=False)
    op.create_index(op.f('ix_load_balancer_vm_map_vm_id'), 'load_balancer_vm_map', ['vm_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_load_balancer_vm_map_vm_id'), table_name='load_balancer_vm_map')
    op.drop_index(op.f('ix_load_balancer_vm_map_load_balancer_id'), table_name='load_balancer_vm_map')
    op.drop_table('load_balancer_vm_map')
    op.drop_index(op.f('ix_port_forwarding_rules_vm_id'), table_name='port_forwarding_rules')
    op.drop_table('port_forwarding_rules')
    op.drop_table('load_balancing_rules')
    op.drop_index(op.f('ix_firewall_rules_cidrs_rule_id'), table_name='firewall_rules_cidrs')
    op.drop_table('firewall_rules_cidrs')
    op.drop_index('ix_firewall_rules_network', table_name='firewall_rules')
    op.drop_index('ix_firewall_rules_ip', table_name='firewall_rules')
    op.drop_table('firewall_rules')
    op.drop_index('ix_user_ip_address_network', table_name='user_ip_address')
    op.drop_index('ix_user_ip_address_account', table_name='user_ip_address')
    op.drop_table('user_ip_address')
    op.drop_table('router_public_nic')
