"""SQLAlchemy models of the cloud's state.

Primary keys are the lower-case UUIDs the API shows, so no id translation layer is needed. Times
are stored as naive UTC and handed back timezone-aware. Secrets live in ``*_enc`` columns, encrypted
with :class:`hvcloud.server.db.crypto.SecretBox`.

The rows jobs touch all the time (VMs, volumes, hosts, pools, template copies) load their
relationships on first access (``lazy="select"``: a lookup in the session's identity map, or one small
SELECT): joined eager loading dragged some twenty rows of zones, pods, clusters, hosts and templates
into every VM or volume a deploy read. Views of many rows load what they show for the whole page
(``selectinload``, or plain joined columns in ``views.vms``), so a page costs a fixed number of
queries. Small lookups (an account's domain, a user's account) stay joined.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hvcloud.server.db.default_roles import USER_ROLE_ID, default_role_id


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC on every backend and returned as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def _created_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Base(DeclarativeBase):
    pass


class Domain(Base):
    """A domain: ``path`` is ``ROOT/<name>/<name>…`` (unique, so sibling names are unique), ``level``
    its depth (ROOT 0). ``deleteDomain`` sets ``removed`` and appends ``#removed:<id>`` to the path
    (the row stays, and the name may be taken again)."""

    __tablename__ = "domain"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("domain.id"), nullable=True, index=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    #: CloudStack's Active, or Inactive while a deleteDomain job works on it
    state: Mapped[str] = mapped_column(String(32), default="Active", server_default="Active")
    network_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


#: rows that are still live: removed accounts and users stay as tombstones (events and jobs name them),
#: and their names may be taken again, so names are unique among live rows only
_LIVE = "removed IS NULL"


class Account(Base):
    """An account; ``removed`` is set by ``deleteAccount`` (the row stays, as CloudStack keeps it)."""

    __tablename__ = "account"
    __table_args__ = (Index("uq_account_live_name", "domain_id", "name", unique=True,
                            sqlite_where=text(_LIVE), postgresql_where=text(_LIVE)),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    account_type: Mapped[int] = mapped_column(Integer)
    #: the small number in instance names ``i-<number>-<vm number>-VM``, given on first deploy
    number: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="enabled")
    network_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: the account's role (CloudStack's dynamic roles); a row given none gets its type's default role.
    #: No foreign key: adding one would rebuild ``account`` on SQLite, which every table references;
    #: roles are never deleted (``removed`` is set), so the reference cannot dangle.
    role_id: Mapped[str] = mapped_column(String(36), index=True, default=default_role_id,
                                         server_default=USER_ROLE_ID)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    domain: Mapped[Domain] = relationship(lazy="joined")
    #: joined: every API call checks the caller's role, and its ``version`` tells whether the rules this
    #: process compiled are current, without a query of its own
    role: Mapped[Role] = relationship(lazy="joined", primaryjoin="foreign(Account.role_id) == Role.id")
    users: Mapped[list[User]] = relationship(back_populates="account", order_by="User.created",
                                             primaryjoin="and_(User.account_id == Account.id, "
                                                         "User.removed.is_(None))", viewonly=True)


class User(Base):
    """A user; ``removed`` is set by ``deleteUser``/``deleteAccount``, which also drop its keys and
    sessions. A removed user never authenticates; its row stays for the history that names it."""

    __tablename__ = "user"
    __table_args__ = (Index("uq_user_live_username", "username", unique=True,
                            sqlite_where=text(_LIVE), postgresql_where=text(_LIVE)),)
    id: Mapped[str] = _id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    username: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    firstname: Mapped[str] = mapped_column(String(255))
    lastname: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="enabled")
    api_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    secret_key_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: consecutive failed ``login`` attempts (CloudStack's ``user.login_attempts``); a success or
    #: ``enableUser`` resets it
    login_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    account: Mapped[Account] = relationship(lazy="joined")


class LoginSession(Base):
    """A ``login`` session; only a SHA-256 of the session key is stored."""

    __tablename__ = "login_session"
    id: Mapped[str] = _id_column()
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    created: Mapped[datetime] = _created_column()
    last_seen: Mapped[datetime] = _created_column()
    user: Mapped[User] = relationship(lazy="joined")


class Zone(Base):
    __tablename__ = "zone"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    network_type: Mapped[str] = mapped_column(String(32))
    dns1: Mapped[str] = mapped_column(String(64))
    dns2: Mapped[str | None] = mapped_column(String(64), nullable=True)
    internal_dns1: Mapped[str] = mapped_column(String(64))
    internal_dns2: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guest_cidr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    network_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    allocation_state: Mapped[str] = mapped_column(String(32), default="Disabled")
    local_storage_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    security_groups_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``updateZone details``: e.g. ``guest.network.label`` (the guest NICs' switch/bridge),
    #: ``cpu.overprovisioning.factor``, ``mem.overprovisioning.factor``
    details_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = _created_column()


class Pod(Base):
    __tablename__ = "pod"
    __table_args__ = (UniqueConstraint("zone_id", "name"),)
    id: Mapped[str] = _id_column()
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    name: Mapped[str] = mapped_column(String(255))
    gateway: Mapped[str | None] = mapped_column(String(64), nullable=True)
    netmask: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    end_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    allocation_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    created: Mapped[datetime] = _created_column()
    zone: Mapped[Zone] = relationship(lazy="joined")


class Cluster(Base):
    __tablename__ = "cluster"
    __table_args__ = (UniqueConstraint("pod_id", "name"),)
    id: Mapped[str] = _id_column()
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    pod_id: Mapped[str] = mapped_column(ForeignKey("pod.id"))
    name: Mapped[str] = mapped_column(String(255))
    hypervisor: Mapped[str] = mapped_column(String(32))
    cluster_type: Mapped[str] = mapped_column(String(32), default="CloudManaged")
    allocation_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    managed_state: Mapped[str] = mapped_column(String(32), default="Managed")
    cpu_overcommit: Mapped[str] = mapped_column(String(16), default="1.0")
    memory_overcommit: Mapped[str] = mapped_column(String(16), default="1.0")
    created: Mapped[datetime] = _created_column()
    zone: Mapped[Zone] = relationship(lazy="joined")
    pod: Mapped[Pod] = relationship(lazy="joined")


class Host(Base):
    """A hypervisor host driven over the agent wire.

    ``guid`` is the identity the agent reports in its Startup exchange; ``cert_fingerprint`` is the
    SHA-256 of the agent's TLS certificate pinned on first contact; ``agent_password_enc`` holds the
    credentials given to ``addHost`` so the AgentManager can reconnect.
    """

    __tablename__ = "host"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    guid: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    host_type: Mapped[str] = mapped_column(String(32), default="Routing")
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    pod_id: Mapped[str | None] = mapped_column(ForeignKey("pod.id"), nullable=True)
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("cluster.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="Connecting")
    resource_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    hypervisor: Mapped[str] = mapped_column(String(32))
    hypervisor_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    url: Mapped[str] = mapped_column(String(1024))
    private_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    agent_password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    cert_fingerprint: Mapped[str | None] = mapped_column(String(128), nullable=True)
    cpu_sockets: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_speed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    capabilities: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host_tags: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    agent_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_pinged: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status_reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    cpu_used_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    network_read_kbs: Mapped[float | None] = mapped_column(Float, nullable=True)
    network_write_kbs: Mapped[float | None] = mapped_column(Float, nullable=True)
    stats_updated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: CPU MHz and memory bytes held by the VMs placed here (see orchestration.planner)
    #: a Hyper-V host's VMConnect (RDP) port, from ``rdp.server.port`` in its startup details
    console_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_allocated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    memory_allocated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: the management server whose AgentManager pings this host; its lease is that server's heartbeat
    owner_server_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    owner_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()
    zone: Mapped[Zone] = relationship(lazy="select")
    pod: Mapped[Pod | None] = relationship(lazy="select")
    cluster: Mapped[Cluster | None] = relationship(lazy="select")


class VmPowerReport(Base):
    """The power state a host last reported for one VM (by instance name).

    Kept per host and instance name so that reports are recorded before VMs exist in the database;
    ``missing_since`` is set when the VM drops out of its host's reports, and the state becomes
    ``PowerReportMissing`` once that lasts longer than the grace period.
    """

    __tablename__ = "vm_power_report"
    __table_args__ = (UniqueConstraint("host_id", "instance_name"),)
    id: Mapped[str] = _id_column()
    host_id: Mapped[str] = mapped_column(ForeignKey("host.id", ondelete="CASCADE"), index=True)
    instance_name: Mapped[str] = mapped_column(String(255), index=True)
    power_state: Mapped[str] = mapped_column(String(32))
    state_changed: Mapped[datetime] = _created_column()
    last_reported: Mapped[datetime] = _created_column()
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StoragePool(Base):
    __tablename__ = "storage_pool"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    pod_id: Mapped[str | None] = mapped_column(ForeignKey("pod.id"), nullable=True)
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("cluster.id"), nullable=True)
    host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id"), nullable=True)
    scope: Mapped[str] = mapped_column(String(16))
    pool_type: Mapped[str] = mapped_column(String(32))
    host_address: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    url: Mapped[str] = mapped_column(String(2048))
    provider: Mapped[str] = mapped_column(String(64), default="DefaultPrimary")
    hypervisor: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="Up")
    capacity_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    allocated_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tags: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    overprovision_factor: Mapped[str] = mapped_column(String(16), default="2.0")
    details_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the pool's uuid on the agent wire when it is not the row id (a host's local pool is named by
    #: the host guid, as CloudStack's Hyper-V agent reports it)
    external_uuid: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = _created_column()
    zone: Mapped[Zone] = relationship(lazy="select")
    pod: Mapped[Pod | None] = relationship(lazy="select")
    cluster: Mapped[Cluster | None] = relationship(lazy="select")


class ImageStore(Base):
    """Secondary storage. S3 credentials and other details are kept encrypted in ``details_enc``."""

    __tablename__ = "image_store"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("zone.id"), nullable=True)
    provider: Mapped[str] = mapped_column(String(32))
    protocol: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(String(16))
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    details_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    capacity_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    used_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created: Mapped[datetime] = _created_column()
    zone: Mapped[Zone | None] = relationship(lazy="joined")


class OsCategory(Base):
    __tablename__ = "os_category"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255), unique=True)


class OsType(Base):
    __tablename__ = "os_type"
    id: Mapped[str] = _id_column()
    category_id: Mapped[str] = mapped_column(ForeignKey("os_category.id"))
    description: Mapped[str] = mapped_column(String(255), unique=True)
    is_user_defined: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[OsCategory] = relationship(lazy="joined")


class Event(Base):
    __tablename__ = "event"
    id: Mapped[str] = _id_column()
    event_type: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16), default="INFO")
    state: Mapped[str] = mapped_column(String(16), default="Completed")
    description: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("account.id"), nullable=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    resource_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created: Mapped[datetime] = _created_column()
    account: Mapped[Account | None] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(lazy="joined")


class Alert(Base):
    __tablename__ = "alert"
    id: Mapped[str] = _id_column()
    alert_type: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text)
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("zone.id"), nullable=True)
    pod_id: Mapped[str | None] = mapped_column(ForeignKey("pod.id"), nullable=True)
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("cluster.id"), nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created_column()


class ManagementServer(Base):
    """One running management server process and its liveness lease (``heartbeat``).

    A server whose heartbeat is older than the lease timeout is declared ``Down`` by any other
    server, which then takes over the jobs it owned.
    """

    __tablename__ = "management_server"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="Up")
    started: Mapped[datetime] = _created_column()
    heartbeat: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    stopped: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AsyncJob(Base):
    """An asynchronous API job; ``result_json`` holds the ``jobresult`` object.

    ``status`` is CloudStack's ``jobstatus`` (0 in progress, 1 succeeded, 2 failed); ``phase`` is the
    engine's own state (queued, running, recover, done). ``object_key`` orders jobs acting on one
    object: a job runs only when no earlier unfinished job has the same key. ``queued_us`` (microseconds
    since the epoch) is that order.
    """

    __tablename__ = "async_job"
    __table_args__ = (Index("ix_async_job_phase_queued", "phase", "queued_us", "id"),
                      Index("ix_async_job_object", "object_key", "status"))
    id: Mapped[str] = _id_column()
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("user.id"))
    command: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(Integer, default=0)
    result_code: Mapped[int] = mapped_column(Integer, default=0)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    instance_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created: Mapped[datetime] = _created_column()
    completed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    handler: Mapped[str | None] = mapped_column(String(64), nullable=True)
    params_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    phase: Mapped[str] = mapped_column(String(16), default="done")
    object_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    queued_us: Mapped[int] = mapped_column(BigInteger, default=0)
    owner_server_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    proc_percent: Mapped[int] = mapped_column(Integer, default=0)
    proc_text: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    account: Mapped[Account] = relationship(lazy="joined")


class VMTemplate(Base):
    """A template or ISO (``is_iso``); where its file lives is in :class:`TemplateStoreRef`."""

    __tablename__ = "vm_template"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(4096))
    is_iso: Mapped[bool] = mapped_column(Boolean, default=False)
    format: Mapped[str] = mapped_column(String(16))
    hypervisor: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_type_id: Mapped[str | None] = mapped_column(ForeignKey("os_type.id"), nullable=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    is_featured: Mapped[bool] = mapped_column(Boolean, default=False)
    is_extractable: Mapped[bool] = mapped_column(Boolean, default=False)
    password_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    sshkey_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    bootable: Mapped[bool] = mapped_column(Boolean, default=True)
    requires_hvm: Mapped[bool] = mapped_column(Boolean, default=True)
    bits: Mapped[int] = mapped_column(Integer, default=64)
    template_type: Mapped[str] = mapped_column(String(16), default="USER")
    template_tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    cross_zones: Mapped[bool] = mapped_column(Boolean, default=False)
    details_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()
    account: Mapped[Account] = relationship(lazy="joined")
    os_type: Mapped[OsType | None] = relationship(lazy="joined")


class TemplateStoreRef(Base):
    """A template's copy in one zone: which image store holds it and its path relative to that store."""

    __tablename__ = "template_store_ref"
    __table_args__ = (UniqueConstraint("template_id", "zone_id"),)
    id: Mapped[str] = _id_column()
    template_id: Mapped[str] = mapped_column(ForeignKey("vm_template.id", ondelete="CASCADE"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    store_id: Mapped[str | None] = mapped_column(ForeignKey("image_store.id"), nullable=True)
    install_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    download_state: Mapped[str] = mapped_column(String(32), default="NOT_DOWNLOADED")
    download_percent: Mapped[int] = mapped_column(Integer, default=0)
    error_text: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    physical_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = _created_column()
    template: Mapped[VMTemplate] = relationship(lazy="select")
    zone: Mapped[Zone] = relationship(lazy="select")
    store: Mapped[ImageStore | None] = relationship(lazy="select")


class ServiceOffering(Base):
    __tablename__ = "service_offering"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(4096))
    cpu_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_speed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory: Mapped[int | None] = mapped_column(Integer, nullable=True)
    storage_type: Mapped[str] = mapped_column(String(16), default="shared")
    provisioning_type: Mapped[str] = mapped_column(String(16), default="thin")
    offer_ha: Mapped[bool] = mapped_column(Boolean, default=False)
    limit_cpu_use: Mapped[bool] = mapped_column(Boolean, default=False)
    is_volatile: Mapped[bool] = mapped_column(Boolean, default=False)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    host_tags: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    storage_tags: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    root_disk_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()

    @property
    def customized(self) -> bool:
        return self.cpu_number is None or self.memory is None


class DiskOffering(Base):
    __tablename__ = "disk_offering"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(4096))
    disk_size_gb: Mapped[int] = mapped_column(BigInteger, default=0)
    customized: Mapped[bool] = mapped_column(Boolean, default=False)
    storage_type: Mapped[str] = mapped_column(String(16), default="shared")
    provisioning_type: Mapped[str] = mapped_column(String(16), default="thin")
    tags: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    display_offering: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()


class IdSequence(Base):
    """Named counters (VM numbers, account numbers), bumped with one atomic UPDATE."""

    __tablename__ = "id_sequence"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class VMInstance(Base):
    """A user VM. ``capacity_host_id`` is the host whose CPU/memory this VM holds right now: set in
    the transaction that reserves them, cleared in the one that releases them, so a recount of these
    rows always equals the hosts' ``*_allocated`` columns."""

    __tablename__ = "vm_instance"
    __table_args__ = (Index("ix_vm_instance_account_state", "account_id", "state"),
                      Index("ix_vm_instance_account_created", "account_id", "created", "vm_number"),
                      Index("ix_vm_instance_created", "created", "vm_number"))
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    instance_name: Mapped[str] = mapped_column(String(255), unique=True)
    vm_number: Mapped[int] = mapped_column(BigInteger, unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("user.id"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    last_host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id", ondelete="SET NULL"), nullable=True)
    capacity_host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id", ondelete="SET NULL"),
                                                         nullable=True, index=True)
    requested_host_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    template_id: Mapped[str | None] = mapped_column(ForeignKey("vm_template.id"), nullable=True)
    iso_id: Mapped[str | None] = mapped_column(ForeignKey("vm_template.id"), nullable=True)
    service_offering_id: Mapped[str] = mapped_column(ForeignKey("service_offering.id"))
    os_type_id: Mapped[str | None] = mapped_column(ForeignKey("os_type.id"), nullable=True)
    cpu_number: Mapped[int] = mapped_column(Integer)
    cpu_speed: Mapped[int] = mapped_column(Integer)
    memory: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32), default="Stopped", index=True)
    state_reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    state_changed: Mapped[datetime] = _created_column()
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the VM's instance group (``group``/``groupid``); deleting the group clears it. No foreign key: adding
    #: one would rebuild vm_instance on SQLite, whose DROP runs the ON DELETE actions of every reference
    group_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    #: how many affinity groups the VM is in (``affinity_group_vm_map``), kept with the map in the same
    #: transactions: placement and the VM's view read the map only for VMs in some group
    affinity_group_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ha_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    display_vm: Mapped[bool] = mapped_column(Boolean, default=True)
    vnc_password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: CloudStack's ``keypairs``: the SSH key pair names, comma separated; ``ssh_public_keys`` the keys
    #: themselves as they were at deploy/reset time (one per line), what the VM's metadata serves
    keypairs: Mapped[str | None] = mapped_column(Text, nullable=True)
    ssh_public_keys: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the registered user data the VM's ``user_data`` came from (its content is copied), and the
    #: ``userdatadetails`` given for its parameters (a JSON object)
    user_data_id: Mapped[str | None] = mapped_column(ForeignKey("user_data.id"), nullable=True, index=True)
    user_data_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the guest password of a password-enabled template (deploy, resetPasswordForVirtualMachine)
    password_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the password is new and its routers have not been handed it yet (``SavePasswordCommand``
    #: goes once per new password: a guest that changed it is not reset at every boot)
    password_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    account: Mapped[Account] = relationship(lazy="select")
    zone: Mapped[Zone] = relationship(lazy="select")
    host: Mapped[Host | None] = relationship(lazy="select", foreign_keys=[host_id])
    template: Mapped[VMTemplate | None] = relationship(lazy="select", foreign_keys=[template_id])
    iso: Mapped[VMTemplate | None] = relationship(lazy="select", foreign_keys=[iso_id])
    service_offering: Mapped[ServiceOffering] = relationship(lazy="select")


class SSHKeyPair(Base):
    """An SSH key pair (``createSSHKeyPair``/``registerSSHKeyPair``): only its public half is kept."""

    __tablename__ = "ssh_keypair"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128), index=True)
    created: Mapped[datetime] = _created_column()
    account: Mapped[Account] = relationship(lazy="joined")


class UserData(Base):
    """Registered user data (``registerUserData``): base64 as given, and the names of its parameters
    (``params``, comma separated) that ``userdatadetails`` fill in at deploy."""

    __tablename__ = "user_data"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    user_data: Mapped[str] = mapped_column(Text)
    params: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = _created_column()
    account: Mapped[Account] = relationship(lazy="joined")


class Volume(Base):
    """A ROOT or DATADISK volume. ``state``: Allocated (DB only), Creating, Ready, Destroy, Expunged.
    ``host_id`` is the host that created it on its pool (deletes go there first)."""

    __tablename__ = "volume"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    vm_id: Mapped[str | None] = mapped_column(ForeignKey("vm_instance.id", ondelete="SET NULL"), nullable=True,
                                              index=True)
    volume_type: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("storage_pool.id"), nullable=True)
    host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id", ondelete="SET NULL"), nullable=True)
    path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    format: Mapped[str] = mapped_column(String(16), default="QCOW2")
    disk_offering_id: Mapped[str | None] = mapped_column(ForeignKey("disk_offering.id"), nullable=True)
    template_id: Mapped[str | None] = mapped_column(ForeignKey("vm_template.id"), nullable=True)
    #: bytes this volume holds in its pool's ``allocated_bytes``
    allocated_size: Mapped[int] = mapped_column(BigInteger, default=0)
    attached: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    account: Mapped[Account] = relationship(lazy="select")
    zone: Mapped[Zone] = relationship(lazy="select")
    pool: Mapped[StoragePool | None] = relationship(lazy="select")
    disk_offering: Mapped[DiskOffering | None] = relationship(lazy="select")
    vm: Mapped[VMInstance | None] = relationship(lazy="select")


class TemplatePoolRef(Base):
    """A template copied onto one primary pool (CopyCommand image store → primary happens once)."""

    __tablename__ = "template_pool_ref"
    __table_args__ = (UniqueConstraint("template_id", "pool_id"),)
    id: Mapped[str] = _id_column()
    template_id: Mapped[str] = mapped_column(ForeignKey("vm_template.id", ondelete="CASCADE"))
    pool_id: Mapped[str] = mapped_column(ForeignKey("storage_pool.id", ondelete="CASCADE"))
    install_path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = _created_column()


class ResourceLimit(Base):
    """An explicit limit (``updateResourceLimit``) of one resource type for an account or a domain;
    without a row CloudStack's ``max.account.*`` / ``max.domain.*`` defaults apply. ``max`` is in the
    counting unit (bytes for storage, MiB for memory); -1 is unlimited."""

    __tablename__ = "resource_limit"
    __table_args__ = (UniqueConstraint("account_id", "resource_type"), UniqueConstraint("domain_id", "resource_type"))
    id: Mapped[str] = _id_column()
    account_id: Mapped[str | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), nullable=True)
    domain_id: Mapped[str | None] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), nullable=True)
    resource_type: Mapped[int] = mapped_column(Integer)
    max: Mapped[int] = mapped_column(BigInteger)


class ResourceCount(Base):
    """What an account, or a domain with all its sub-domains, holds of one resource type. Allocations
    raise it with one conditional UPDATE (the row lock serialises concurrent allocations), releases
    lower it; ``updateResourceCount`` recomputes it from the real rows."""

    __tablename__ = "resource_count"
    __table_args__ = (UniqueConstraint("account_id", "resource_type"), UniqueConstraint("domain_id", "resource_type"))
    id: Mapped[str] = _id_column()
    account_id: Mapped[str | None] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), nullable=True)
    domain_id: Mapped[str | None] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), nullable=True)
    resource_type: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class PhysicalNetwork(Base):
    """A zone's physical network (``createPhysicalNetwork``): how guest segments are isolated
    (``isolation_methods``: VLAN or VXLAN) and the range of ids they take (``vnet_range``: "100-199",
    several ranges comma-separated). ``state`` Disabled until ``updatePhysicalNetwork state=Enabled``."""

    __tablename__ = "physical_network"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"), index=True)
    domain_id: Mapped[str | None] = mapped_column(ForeignKey("domain.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="Disabled")
    isolation_methods: Mapped[str] = mapped_column(String(255), default="VLAN")
    vnet_range: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    broadcast_domain_range: Mapped[str] = mapped_column(String(32), default="ZONE")
    network_speed: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tags: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PhysicalNetworkTrafficType(Base):
    """``addTrafficType``: a kind of traffic (Guest, Public, Management, Storage) a physical network
    carries, with each hypervisor's label for it: the Linux bridge (KVM) or Hyper-V switch to use."""

    __tablename__ = "physical_network_traffic_type"
    __table_args__ = (UniqueConstraint("physical_network_id", "traffic_type"),)
    id: Mapped[str] = _id_column()
    physical_network_id: Mapped[str] = mapped_column(ForeignKey("physical_network.id", ondelete="CASCADE"))
    traffic_type: Mapped[str] = mapped_column(String(32))
    kvm_label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    hyperv_label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    xen_label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    vmware_label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    simulator_label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    vlan: Mapped[str | None] = mapped_column(String(64), nullable=True)


class NetworkServiceProvider(Base):
    """A provider of network services on a physical network (VirtualRouter, SecurityGroupProvider,
    …); ``services``: comma-separated service names it can offer."""

    __tablename__ = "network_service_provider"
    __table_args__ = (UniqueConstraint("physical_network_id", "name"),)
    id: Mapped[str] = _id_column()
    physical_network_id: Mapped[str] = mapped_column(ForeignKey("physical_network.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), default="Disabled")
    services: Mapped[str] = mapped_column(String(1024), default="")
    created: Mapped[datetime] = _created_column()


class VirtualRouterElement(Base):
    """``listVirtualRouterElements``: the VirtualRouter provider's element; ``enabled`` by
    ``configureVirtualRouterElement``."""

    __tablename__ = "virtual_router_element"
    id: Mapped[str] = _id_column()
    provider_id: Mapped[str] = mapped_column(ForeignKey("network_service_provider.id", ondelete="CASCADE"),
                                             unique=True)
    element_type: Mapped[str] = mapped_column(String(32), default="VirtualRouter")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class NetworkOffering(Base):
    """What a network offers (``listNetworkOfferings``). ``services_json``: {service: [providers]}
    (Dhcp, Dns, UserData, SourceNat, StaticNat, PortForwarding, Firewall, Lb, SecurityGroup, …)."""

    __tablename__ = "network_offering"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    unique_name: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    display_text: Mapped[str] = mapped_column(String(255))
    guest_ip_type: Mapped[str] = mapped_column(String(32))
    traffic_type: Mapped[str] = mapped_column(String(32), default="Guest")
    state: Mapped[str] = mapped_column(String(32), default="Disabled")
    availability: Mapped[str] = mapped_column(String(32), default="Optional")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    specify_vlan: Mapped[bool] = mapped_column(Boolean, default=False)
    specify_ip_ranges: Mapped[bool] = mapped_column(Boolean, default=False)
    conserve_mode: Mapped[bool] = mapped_column(Boolean, default=True)
    egress_default_policy: Mapped[bool] = mapped_column(Boolean, default=False)
    network_rate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[str | None] = mapped_column(String(255), nullable=True)
    services_json: Mapped[str] = mapped_column(Text, default="{}")
    details_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Network(Base):
    """A guest network. ``state``: Allocated (in the database only), Implementing, Implemented (segment
    id taken, router up), Shutdown, Destroy. ``broadcast_uri``: ``vlan://N`` or ``vxlan://N`` once a
    segment id is taken (or given by the admin for a shared network). ``acl_type`` Account (isolated,
    owned by ``account_id``) or Domain (shared)."""

    __tablename__ = "network"
    __table_args__ = (Index("ix_network_account", "account_id", "removed"),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"), index=True)
    physical_network_id: Mapped[str | None] = mapped_column(ForeignKey("physical_network.id"), nullable=True)
    network_offering_id: Mapped[str] = mapped_column(ForeignKey("network_offering.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    acl_type: Mapped[str] = mapped_column(String(32), default="Account")
    subdomain_access: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    guest_type: Mapped[str] = mapped_column(String(32))
    traffic_type: Mapped[str] = mapped_column(String(32), default="Guest")
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    cidr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gateway: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    end_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    broadcast_domain_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    broadcast_uri: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: the segment id taken from the physical network's range while implemented (isolated) or given
    #: (shared); unique per physical network through ``guest_vnet``
    vnet: Mapped[int | None] = mapped_column(Integer, nullable=True)
    specify_vlan: Mapped[bool] = mapped_column(Boolean, default=False)
    network_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dns1: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dns2: Mapped[str | None] = mapped_column(String(64), nullable=True)
    restart_required: Mapped[bool] = mapped_column(Boolean, default=False)
    display_network: Mapped[bool] = mapped_column(Boolean, default=True)
    #: when the network last had no running VM (the network garbage collector's clock), or None
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    zone: Mapped[Zone] = relationship(lazy="select")
    account: Mapped[Account] = relationship(lazy="select")
    offering: Mapped[NetworkOffering] = relationship(lazy="select")
    domain: Mapped[Domain] = relationship(lazy="select")
    physical_network: Mapped[PhysicalNetwork | None] = relationship(lazy="select")


class GuestVnet(Base):
    """A taken segment id (VLAN id or VXLAN VNI) of a physical network: the primary key makes two
    networks taking the same id impossible, whichever management server allocates."""

    __tablename__ = "guest_vnet"
    physical_network_id: Mapped[str] = mapped_column(ForeignKey("physical_network.id", ondelete="CASCADE"),
                                                     primary_key=True)
    vnet: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id", ondelete="SET NULL"), nullable=True,
                                                   index=True)
    taken: Mapped[datetime] = _created_column()


class VlanIpRange(Base):
    """CloudStack's ``vlan`` table (``createVlanIpRange``): an address range on a VLAN/VNI of a physical
    network, public (``for_virtual_network``) or a shared network's guest range (``network_id``)."""

    __tablename__ = "vlan_ip_range"
    id: Mapped[str] = _id_column()
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"), index=True)
    physical_network_id: Mapped[str | None] = mapped_column(ForeignKey("physical_network.id"), nullable=True,
                                                            index=True)
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id"), nullable=True, index=True)
    pod_id: Mapped[str | None] = mapped_column(ForeignKey("pod.id"), nullable=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("account.id"), nullable=True)
    domain_id: Mapped[str | None] = mapped_column(ForeignKey("domain.id"), nullable=True)
    vlan_tag: Mapped[str] = mapped_column(String(255), default="untagged")
    gateway: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    start_ip: Mapped[str] = mapped_column(String(64))
    end_ip: Mapped[str] = mapped_column(String(64))
    for_virtual_network: Mapped[bool] = mapped_column(Boolean, default=False)
    for_system_vms: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Nic(Base):
    """A VM's network interface. ``network_id`` None: a NIC of a zone without guest networks (the
    zone's untagged guest bridge, no addresses), as every VM had before networks. ``ip4_address`` is
    unique per network among live NICs (``ip_key``: ``<network id>/<address>`` while held, None after
    release, so the unique index works the same on SQLite and PostgreSQL)."""

    __tablename__ = "nic"
    __table_args__ = (Index("ix_nic_vm", "vm_id", "removed"), Index("ix_nic_network", "network_id", "removed"))
    id: Mapped[str] = _id_column()
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id", ondelete="CASCADE"))
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id"), nullable=True)
    device_id: Mapped[int] = mapped_column(Integer, default=0)
    mac_address: Mapped[str] = mapped_column(String(17), unique=True)
    ip4_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    netmask: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gateway: Mapped[str | None] = mapped_column(String(64), nullable=True)
    broadcast_uri: Mapped[str | None] = mapped_column(String(255), nullable=True)
    isolation_uri: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)
    mode: Mapped[str] = mapped_column(String(32), default="Dhcp")
    reservation_strategy: Mapped[str] = mapped_column(String(32), default="Start")
    state: Mapped[str] = mapped_column(String(32), default="Allocated")
    #: the legacy NIC's bridge/switch label (``network_id`` None)
    network_label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    network: Mapped[Network | None] = relationship(lazy="select")


class DomainRouter(Base):
    """A virtual router (``listRouters``): one per implemented network that needs one. It runs on
    ``host_id`` (as a network namespace on a Linux host, in the simulator's state on a simulated one)
    and holds the network's gateway address. ``state``: Starting, Running, Stopping, Stopped,
    Destroyed."""

    __tablename__ = "domain_router"
    __table_args__ = (Index("ix_domain_router_network", "network_id", "removed"),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    vm_number: Mapped[int] = mapped_column(BigInteger, unique=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("network.id"))
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    last_host_id: Mapped[str | None] = mapped_column(ForeignKey("host.id", ondelete="SET NULL"), nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="Stopped")
    guest_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guest_mac: Mapped[str] = mapped_column(String(17), unique=True)
    public_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str] = mapped_column(String(32), default="VIRTUAL_ROUTER")
    redundant_state: Mapped[str] = mapped_column(String(32), default="UNKNOWN")
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    service_offering_id: Mapped[str | None] = mapped_column(ForeignKey("service_offering.id"), nullable=True)
    state_changed: Mapped[datetime] = _created_column()
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    network: Mapped[Network] = relationship(lazy="select")
    host: Mapped[Host | None] = relationship(lazy="select", foreign_keys=[host_id])



class SecurityGroup(Base):
    """A security group (``createSecurityGroup``): rules that say who may reach the VMs in it and
    where they may go. Names are unique per account; each account has one named ``default``."""

    __tablename__ = "security_group"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = _created_column()
    account: Mapped[Account] = relationship(lazy="select")


class SecurityGroupRule(Base):
    """One rule of a group: ``rule_type`` ingress or egress; ``protocol`` tcp, udp, icmp, all or a
    protocol number; ``start_port``/``end_port`` the port range (icmp: type and code, -1 any; all and
    numbered protocols: 0/0); the remote side is ``allowed_cidr`` or the members of ``allowed_group_id``."""

    __tablename__ = "security_group_rule"
    __table_args__ = (Index("ix_security_group_rule_group", "security_group_id", "rule_type"),)
    id: Mapped[str] = _id_column()
    security_group_id: Mapped[str] = mapped_column(ForeignKey("security_group.id", ondelete="CASCADE"))
    rule_type: Mapped[str] = mapped_column(String(16))
    protocol: Mapped[str] = mapped_column(String(16))
    start_port: Mapped[int] = mapped_column(Integer)
    end_port: Mapped[int] = mapped_column(Integer)
    allowed_cidr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    allowed_group_id: Mapped[str | None] = mapped_column(ForeignKey("security_group.id", ondelete="CASCADE"),
                                                         nullable=True, index=True)
    created: Mapped[datetime] = _created_column()


class SecurityGroupVmMap(Base):
    """A VM's membership of a security group (``securitygroupids`` on deploy)."""

    __tablename__ = "security_group_vm_map"
    security_group_id: Mapped[str] = mapped_column(ForeignKey("security_group.id", ondelete="CASCADE"),
                                                   primary_key=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id", ondelete="CASCADE"), primary_key=True,
                                       index=True)


class VmRulesetLog(Base):
    """CloudStack's ``op_vm_ruleset_log``: the last ``seqNum`` given to a VM's rule set, bumped (one
    atomic UPDATE) for every ``SecurityGroupRulesCmd`` sent, so a host can drop an older one."""

    __tablename__ = "vm_ruleset_log"
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class UserIpAddress(Base):
    """CloudStack's ``user_ip_address``: a public address of the zone's public ranges
    (``vlan_ip_range`` rows with ``for_virtual_network``) taken by an account for a network. Only taken
    addresses have a live row: ``ip_key`` (``<zone>/<address>``) is unique while the address is held,
    so two servers never hand out one address; a released row keeps its history (``removed`` set,
    ``ip_key`` None). ``state``: Allocating, Allocated, Releasing (Free once removed).
    ``one_to_one_nat``: static NAT to ``vm_id`` at its guest address ``vm_ip``."""

    __tablename__ = "user_ip_address"
    __table_args__ = (Index("ix_user_ip_address_network", "network_id", "removed"),
                      Index("ix_user_ip_address_account", "account_id", "removed"))
    id: Mapped[str] = _id_column()
    public_ip_address: Mapped[str] = mapped_column(String(64))
    ip_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zone.id"))
    vlan_id: Mapped[str] = mapped_column(ForeignKey("vlan_ip_range.id"))
    physical_network_id: Mapped[str | None] = mapped_column(ForeignKey("physical_network.id"), nullable=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    network_id: Mapped[str | None] = mapped_column(ForeignKey("network.id"), nullable=True)
    source_nat: Mapped[bool] = mapped_column(Boolean, default=False)
    one_to_one_nat: Mapped[bool] = mapped_column(Boolean, default=False)
    vm_id: Mapped[str | None] = mapped_column(ForeignKey("vm_instance.id", ondelete="SET NULL"), nullable=True)
    vm_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="Allocating")
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    allocated: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    vlan: Mapped[VlanIpRange] = relationship(lazy="select")


class FirewallRule(Base):
    """CloudStack's ``firewall_rules``: every rule on a public address or a network's egress.
    ``purpose`` Firewall, PortForwarding, StaticNat, LoadBalancing; ``traffic_type`` Ingress or
    Egress; ``state`` Add (not applied yet), Active, Revoke (being removed from the router).
    ``related_id``: the port forward or load balancer rule a firewall rule was opened for
    (``openfirewall``); deleting that rule deletes it too."""

    __tablename__ = "firewall_rules"
    __table_args__ = (Index("ix_firewall_rules_network", "network_id", "purpose"),
                      Index("ix_firewall_rules_ip", "ip_address_id", "purpose"))
    id: Mapped[str] = _id_column()
    ip_address_id: Mapped[str | None] = mapped_column(ForeignKey("user_ip_address.id"), nullable=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("network.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    traffic_type: Mapped[str] = mapped_column(String(32), default="Ingress")
    protocol: Mapped[str] = mapped_column(String(16))
    start_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    end_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    icmp_type: Mapped[int | None] = mapped_column(Integer, nullable=True)
    icmp_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="Add")
    related_id: Mapped[str | None] = mapped_column(ForeignKey("firewall_rules.id", ondelete="SET NULL"),
                                                   nullable=True)
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = _created_column()


class FirewallRuleCidr(Base):
    """CloudStack's ``firewall_rules_cidrs`` (``source``: who may reach an ingress rule) and
    ``firewall_rules_dcidrs`` (``destination``: where an egress rule lets guests go)."""

    __tablename__ = "firewall_rules_cidrs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("firewall_rules.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="source")
    cidr: Mapped[str] = mapped_column(String(64))


class PortForwardingRule(Base):
    """``port_forwarding_rules``: the public address and ports of its ``firewall_rules`` row to the
    VM's guest address ``dest_ip`` and its ports (ranges of equal length)."""

    __tablename__ = "port_forwarding_rules"
    id: Mapped[str] = mapped_column(ForeignKey("firewall_rules.id", ondelete="CASCADE"), primary_key=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id"), index=True)
    dest_ip: Mapped[str] = mapped_column(String(64))
    dest_port_start: Mapped[int] = mapped_column(Integer)
    dest_port_end: Mapped[int] = mapped_column(Integer)


class LoadBalancingRule(Base):
    """``load_balancing``: the public port of its ``firewall_rules`` row spread over the member VMs'
    ``default_port_start`` by ``algorithm`` (roundrobin, leastconn, source)."""

    __tablename__ = "load_balancing_rules"
    id: Mapped[str] = mapped_column(ForeignKey("firewall_rules.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    default_port_start: Mapped[int] = mapped_column(Integer)
    default_port_end: Mapped[int] = mapped_column(Integer)
    lb_protocol: Mapped[str | None] = mapped_column(String(32), nullable=True)


class LoadBalancerVmMap(Base):
    """``load_balancer_vm_map``: a member VM of a load balancer rule (``revoke``: being removed)."""

    __tablename__ = "load_balancer_vm_map"
    __table_args__ = (UniqueConstraint("load_balancer_id", "vm_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    load_balancer_id: Mapped[str] = mapped_column(ForeignKey("load_balancing_rules.id", ondelete="CASCADE"),
                                                  index=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id"), index=True)
    vm_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoke: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(32), default="Add")
    created: Mapped[datetime] = _created_column()


class RouterPublicNic(Base):
    """The MAC of a router's NIC on a public range (``IpAddressTO.vifMacAddress``): one per router and
    public VLAN, kept so the router's public NIC keeps its MAC across restarts and replays."""

    __tablename__ = "router_public_nic"
    __table_args__ = (UniqueConstraint("router_id", "vlan_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    router_id: Mapped[str] = mapped_column(ForeignKey("domain_router.id", ondelete="CASCADE"))
    vlan_id: Mapped[str] = mapped_column(ForeignKey("vlan_ip_range.id"))
    mac_address: Mapped[str] = mapped_column(String(17), unique=True)



class ConsoleProxy(Base):
    """``console_proxy``: a running console proxy (``hvcloud console-proxy run``). It registers its
    public ``url`` and beats ``last_seen``; the server hands out consoles on a live proxy with the
    fewest ``active_sessions``."""

    __tablename__ = "console_proxy"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(1024))
    active_sessions: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = _created_column()
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False, index=True)


class ConsoleSession(Base):
    """``console_session``: one console token the server granted. The proxy that first presents
    ``token_id`` claims it (sets ``used``) in one UPDATE, so a token opens one console, whichever
    proxy sees it; ``closed``/``close_reason`` and the byte counts are written when it ends."""

    __tablename__ = "console_session"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    token_id: Mapped[str] = mapped_column(String(64), unique=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    protocol: Mapped[str] = mapped_column(String(8))
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created: Mapped[datetime] = _created_column()
    expires: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    used: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    proxy_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    proxy_client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    close_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    bytes_to_client: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_from_client: Mapped[int] = mapped_column(BigInteger, default=0)


class ConfigurationValue(Base):
    """``configuration_value``: a setting changed through ``updateConfiguration``. A ``global`` row
    (``scope_id`` empty) overrides the command-line/built-in value; a row of another scope (zone,
    cluster, account, domain) overrides the global value there, where the setting allows that scope."""

    __tablename__ = "configuration_value"
    __table_args__ = (UniqueConstraint("name", "scope", "scope_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(36), default="")
    value: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class ConfigurationVersion(Base):
    """``configuration_version``: one row, bumped with every change of ``configuration_value``, so each
    server finds out with one cheap read whether it must reload the settings."""

    __tablename__ = "configuration_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class Role(Base):
    """``role``: CloudStack's dynamic role. ``version`` grows with every change to the role or its
    rules (in the same transaction): each server process keeps the rules it compiled with the version
    it read, and the role row comes joined with the caller's account on every call."""

    __tablename__ = "role"
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    role_type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RolePermission(Base):
    """``role_permission``: one rule of a role (an API name, or a pattern with ``*``), allow or deny;
    the first rule in ``sort_order`` that matches a command decides."""

    __tablename__ = "role_permission"
    __table_args__ = (UniqueConstraint("role_id", "rule"),)
    id: Mapped[str] = _id_column()
    role_id: Mapped[str] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(255))
    permission: Mapped[str] = mapped_column(String(8))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[datetime] = _created_column()


class ResourceTag(Base):
    """CloudStack's ``resource_tags``: a user's key/value label on one resource. ``resource_type`` is
    CloudStack's name (``UserVm``, ``Volume``...), ``resource_id`` the resource's id (its uuid, as
    every hvcloud id); ``account_id``/``domain_id`` are the resource's owner, who sees the tag. The
    rows go with their resource (:mod:`hvcloud.server.orchestration.resource_tags`)."""

    __tablename__ = "resource_tag"
    __table_args__ = (UniqueConstraint("resource_type", "resource_id", "key", name="uq_resource_tag_key"),
                      Index("ix_resource_tag_type_key_value", "resource_type", "key", "value", "resource_id"),
                      Index("ix_resource_tag_account", "account_id", "created", "id"),
                      Index("ix_resource_tag_created", "created", "id"))
    id: Mapped[str] = _id_column()
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    customer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = _created_column()



class VmStats(Base):
    """``vm_stats``: the last statistics a VM's host reported for it (GetVmStatsCommand, every
    ``vm.stats.interval``), one row per VM, replaced on each collection and deleted with the VM.
    Counters are the driver's: KiB and I/O operations since the VM started, CPU in percent."""

    __tablename__ = "vm_stats"
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id", ondelete="CASCADE"), primary_key=True)
    host_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    cpu_used_percent: Mapped[float] = mapped_column(Float, default=0.0)
    network_read_kbs: Mapped[float] = mapped_column(Float, default=0.0)
    network_write_kbs: Mapped[float] = mapped_column(Float, default=0.0)
    disk_read_kbs: Mapped[float | None] = mapped_column(Float, nullable=True)
    disk_write_kbs: Mapped[float | None] = mapped_column(Float, nullable=True)
    disk_read_ios: Mapped[float | None] = mapped_column(Float, nullable=True)
    disk_write_ios: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_kbs: Mapped[float | None] = mapped_column(Float, nullable=True)
    collected: Mapped[datetime] = _created_column()


class InstanceGroup(Base):
    """CloudStack's ``instance_group``: a named set of an account's VMs (``createInstanceGroup``, or the
    ``group`` name of deployVirtualMachine/updateVirtualMachine); names are unique per account."""

    __tablename__ = "instance_group"
    __table_args__ = (UniqueConstraint("account_id", "name"),
                      Index("ix_instance_group_account_created", "account_id", "created", "id"))
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = _created_column()


class AffinityGroup(Base):
    """CloudStack's ``affinity_group``: ``type`` is ``host affinity`` (the members share a host) or
    ``host anti-affinity`` (each member on a host of its own); names are unique per account."""

    __tablename__ = "affinity_group"
    __table_args__ = (UniqueConstraint("account_id", "name"),
                      Index("ix_affinity_group_account_created", "account_id", "created", "id"))
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    group_type: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    created: Mapped[datetime] = _created_column()


class AffinityGroupVmMap(Base):
    """A VM's membership of an affinity group; ``vm_instance.affinity_group_count`` counts its rows."""

    __tablename__ = "affinity_group_vm_map"
    affinity_group_id: Mapped[str] = mapped_column(ForeignKey("affinity_group.id", ondelete="CASCADE"),
                                                   primary_key=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vm_instance.id", ondelete="CASCADE"), primary_key=True,
                                       index=True)


class Project(Base):
    """CloudStack's ``projects``: a project of a domain. Its resources belong to its own account
    (``project_account_id``, account type 5, no users); member accounts act for it
    (``project_account``). ``state`` is Active, Suspended, or Disabled while deleteProject cleans it
    up; ``removed`` is set once it is gone (the row stays, the name may be taken again)."""

    __tablename__ = "project"
    __table_args__ = (Index("uq_project_live_name", "domain_id", "name", unique=True,
                            sqlite_where=text(_LIVE), postgresql_where=text(_LIVE)),)
    id: Mapped[str] = _id_column()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ForeignKey("domain.id"))
    project_account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), unique=True)
    state: Mapped[str] = mapped_column(String(32), default="Active")
    created: Mapped[datetime] = _created_column()
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    domain: Mapped[Domain] = relationship(lazy="joined")


class ProjectAccount(Base):
    """A member account of a project, ``role`` Admin (may manage the project) or Regular."""

    __tablename__ = "project_account"
    __table_args__ = (UniqueConstraint("project_id", "account_id", name="uq_project_account"),)
    id: Mapped[str] = _id_column()
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("account.id"), index=True)
    role: Mapped[str] = mapped_column(String(32), default="Regular")
    created: Mapped[datetime] = _created_column()
    account: Mapped[Account] = relationship(lazy="joined")


class UsageEvent(Base):
    """CloudStack's ``usage_event``: a start or an end of something an account is charged for (a VM
    created, started, stopped, destroyed; a template stored in a zone or deleted there), written in
    the transaction that made the change. ``seq`` orders events of the same second. Volumes and public
    addresses need no events: their rows keep ``created``/``removed`` (``allocated``) for ever."""

    __tablename__ = "usage_event"
    __table_args__ = (Index("ix_usage_event_created", "created", "seq"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(32))
    created: Mapped[datetime] = _created_column()
    account_id: Mapped[str] = mapped_column(String(36))
    zone_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    resource_id: Mapped[str] = mapped_column(String(36), index=True)
    resource_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    offering_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    template_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class UsageRecord(Base):
    """One aggregated usage record (CloudStack's ``cloud_usage.cloud_usage``): what one resource cost
    its account in one aggregation period ``[start_date, end_date)``, in hours (``raw_usage``).
    Re-aggregating a period deletes its records and writes them again."""

    __tablename__ = "usage_record"
    __table_args__ = (Index("ix_usage_record_start", "start_date", "usage_type"),
                      Index("ix_usage_record_account_start", "account_id", "start_date"))
    id: Mapped[str] = _id_column()
    account_id: Mapped[str] = mapped_column(String(36))
    domain_id: Mapped[str] = mapped_column(String(36), index=True)
    zone_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    usage_type: Mapped[int] = mapped_column(Integer)
    usage_id: Mapped[str] = mapped_column(String(36))
    description: Mapped[str] = mapped_column(String(1024))
    raw_usage: Mapped[float] = mapped_column(Float)
    vm_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    offering_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    template_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    source_nat: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    start_date: Mapped[datetime] = mapped_column(UTCDateTime())
    end_date: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageJob(Base):
    """The usage aggregation's progress (one row, ``id`` 1): every period ending at or before
    ``aggregated_until`` has its records. Read and moved under a row lock in the transaction that
    writes the records, so a restart or a second server neither skips nor repeats a period."""

    __tablename__ = "usage_job"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aggregated_until: Mapped[datetime] = mapped_column(UTCDateTime())
    updated: Mapped[datetime] = _created_column()


def as_dict(obj: Base) -> dict[str, Any]:
    """Column values of a row, for debugging and tests."""
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}
