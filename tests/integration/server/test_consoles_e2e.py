"""createConsoleEndpoint end to end: ``hvcloud server run`` and one simulator agent process, the
real ``cs`` client. The server asks the VM's host for its console (GetVncPortCommand over the agent
wire), and the token it answers opens, under the key derived from the server's ``secret.key``, to a
grant naming the simulated VM's VNC address, port and password; the ``console_session`` row is
there for a proxy to claim."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from cs import CloudStackApiException
from PIL import Image
from sqlalchemy import select

from hvcloud.console_proxy.tokens import TOKEN_PURPOSE, TokenSigner
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import ConsoleProxy, ConsoleSession, VMInstance
from tests.support.rfb_socket import Rfb
from tests.support.vm_stack import Cloud, simulator_cloud

PROXY = "http://127.0.0.1:18443"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with simulator_cloud(tmp_path_factory.mktemp("consoles")) as (made, _images):
        yield made


def test_console_endpoint_through_the_agent(cloud: Cloud) -> None:
    cs = cloud.cs
    offering = cs.createServiceOffering(name="con", displaytext="con", cpunumber=1, cpuspeed=500,
                                        memory=256)["serviceoffering"]["id"]
    vm = cs.deployVirtualMachine(serviceofferingid=offering, templateid=cloud.template["id"],
                                 zoneid=cloud.zone["id"])["virtualmachine"]
    assert vm["state"] == "Running"
    with pytest.raises(CloudStackApiException):
        cs.createConsoleEndpoint(virtualmachineid="0b7e3c3e-0000-4000-8000-000000000000")
    refused = cs.createConsoleEndpoint(virtualmachineid=vm["id"])["consoleendpoint"]
    assert refused["success"] is False and "No console proxy" in refused["details"]

    with cloud.sessions().begin() as db:
        db.add(ConsoleProxy(name="p1", url=PROXY))
    endpoint = cs.createConsoleEndpoint(virtualmachineid=vm["id"])["consoleendpoint"]
    assert endpoint["success"] is True and endpoint["url"].startswith(PROXY + "/console?token=")
    assert endpoint["websocket"]["path"] == "/websockify" and endpoint["websocket"]["port"] == "18443"
    token = parse_qs(urlsplit(endpoint["url"]).query)["token"][0]
    assert token == endpoint["websocket"]["token"]

    box = SecretBox.from_data_dir(cloud.server.data_dir)
    grant = TokenSigner(box.derive_key(TOKEN_PURPOSE)).open(token)
    with cloud.sessions()() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None and row.vnc_password_enc is not None
        instance_name, password = row.instance_name, box.decrypt(row.vnc_password_enc)
        [session] = db.scalars(select(ConsoleSession)).all()
    assert (grant.vm_id, grant.protocol, grant.vm_name) == (vm["id"], "vnc", instance_name)
    # the grant names the simulated VM's live VNC server, which takes the VM's password
    rfb = Rfb(grant.port, grant.host)
    try:
        assert rfb.login(password) == 0
        width, height, _pf, _name = rfb.init()
        assert (width, height) == (640, 480)
    finally:
        rfb.close()
    assert grant.host == cloud.hosts[0]["ipaddress"] and grant.vnc_password == password
    assert session.token_id == grant.token_id and session.used is None and session.vm_id == vm["id"]

    # the thumbnail comes from the agent's GetVmThumbnailCommand: the simulator's drawn 4:3 screen
    shot = cs.getVirtualMachineThumbnail(virtualmachineid=vm["id"], width=200, height=200)["thumbnail"]
    assert (shot["virtualmachineid"], shot["mimetype"]) == (vm["id"], "image/png")
    image = Image.open(io.BytesIO(base64.b64decode(shot["image"])))
    assert image.format == "PNG" and image.size == (200, 150) == (shot["width"], shot["height"])
    assert len(set(image.convert("RGB").getdata())) > 2
