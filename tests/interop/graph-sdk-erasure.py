"""Microsoft's Python Graph SDK (msgraph-sdk), unmodified, against a dpo server: creates a subject rights
request of type delete (client.security.subject_rights_requests), reads its estimate once approval waits,
has a second administrator approve it (dpo's own action, over plain HTTP: Graph has no API for it), waits
for the report and downloads getFinalReport(). Prints one JSON document of what it saw; tests/erasure.rs
checks it.
Environment: BASE_URL (the service root, e.g. http://127.0.0.1:PORT/v1.0), TOKEN (the creator's),
SECOND_TOKEN (another administrator's), EMAIL (the person's)."""

import asyncio
import json
import os
from urllib.parse import urlparse

import httpx
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.data_subject import DataSubject
from msgraph.generated.models.data_subject_type import DataSubjectType
from msgraph.generated.models.subject_rights_request import SubjectRightsRequest
from msgraph.generated.models.subject_rights_request_type import SubjectRightsRequestType
from static_token import StaticToken


async def wait_for(item, stage, status):
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        current = await item.get()
        stages = {s.stage.value: s.status.value for s in current.stages}
        if stages.get(stage) == status or asyncio.get_running_loop().time() > deadline:
            return current, stages
        await asyncio.sleep(0.1)


async def main():
    base = os.environ["BASE_URL"]
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(os.environ["TOKEN"], urlparse(base).hostname)))
    adapter.base_url = base
    requests = GraphServiceClient(request_adapter=adapter).security.subject_rights_requests

    created = await requests.post(
        SubjectRightsRequest(
            data_subject=DataSubject(email=os.environ["EMAIL"], first_name="Casey"),
            data_subject_type=DataSubjectType.Customer,
            display_name="Erase Casey",
            description="Casey asked to be forgotten",
            regulations=["GDPR"],
            type=SubjectRightsRequestType.Delete,
        )
    )
    item = requests.by_subject_rights_request_id(created.id)
    estimated, _ = await wait_for(item, "approval", "current")

    async with httpx.AsyncClient() as http:
        url = f"{base}/security/subjectRightsRequests/{created.id}/approve"
        by_creator = await http.post(url, headers={"Authorization": f"Bearer {os.environ['TOKEN']}"}, json={})
        by_second = await http.post(url, headers={"Authorization": f"Bearer {os.environ['SECOND_TOKEN']}"}, json={"comment": "checked"})
    final, stages = await wait_for(item, "generateReport", "completed")
    report = (await item.get_final_report.get()).decode("utf-8")

    print(json.dumps({
        "type": created.type.value,
        "stages": [s.stage.value for s in created.stages],
        "estimate": {
            "itemCount": estimated.insight.item_count,
            "perSource": {p.name: p.value for p in estimated.insight.product_item_counts},
        },
        "approvedByCreator": by_creator.status_code,
        "approvedBySecond": by_second.status_code,
        "final": {"stages": stages, "itemCount": final.insight.item_count},
        "report": report,
    }))


asyncio.run(main())
