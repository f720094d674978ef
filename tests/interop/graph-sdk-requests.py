"""Microsoft's Python Graph SDK (msgraph-sdk), unmodified, against a dpo server: creates a subject rights
request for a customer (client.security.subject_rights_requests), reads it back, lists and filters the
requests, updates it, adds notes and lists them; once a person approved it after the estimate (dpo's own action,
over plain HTTP: Graph has no API for it), waits for the report and downloads getFinalReport() and
getFinalAttachment(). Prints one JSON document of what it saw;
tests/subject_rights.rs checks it.
Environment: BASE_URL (the service root, e.g. http://127.0.0.1:PORT/v1.0), TOKEN."""

import asyncio
import datetime
import io
import json
import os
import zipfile
from urllib.parse import urlparse

from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.authored_note import AuthoredNote
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.data_subject import DataSubject
from msgraph.generated.models.data_subject_type import DataSubjectType
from msgraph.generated.models.identity import Identity
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.subject_rights_request import SubjectRightsRequest
from msgraph.generated.models.subject_rights_request_type import SubjectRightsRequestType
from msgraph.generated.security.subject_rights_requests.subject_rights_requests_request_builder import (
    SubjectRightsRequestsRequestBuilder,
)
from static_token import StaticToken


async def main():
    base = os.environ["BASE_URL"]
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(os.environ["TOKEN"], urlparse(base).hostname)))
    adapter.base_url = base
    client = GraphServiceClient(request_adapter=adapter)
    requests = client.security.subject_rights_requests

    due = datetime.datetime(2031, 1, 31, tzinfo=datetime.timezone.utc)
    created = await requests.post(
        SubjectRightsRequest(
            data_subject=DataSubject(email="Customer.One@Shop.Example", first_name="Casey", last_name="One", residency="DE"),
            data_subject_type=DataSubjectType.Customer,
            display_name="Access request of Casey One",
            description="Casey asked for a copy of everything the shop holds",
            internal_due_date_time=due,
            regulations=["GDPR"],
            type=SubjectRightsRequestType.Access,
            external_id="ticket-4711",
        )
    )
    got = await requests.by_subject_rights_request_id(created.id).get()
    # The deprecated /privacy paths the SDK still generates reach the same request.
    via_privacy = await client.privacy.subject_rights_requests.by_subject_rights_request_id(created.id).get()

    query = SubjectRightsRequestsRequestBuilder.SubjectRightsRequestsRequestBuilderGetQueryParameters(
        filter="dataSubject/email eq 'customer.one@shop.example' and type eq 'access'", count=True, top=10
    )
    listed = await requests.get(RequestConfiguration(query_parameters=query))

    patched = await requests.by_subject_rights_request_id(created.id).patch(
        SubjectRightsRequest(display_name="Access request of Casey One (verified)", assigned_to=Identity(id="dpo-officer", display_name="DPO"))
    )
    after_patch = await requests.by_subject_rights_request_id(created.id).get()

    notes = requests.by_subject_rights_request_id(created.id).notes
    first = await notes.post(AuthoredNote(content=ItemBody(content="Identity checked by phone", content_type=BodyType.Text)))
    await notes.post(AuthoredNote(content=ItemBody(content="<p>Sent the <b>form</b></p>", content_type=BodyType.Html)))
    noted = await notes.get()

    # The report is made in generateReport: until then the SDK's getFinalReport() gets Graph's 409.
    try:
        await requests.by_subject_rights_request_id(created.id).get_final_report.get()
        report = "answered"
    except Exception as error:
        report = getattr(error, "response_status_code", repr(error))

    # dpo edit: a person approves the request after its estimate (Graph does it in Purview's UI).
    import httpx

    async with httpx.AsyncClient() as http:
        approved = await http.post(
            f"{base}/security/subjectRightsRequests/{created.id}/approve",
            headers={"Authorization": f"Bearer {os.environ['TOKEN']}"},
            json={"comment": "verified"},
        )
        # The estimate may still be running: the approval applies once it waits.
        while approved.status_code == 409:
            await asyncio.sleep(0.1)
            approved = await http.post(
                f"{base}/security/subjectRightsRequests/{created.id}/approve",
                headers={"Authorization": f"Bearer {os.environ['TOKEN']}"},
                json={},
            )
    item = requests.by_subject_rights_request_id(created.id)
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        current = await item.get()
        stages = {s.stage.value: s.status.value for s in current.stages}
        if stages["generateReport"] == "completed" or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    final_report = (await item.get_final_report.get()).decode("utf-8")
    attachment = await item.get_final_attachment.get()
    names = zipfile.ZipFile(io.BytesIO(attachment)).namelist()

    print(json.dumps({
        "created": {
            "id": created.id,
            "status": created.status.value if created.status else None,
            "stages": [s.stage.value for s in created.stages],
            "createdBy": created.created_by.user.id if created.created_by and created.created_by.user else None,
            "due": created.internal_due_date_time.isoformat(),
            "email": created.data_subject.email,
        },
        "got": {"id": got.id, "displayName": got.display_name, "externalId": got.external_id, "history": len(got.history)},
        "listed": {"count": listed.odata_count, "ids": [r.id for r in listed.value]},
        "patched": {"displayName": patched.display_name if patched else None},
        "afterPatch": {"displayName": after_patch.display_name, "assignedTo": after_patch.assigned_to.id},
        "viaPrivacy": via_privacy.id,
        "report": report,
        "approved": approved.status_code,
        "final": {
            "stages": stages,
            "insight": current.insight.item_count if current.insight else None,
            "report": final_report,
            "zip": names,
        },
        "notes": {
            "first": {"id": first.id, "author": first.author.id, "content": first.content.content},
            "listed": [(n.content.content, n.content.content_type.value) for n in noted.value],
        },
    }))


asyncio.run(main())
