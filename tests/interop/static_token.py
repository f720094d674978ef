"""The test's bearer token for Microsoft's Python Graph SDK, for the test server's host only
(azure-identity would ask Entra ID for one). Shared by the graph-sdk-*.py scripts."""

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator


class StaticToken(AccessTokenProvider):
    """The test's token, for the test server's host only."""

    def __init__(self, token: str, host: str):
        self.token = token
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token

    def get_allowed_hosts_validator(self):
        return self.validator
