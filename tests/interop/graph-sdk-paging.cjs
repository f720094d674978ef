// Microsoft's JavaScript Graph SDK (@microsoft/microsoft-graph-client), unmodified, against a dpo server:
// the first page of dataPolicyOperations with $top, then the SDK's PageIterator following @odata.nextLink
// to the end. Prints one JSON document of what it saw; tests/graph_sdk.rs checks it.
// Environment: GRAPH_SDK (the package folder), BASE_URL (server root, no version), TOKEN, TOP.
const { Client, HTTPMessageHandler, PageIterator } = require(process.env.GRAPH_SDK);
const { BearerToken } = require("./bearer-token.cjs");

async function main() {
  const auth = new BearerToken(process.env.TOKEN);
  auth.setNext(new HTTPMessageHandler());
  const client = Client.initWithMiddleware({ baseUrl: process.env.BASE_URL, defaultVersion: "v1.0", middleware: auth });
  const first = await client.api("/dataPolicyOperations").top(Number(process.env.TOP)).get();
  const ids = [];
  const iterator = new PageIterator(client, first, (operation) => {
    ids.push(operation.id);
    return true;
  });
  await iterator.iterate();
  console.log(JSON.stringify({ firstPage: first.value.length, firstNextLink: first["@odata.nextLink"], ids }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e, JSON.stringify(e));
  process.exit(1);
});
