"""Microsoft's Python Graph SDK (msgraph-sdk), unmodified, with its default middleware (kiota's
RetryHandler among it), against a dpo server that throttles: every call must succeed, the SDK waiting as
each 429's Retry-After says. Prints {"ok": <calls that succeeded>}.
Environment: BASE_URL (the service root, e.g. http://127.0.0.1:PORT/v1.0), TOKEN, CALLS."""

import asyncio
import json
import os
from urllib.parse import urlparse

from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from static_token import StaticToken


async def main():
    base = os.environ["BASE_URL"]
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(os.environ["TOKEN"], urlparse(base).hostname)))
    adapter.base_url = base
    client = GraphServiceClient(request_adapter=adapter)
    ok = 0
    for _ in range(int(os.environ["CALLS"])):
        page = await client.data_policy_operations.get()
        if page is not None and page.value is not None:
            ok += 1
    print(json.dumps({"ok": ok}))


asyncio.run(main())
