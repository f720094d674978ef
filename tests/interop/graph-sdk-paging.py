"""Microsoft's Python Graph SDK (msgraph-sdk), unmodified, against a dpo server: the first page of
dataPolicyOperations with $top, then msgraph-core's PageIterator following @odata.nextLink to the end.
Prints one JSON document of what it saw; tests/graph_sdk.rs checks it.
Environment: BASE_URL (the service root, e.g. http://127.0.0.1:PORT/v1.0), TOKEN, TOP."""

import asyncio
import json
import os
from urllib.parse import urlparse

from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from static_token import StaticToken
from msgraph.generated.data_policy_operations.data_policy_operations_request_builder import (
    DataPolicyOperationsRequestBuilder,
)
from msgraph_core.tasks.page_iterator import PageIterator


async def main():
    base = os.environ["BASE_URL"]
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(os.environ["TOKEN"], urlparse(base).hostname)))
    adapter.base_url = base
    client = GraphServiceClient(request_adapter=adapter)
    query = DataPolicyOperationsRequestBuilder.DataPolicyOperationsRequestBuilderGetQueryParameters(
        top=int(os.environ["TOP"])
    )
    first = await client.data_policy_operations.get(RequestConfiguration(query_parameters=query))
    ids = []

    def collect(operation):
        ids.append(operation.id)
        return True

    await PageIterator(first, adapter).iterate(collect)
    print(json.dumps({"firstPage": len(first.value), "firstNextLink": first.odata_next_link, "ids": ids}))


asyncio.run(main())
