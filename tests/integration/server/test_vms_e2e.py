"""VMs and volumes end to end: ``hvcloud server run`` (SQLite and PostgreSQL), one simulator agent
process serving four hosts, the real ``cs`` client. Lifecycle, placement (capacity, overcommit, host
tags), a start that fails on some hosts and retries on another, 20 concurrent deploys with exact
capacity, volumes on running and stopped VMs, and a server SIGKILLed in the middle of deploys.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from hvcloud.server.db.models import TemplatePoolRef
from tests.integration.server.fault_scenarios import server_killed_mid_deploy
from tests.support.vm_stack import Cloud, job_result, simulator_cloud
from tests.support.wait import wait_for

HOSTS = 4


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    db_url = request.getfixturevalue("module_pg_database") if request.param == "postgresql" else None
    base = tmp_path_factory.mktemp(f"vms-{request.param}")
    with simulator_cloud(base, HOSTS, db_url) as (stack, images):
        iso = bytearray(0x9000)
        iso[0x8001:0x8006] = b"CD001"
        (base / "images" / "tools.iso").write_bytes(bytes(iso))
        stack.iso = stack.cs.registerIso(name="tools", displaytext="tools", url=images.url("tools.iso"),
                                         zoneid=stack.zone["id"], ispublic=True)["iso"][0]
        wait_for("the ISO download", lambda: stack.cs.listIsos(isofilter="all", id=stack.iso["id"])
                 ["iso"][0]["isready"])
        yield stack


def _offering(cs: CloudStack, name: str, **kw: Any) -> str:
    found = cs.listServiceOfferings(name=name).get("serviceoffering")
    if found:
        return str(found[0]["id"])
    return str(cs.createServiceOffering(name=name, displaytext=name, **kw)["serviceoffering"]["id"])


def _small(cs: CloudStack) -> str:
    return _offering(cs, "tiny-vm", cpunumber=1, cpuspeed=500, memory=256)


def _deploy(cloud: Cloud, **kw: Any) -> dict[str, Any]:
    params = {"serviceofferingid": _small(cloud.cs), "templateid": cloud.template["id"],
              "zoneid": cloud.zone["id"], **kw}
    return dict(cloud.cs.deployVirtualMachine(**params)["virtualmachine"])


def _destroy_all(cloud: Cloud) -> None:
    cs = cloud.cs
    for vm in cs.listVirtualMachines(listall=True, fetch_list=True):
        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    cs.updateHost(id=cloud.hosts[0]["id"], hosttags="")
    for i in range(HOSTS):
        cloud.agent.faults(i, {})


def test_lifecycle(cloud: Cloud) -> None:
    cs = cloud.cs
    disk = cs.listDiskOfferings(name="Small")["diskoffering"][0]
    userdata = base64.b64encode(b"#cloud-config\n").decode()
    vm = _deploy(cloud, name="web-1", displayname="Web one", diskofferingid=disk["id"], userdata=userdata)
    assert vm["state"] == "Running" and vm["name"] == "web-1" and vm["displayname"] == "Web one"
    assert vm["instancename"].startswith("i-") and vm["instancename"].endswith("-VM")
    assert vm["hostid"] in {h["id"] for h in cloud.hosts}
    nic = vm["nic"][0]
    assert nic["networkname"] == "cloudbr-guest" and nic["macaddress"].startswith("02:")
    assert vm["instancename"] in cloud.running_on_agent()

    volumes = {v["type"]: v for v in cs.listVolumes(virtualmachineid=vm["id"])["volume"]}
    assert volumes["ROOT"]["state"] == "Ready" and volumes["DATADISK"]["state"] == "Ready"
    assert volumes["DATADISK"]["deviceid"] == 1 and "attached" in volumes["DATADISK"]
    assert volumes["ROOT"]["storageid"] == cloud.pool["id"]
    files = cloud.agent_files()[cloud.pool["id"]]
    assert volumes["ROOT"]["path"] in files and volumes["DATADISK"]["path"] in files

    stopped = cs.stopVirtualMachine(id=vm["id"])["virtualmachine"]
    assert stopped["state"] == "Stopped" and "hostid" not in stopped
    assert vm["instancename"] not in cloud.running_on_agent()
    with pytest.raises(CloudStackApiException) as exc:
        cs.rebootVirtualMachine(id=vm["id"])
    assert exc.value.error["errorcode"] == 431
    assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    assert cs.rebootVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    listed = cs.listVirtualMachines(keyword="web", state="Running")["virtualmachine"]
    assert [v["id"] for v in listed] == [vm["id"]]
    assert cs.updateVirtualMachine(id=vm["id"], displayname="renamed")["virtualmachine"]["displayname"] == "renamed"

    destroyed = cs.destroyVirtualMachine(id=vm["id"])["virtualmachine"]
    assert destroyed["state"] == "Destroyed"
    assert vm["instancename"] not in cloud.running_on_agent()
    assert cs.recoverVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    big = _offering(cs, "bigger-vm", cpunumber=2, cpuspeed=500, memory=512)
    scaled = cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=big)["virtualmachine"]
    assert scaled["cpunumber"] == 2 and scaled["memory"] == 512
    assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    with pytest.raises(CloudStackApiException) as exc:
        cs.scaleVirtualMachine(id=vm["id"], serviceofferingid=_small(cs))
    assert exc.value.error["errorcode"] == 431
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    assert not cs.listVirtualMachines(id=vm["id"]).get("virtualmachine")
    files = cloud.agent_files()[cloud.pool["id"]]
    assert volumes["ROOT"]["path"] not in files, "the ROOT volume is deleted on expunge"
    data = cs.listVolumes(id=volumes["DATADISK"]["id"])["volume"][0]
    assert "virtualmachineid" not in data and data["state"] == "Ready", "data disks survive, detached"
    assert cs.deleteVolume(id=data["id"])["success"]
    assert volumes["DATADISK"]["path"] not in cloud.agent_files()[cloud.pool["id"]]
    with cloud.sessions()() as db:
        refs = db.query(TemplatePoolRef).filter_by(template_id=cloud.template["id"]).all()
        assert len(refs) == 1, "the template is copied to the pool once"
    cloud.capacity_matches_recount()


def test_bad_requests(cloud: Cloud) -> None:
    cs = cloud.cs
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, name="-bad-")
    assert exc.value.error["errorcode"] == 431
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, userdata="%%%not base64")
    assert exc.value.error["errorcode"] == 431
    with pytest.raises(CloudStackApiException) as exc:
        cs.startVirtualMachine(id="9b6d0c67-0000-4000-8000-000000000000")
    assert exc.value.error["errorcode"] == 431
    custom = cs.listServiceOfferings(name="Custom")
    if custom.get("serviceoffering"):
        with pytest.raises(CloudStackApiException):
            _deploy(cloud, serviceofferingid=custom["serviceoffering"][0]["id"])


def test_placement_capacity_overcommit_and_tags(cloud: Cloud) -> None:
    cs = cloud.cs
    hosts = cs.listHosts(zoneid=cloud.zone["id"], type="Routing")["host"]
    mem_mb = min(h["memorytotal"] for h in hosts) // (1024 * 1024)
    vm_mb = (mem_mb - 2048) // 2 - 64  # the simulated hosts keep 2 GiB for themselves
    half = _offering(cs, "half-host", cpunumber=1, cpuspeed=100, memory=vm_mb)
    deployed = [_deploy(cloud, serviceofferingid=half) for _ in range(2 * HOSTS)]
    per_host: dict[str, int] = {}
    for vm in deployed:
        per_host[vm["hostid"]] = per_host.get(vm["hostid"], 0) + 1
    assert sorted(per_host.values()) == [2] * HOSTS
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, serviceofferingid=half)
    assert exc.value.error["errorcode"] == 533 and "no host" in exc.value.error["errortext"]
    failed = [v for v in cs.listVirtualMachines(state="Error", fetch_list=True)]
    assert failed and all("statereason" in v.get("details", {}) for v in failed)
    cloud.capacity_matches_recount()
    memory = {c["type"]: c for c in cs.listCapacity(zoneid=cloud.zone["id"])["capacity"]}[0]
    assert memory["capacityused"] == 2 * HOSTS * vm_mb * 1024 * 1024
    _destroy_all(cloud)

    cpus, speed = min(h["cpunumber"] for h in hosts), min(h["cpuspeed"] for h in hosts)
    cpu_half = _offering(cs, "cpu-half-host", cpunumber=cpus, cpuspeed=speed // 2, memory=128)
    assert all(_deploy(cloud, serviceofferingid=cpu_half)["state"] == "Running" for _ in range(2 * HOSTS))
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, serviceofferingid=cpu_half)
    assert exc.value.error["errorcode"] == 533
    cs.updateZone(id=cloud.zone["id"], **{"details[0].key": "cpu.overprovisioning.factor",
                                          "details[0].value": "2.0"})
    try:
        more = [_deploy(cloud, serviceofferingid=cpu_half) for _ in range(2 * HOSTS)]
        assert all(v["state"] == "Running" for v in more), "overcommit 2.0 doubles the CPU to place"
        with pytest.raises(CloudStackApiException):
            _deploy(cloud, serviceofferingid=cpu_half)
        cpu = {c["type"]: c for c in cs.listCapacity(zoneid=cloud.zone["id"])["capacity"]}[1]
        assert cpu["capacitytotal"] == 2 * sum(h["cpunumber"] * h["cpuspeed"] for h in hosts)
    finally:
        cs.updateZone(id=cloud.zone["id"], **{"details[0].key": "cpu.overprovisioning.factor",
                                              "details[0].value": "1.0"})
    _destroy_all(cloud)

    tagged = _offering(cs, "gpu-vm", cpunumber=1, cpuspeed=100, memory=128, hosttags="gpu")
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, serviceofferingid=tagged)
    assert exc.value.error["errorcode"] == 533
    cs.updateHost(id=cloud.hosts[2]["id"], hosttags="gpu")
    placed = {_deploy(cloud, serviceofferingid=tagged)["hostid"] for _ in range(3)}
    assert placed == {cloud.hosts[2]["id"]}
    cs.updateHost(id=cloud.hosts[2]["id"], hosttags="")
    _destroy_all(cloud)
    cloud.capacity_matches_recount()


def test_start_failure_retries_on_another_host(cloud: Cloud) -> None:
    for i in range(HOSTS - 1):
        cloud.agent.faults(i, {"StartCommand": {"mode": "fail", "message": "disk on fire"}})
    try:
        vms = [_deploy(cloud) for _ in range(3)]
    finally:
        for i in range(HOSTS):
            cloud.agent.faults(i, {})
    assert {v["hostid"] for v in vms} == {cloud.hosts[HOSTS - 1]["id"]}
    assert all(v["state"] == "Running" for v in vms)
    running = cloud.running_on_agent()
    assert all(v["instancename"] in running for v in vms)
    cloud.capacity_matches_recount()
    for i in range(HOSTS):
        cloud.agent.faults(i, {"StartCommand": {"mode": "fail", "message": "every host is broken"}})
    try:
        with pytest.raises(CloudStackApiException) as exc:
            _deploy(cloud)
        assert "every host is broken" in exc.value.error["errortext"]
    finally:
        for i in range(HOSTS):
            cloud.agent.faults(i, {})
    cloud.capacity_matches_recount()
    errored = cloud.cs.listVirtualMachines(state="Error", fetch_list=True)
    assert errored and all(not v.get("hostid") for v in errored)
    live = {v.path for v in cloud.live_volumes() if v.vm_id in {e["id"] for e in errored}}
    assert live == set(), "a failed deploy leaves no volumes behind"
    _destroy_all(cloud)


def test_concurrent_deploys_keep_capacity_exact(cloud: Cloud) -> None:
    cs = cloud.cs
    offering = _small(cs)
    jobs: list[str] = []
    lock = threading.Lock()

    def submit() -> None:
        own = CloudStack(endpoint=cs.endpoint, key=cs.key, secret=cs.secret, timeout=60)
        job = own.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                       zoneid=cloud.zone["id"])
        with lock:
            jobs.append(job["jobid"])

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = [job_result(cs, j) for j in jobs]
    assert all(r["jobstatus"] == 1 for r in results), [r.get("jobresult") for r in results if r["jobstatus"] != 1]
    cloud.capacity_matches_recount()
    cpu = {c["type"]: c for c in cs.listCapacity(zoneid=cloud.zone["id"])["capacity"]}[1]
    assert cpu["capacityused"] == 20 * 500
    _destroy_all(cloud)
    cloud.capacity_matches_recount()


def test_affinity_groups_place_vms_on_real_hosts(cloud: Cloud) -> None:
    """Anti-affinity: one member per host, the next refused with 533 (deploy and start); affinity: every
    member on the first one's host, also after a stop and start; concurrent deploys of one
    anti-affinity group never share a host."""
    cs = cloud.cs
    spread = cs.createAffinityGroup(name="spread", type="host anti-affinity")["affinitygroup"]
    members = [_deploy(cloud, affinitygroupids=spread["id"]) for _ in range(HOSTS)]
    assert {v["hostid"] for v in members} == {h["id"] for h in cloud.hosts}
    assert all(v["affinitygroup"][0]["id"] == spread["id"] for v in members)
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, affinitygroupnames="spread")
    assert exc.value.error["errorcode"] == 533 and "anti-affinity group spread" in exc.value.error["errortext"]
    cs.stopVirtualMachine(id=members[0]["id"])
    loose = _deploy(cloud, startvm=False, affinitygroupids=spread["id"])
    assert cs.startVirtualMachine(id=loose["id"])["virtualmachine"]["hostid"] == members[0]["hostid"]
    with pytest.raises(CloudStackApiException) as exc:
        cs.startVirtualMachine(id=members[0]["id"])
    assert exc.value.error["errorcode"] == 533
    _destroy_all(cloud)

    together = cs.createAffinityGroup(name="together", type="host affinity")["affinitygroup"]
    first = _deploy(cloud, affinitygroupids=together["id"])
    others = [_deploy(cloud, affinitygroupids=together["id"]) for _ in range(3)]
    assert {v["hostid"] for v in others} == {first["hostid"]}
    cs.stopVirtualMachine(id=others[0]["id"])
    assert cs.startVirtualMachine(id=others[0]["id"])["virtualmachine"]["hostid"] == first["hostid"]
    _destroy_all(cloud)

    jobs: list[str] = []
    lock = threading.Lock()

    def submit() -> None:
        own = CloudStack(endpoint=cs.endpoint, key=cs.key, secret=cs.secret, timeout=60)
        job = own.deployVirtualMachine(serviceofferingid=_small(own), templateid=cloud.template["id"],
                                       zoneid=cloud.zone["id"], affinitygroupids=spread["id"])
        with lock:
            jobs.append(job["jobid"])

    threads = [threading.Thread(target=submit) for _ in range(HOSTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = [job_result(cs, j) for j in jobs]
    placed = [r["jobresult"]["virtualmachine"]["hostid"] for r in results if r["jobstatus"] == 1]
    assert len(placed) == len(set(placed)), "two members of an anti-affinity group share a host"
    _destroy_all(cloud)
    cs.deleteAffinityGroup(id=spread["id"])
    cs.deleteAffinityGroup(id=together["id"])
    cloud.capacity_matches_recount()


def test_volumes_on_running_and_stopped_vms(cloud: Cloud) -> None:
    cs = cloud.cs
    disk = cs.listDiskOfferings(name="Small")["diskoffering"][0]
    vm = _deploy(cloud)
    created = cs.createVolume(name="extra", diskofferingid=disk["id"], zoneid=cloud.zone["id"])["volume"]
    assert created["state"] == "Allocated" and "virtualmachineid" not in created
    attached = cs.attachVolume(id=created["id"], virtualmachineid=vm["id"])["volume"]
    assert attached["state"] == "Ready" and attached["virtualmachineid"] == vm["id"] and attached["deviceid"] == 1
    assert attached["path"] in cloud.agent_files()[cloud.pool["id"]]
    with pytest.raises(CloudStackApiException) as exc:
        cs.deleteVolume(id=created["id"])
    assert exc.value.error["errorcode"] == 536
    detached = cs.detachVolume(id=created["id"])["volume"]
    assert "virtualmachineid" not in detached
    cs.stopVirtualMachine(id=vm["id"])
    second = cs.createVolume(name="cold", diskofferingid=disk["id"], zoneid=cloud.zone["id"])["volume"]
    cold = cs.attachVolume(id=second["id"], virtualmachineid=vm["id"])["volume"]
    assert cold["state"] == "Allocated" and cold["virtualmachineid"] == vm["id"], "stopped VM: database only"
    cs.attachVolume(id=created["id"], virtualmachineid=vm["id"])
    cs.startVirtualMachine(id=vm["id"])
    states = {v["id"]: v for v in cs.listVolumes(virtualmachineid=vm["id"])["volume"]}
    assert states[second["id"]]["state"] == "Ready" and states[created["id"]]["state"] == "Ready"
    assert {states[second["id"]]["deviceid"], states[created["id"]]["deviceid"]} == {1, 2}
    custom = cs.listDiskOfferings(name="Custom")["diskoffering"][0]
    grown = cs.resizeVolume(id=created["id"], diskofferingid=custom["id"], size=20)["volume"]
    assert grown["state"] == "Ready" and grown["size"] == 20 << 30 and grown["diskofferingid"] == custom["id"]
    assert cloud.agent_file(cloud.pool["id"], grown["path"])["virtual"] == 20 << 30
    with pytest.raises(CloudStackApiException) as exc:
        cs.resizeVolume(id=created["id"], size=10, shrinkok=True)
    assert exc.value.error["errorcode"] == 431 and "running; stop it first" in exc.value.error["errortext"]
    cloud.capacity_matches_recount()
    cs.stopVirtualMachine(id=vm["id"])
    shrunk = cs.resizeVolume(id=created["id"], size=10, shrinkok=True)["volume"]
    assert shrunk["size"] == 10 << 30 and cloud.agent_file(cloud.pool["id"], grown["path"])["virtual"] == 10 << 30
    cloud.capacity_matches_recount()
    cs.startVirtualMachine(id=vm["id"])
    loose = cs.createVolume(name="loose", diskofferingid=disk["id"], zoneid=cloud.zone["id"])["volume"]
    cs.resizeVolume(id=loose["id"], diskofferingid=custom["id"], size=40)
    assert cs.listVolumes(id=loose["id"])["volume"][0]["size"] == 40 << 30
    assert cs.deleteVolume(id=loose["id"])["success"]
    for volume_id in (created["id"], second["id"]):
        cs.detachVolume(id=volume_id)
        assert cs.deleteVolume(id=volume_id)["success"]
    files = cloud.agent_files()[cloud.pool["id"]]
    assert states[second["id"]]["path"] not in files and states[created["id"]]["path"] not in files
    _destroy_all(cloud)
    cloud.capacity_matches_recount()


def test_isos_deploy_attach_and_detach(cloud: Cloud) -> None:
    """A VM deployed from an ISO gets a blank ROOT disk of the disk offering's size and boots with the
    ISO in its drive; attachIso/detachIso change the drive of a running VM at once and of a stopped
    VM at its next start."""
    cs = cloud.cs
    iso = cloud.iso
    disk = cs.listDiskOfferings(name="Small")["diskoffering"][0]
    with pytest.raises(CloudStackApiException) as exc:
        _deploy(cloud, templateid=iso["id"])
    assert exc.value.error["errorcode"] == 431 and "disk offering" in exc.value.error["errortext"]
    vm = _deploy(cloud, templateid=iso["id"], diskofferingid=disk["id"])
    assert vm["state"] == "Running" and vm["isoid"] == iso["id"] and "templateid" not in vm
    root = cs.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    assert root["state"] == "Ready" and root["size"] == disk["disksize"] << 30
    assert cloud.agent_file(cloud.pool["id"], root["path"])["backing"] is None, "a blank ROOT disk, no clone"
    name = vm["instancename"]
    assert (cloud.agent_cdrom(name) or "").endswith(f"{iso['id']}.iso")

    with pytest.raises(CloudStackApiException) as exc:
        cs.attachIso(id=iso["id"], virtualmachineid=vm["id"])
    assert exc.value.error["errorcode"] == 431 and "already has an ISO" in exc.value.error["errortext"]
    with pytest.raises(CloudStackApiException) as exc:
        cs.attachIso(id=cloud.template["id"], virtualmachineid=vm["id"])
    assert exc.value.error["errorcode"] == 431
    detached = cs.detachIso(virtualmachineid=vm["id"])["virtualmachine"]
    assert "isoid" not in detached and cloud.agent_cdrom(name) is None
    with pytest.raises(CloudStackApiException) as exc:
        cs.detachIso(virtualmachineid=vm["id"])
    assert exc.value.error["errorcode"] == 431 and "no ISO" in exc.value.error["errortext"]
    attached = cs.attachIso(id=iso["id"], virtualmachineid=vm["id"])["virtualmachine"]
    assert attached["isoid"] == iso["id"] and (cloud.agent_cdrom(name) or "").endswith(f"{iso['id']}.iso")

    cs.stopVirtualMachine(id=vm["id"])
    assert "isoid" not in cs.detachIso(virtualmachineid=vm["id"])["virtualmachine"]
    cs.startVirtualMachine(id=vm["id"])
    assert cloud.agent_cdrom(name) is None, "the ISO detached while stopped is not in the next start"
    cs.stopVirtualMachine(id=vm["id"])
    assert cs.attachIso(id=iso["id"], virtualmachineid=vm["id"])["virtualmachine"]["isoid"] == iso["id"]
    cs.startVirtualMachine(id=vm["id"])
    assert (cloud.agent_cdrom(name) or "").endswith(f"{iso['id']}.iso"), "the ISO attached while stopped is inserted"

    plain = _deploy(cloud)
    assert cs.attachIso(id=iso["id"], virtualmachineid=plain["id"])["virtualmachine"]["isoid"] == iso["id"]
    assert (cloud.agent_cdrom(plain["instancename"]) or "").endswith(f"{iso['id']}.iso")
    assert cs.detachIso(virtualmachineid=plain["id"])["virtualmachine"].get("isoid") is None
    _destroy_all(cloud)
    cloud.capacity_matches_recount()


def test_power_sync_stops_a_vm_powered_off_behind_the_cloud(cloud: Cloud) -> None:
    cs = cloud.cs
    vm = _deploy(cloud)
    index = next(i for i, h in enumerate(cloud.hosts) if h["id"] == vm["hostid"])
    answer = cloud.agent.send_body(index, "com.cloud.agent.api.StopCommand",
                                   {"vmName": vm["instancename"], "forceStop": True})
    assert answer["result"]
    stopped = wait_for("power sync to notice", lambda: next(
        (v for v in cs.listVirtualMachines(id=vm["id"])["virtualmachine"] if v["state"] == "Stopped"), None), 60)
    assert "its host" in stopped["details"]["statereason"] and "hostid" not in stopped
    cloud.capacity_matches_recount()
    assert cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running"
    _destroy_all(cloud)


def test_host_maintenance_refuses_running_vms_or_force_stops_them(cloud: Cloud) -> None:
    cs = cloud.cs
    host = cloud.hosts[1]
    vm = _deploy(cloud, hostid=host["id"])
    with pytest.raises(CloudStackApiException) as refused:
        cs.prepareHostForMaintenance(id=host["id"])
    assert vm["instancename"] in str(refused.value) and "ForceStop" in str(refused.value)
    assert cs.listHosts(id=host["id"])["host"][0]["resourcestate"] == "ErrorInMaintenance"
    assert cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["state"] == "Running"
    assert cs.cancelHostMaintenance(id=host["id"])["host"]["resourcestate"] == "Enabled"

    cs.stopVirtualMachine(id=vm["id"])
    assert cs.prepareHostForMaintenance(id=host["id"])["host"]["resourcestate"] == "Maintenance"
    with pytest.raises(CloudStackApiException):
        _deploy(cloud, hostid=host["id"])
    placed = _deploy(cloud)
    assert placed["hostid"] != host["id"]
    with pytest.raises(CloudStackApiException, match="already in maintenance"):
        cs.prepareHostForMaintenance(id=host["id"])
    cs.cancelHostMaintenance(id=host["id"])
    cs.startVirtualMachine(id=vm["id"], hostid=host["id"])

    cloud.server.stop()
    cloud.restart_server("--setting", "host.maintenance.local.storage.strategy=ForceStop")
    try:
        cs = cloud.cs
        assert cs.prepareHostForMaintenance(id=host["id"])["host"]["resourcestate"] == "Maintenance"
        stopped = cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
        assert stopped["state"] == "Stopped" and "hostid" not in stopped
        assert vm["instancename"] not in cloud.running_on_agent()
        cloud.capacity_matches_recount()
        cs.cancelHostMaintenance(id=host["id"])
    finally:
        cloud.server.stop()
        cloud.restart_server()
    _destroy_all(cloud)
    cloud.capacity_matches_recount()


def test_keys_user_data_and_passwords_with_the_cs_client(cloud: Cloud) -> None:
    """issue 15: a password-enabled template deployed and started with a key pair and registered user
    data; the job's answer carries the password once, ``getVMPassword`` gives it encrypted with the
    key; resets need a stopped VM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    cs = cloud.cs
    private = cs.createSSHKeyPair(name="e2e-key")["keypair"]["privatekey"]
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)

    def decrypt(vm_id: str) -> str:
        encrypted = cs.getVMPassword(id=vm_id)["password"]["encryptedpassword"]
        return key.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()).decode()

    content = base64.b64encode(b"#cloud-config\nhostname: {{ role }}\n").decode()
    data = cs.registerUserData(name="e2e-data", userdata=content, params="role")["userdata"]
    cs.updateTemplate(id=cloud.template["id"], passwordenabled=True)
    try:
        vm = _deploy(cloud, keypair="e2e-key", userdataid=data["id"], **{"userdatadetails[0].role": "web"})
        assert vm["state"] == "Running" and vm["keypairs"] == "e2e-key" and vm["userdataname"] == "e2e-data"
        assert decrypt(vm["id"]) == vm["password"]
        assert "password" not in cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]
        assert cs.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]["userdata"] == content
        with pytest.raises(CloudStackApiException) as exc:
            cs.resetPasswordForVirtualMachine(id=vm["id"])
        assert exc.value.error["errorcode"] == 431
        with pytest.raises(CloudStackApiException) as exc:
            cs.deleteUserData(id=data["id"])
        assert exc.value.error["errorcode"] == 530
        cs.stopVirtualMachine(id=vm["id"])
        reset = cs.resetPasswordForVirtualMachine(id=vm["id"])["virtualmachine"]
        assert reset["password"] != vm["password"] and decrypt(vm["id"]) == reset["password"]
        started = cs.startVirtualMachine(id=vm["id"])["virtualmachine"]
        assert started["state"] == "Running" and "password" not in started
        cs.destroyVirtualMachine(id=vm["id"], expunge=True)
        assert cs.deleteUserData(id=data["id"])["success"]
        assert cs.deleteSSHKeyPair(name="e2e-key")["success"]
    finally:
        cs.updateTemplate(id=cloud.template["id"], passwordenabled=False)
    _destroy_all(cloud)
    cloud.capacity_matches_recount()


def test_server_killed_mid_deploy_recovers(cloud: Cloud) -> None:
    """SIGKILL the server while deploys wait on a slow StartCommand; after the restart every VM is
    Running or rolled back with a reason, no volume is orphaned, and capacity equals a recount (the
    shared fault scenario; ``tests/integration/faults`` runs it with 100 deploys)."""
    result = server_killed_mid_deploy(cloud, deploys=6)
    assert result.violations == []
    assert result.succeeded + result.rolled_back == 6
    _destroy_all(cloud)
    cloud.capacity_matches_recount()
