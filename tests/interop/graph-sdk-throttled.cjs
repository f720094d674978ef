// Microsoft's JavaScript Graph SDK (@microsoft/microsoft-graph-client), unmodified, with its own
// RetryHandler in the middleware chain, against a dpo server that throttles: every call must succeed,
// the SDK waiting as each 429's Retry-After says. Prints {"ok": <calls that succeeded>}.
// Environment: GRAPH_SDK (the package folder), BASE_URL (server root, no version), TOKEN, CALLS.
const { Client, HTTPMessageHandler, RetryHandler, RetryHandlerOptions } = require(process.env.GRAPH_SDK);
const { BearerToken } = require("./bearer-token.cjs");

async function main() {
  const auth = new BearerToken(process.env.TOKEN);
  const retry = new RetryHandler(new RetryHandlerOptions(1, 5));
  auth.setNext(retry);
  retry.setNext(new HTTPMessageHandler());
  const client = Client.initWithMiddleware({ baseUrl: process.env.BASE_URL, defaultVersion: "v1.0", middleware: auth });
  let ok = 0;
  for (let i = 0; i < Number(process.env.CALLS); i++) {
    const page = await client.api("/dataPolicyOperations").get();
    if (Array.isArray(page.value)) ok++;
  }
  console.log(JSON.stringify({ ok }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e, JSON.stringify(e));
  process.exit(1);
});
