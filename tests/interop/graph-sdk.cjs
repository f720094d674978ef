// Microsoft's JavaScript Graph SDK (@microsoft/microsoft-graph-client), unmodified, against a dpo server:
// export, get and list. Prints one JSON document of what it saw; tests/graph_sdk.rs checks it.
// Environment: GRAPH_SDK (the package folder), BASE_URL (server root, no version), TOKEN, USER_ID, STORAGE.
const { Client, HTTPMessageHandler, ResponseType } = require(process.env.GRAPH_SDK);

const { BearerToken } = require("./bearer-token.cjs");

async function main() {
  const auth = new BearerToken(process.env.TOKEN);
  auth.setNext(new HTTPMessageHandler());
  const client = Client.initWithMiddleware({ baseUrl: process.env.BASE_URL, defaultVersion: "v1.0", middleware: auth });
  const api = (path) => client.api(path);
  const accepted = await api(`/users/${process.env.USER_ID}/exportPersonalData`)
    .responseType(ResponseType.RAW)
    .post({ storageLocation: process.env.STORAGE });
  const location = accepted.headers.get("location");
  if (!location) {
    throw new Error(`export answered ${accepted.status}: ${await accepted.text()}`);
  }
  const id = location.split("/").pop();
  const operation = await api(`/dataPolicyOperations/${id}`).select(["id", "status", "userId"]).get();
  const page = await api("/dataPolicyOperations")
    .filter(`userId eq '${process.env.USER_ID}'`)
    .count(true)
    .top(5)
    .get();
  let missing = null;
  try {
    await api("/dataPolicyOperations/01a20000-0000-7000-8000-000000000000").get();
  } catch (e) {
    missing = { statusCode: e.statusCode, code: e.code };
  }
  console.log(
    JSON.stringify({
      status: accepted.status,
      retryAfter: accepted.headers.get("retry-after"),
      location,
      operation,
      count: page["@odata.count"],
      listed: page.value.map((o) => o.id),
      missing,
    })
  );
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
