//! Wire-level behaviour checked with plain HTTP, below what the generated client shows.

use crate::common::{TestServer, sas_url};
use serde_json::{Value, json};

async fn odata_error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("an OData error body is JSON");
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    (status, body)
}

#[tokio::test]
async fn count_is_plain_text_and_export_answers_202_without_a_body() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let accepted = http
        .post(server.url("/users/dave/exportPersonalData"))
        .json(&json!({"storageLocation": sas_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    assert!(accepted.headers().contains_key("request-id"));
    assert_eq!(accepted.text().await.unwrap(), "");

    let count = http.get(server.url("/dataPolicyOperations/$count")).send().await.unwrap();
    assert!(count.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(count.text().await.unwrap(), "1");
    // Percent-encoded `$` reaches the same operation.
    let encoded = http.get(server.url("/dataPolicyOperations/%24count")).send().await.unwrap();
    assert_eq!(encoded.text().await.unwrap(), "1");
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_odata_errors_and_stores_nothing() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let post = |body: Value| http.post(server.url("/users/erin/exportPersonalData")).json(&body).send();

    let (status, body) = odata_error(post(json!({})).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["target"], "storageLocation");
    let (status, _) = odata_error(post(json!({"storageLocation": "  "})).await.unwrap()).await;
    assert_eq!(status, 400);
    let (status, _) = odata_error(post(json!({"storageLocation": "ftp://x"})).await.unwrap()).await;
    assert_eq!(status, 400);
    let malformed = http
        .post(server.url("/users/erin/exportPersonalData"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, _) = odata_error(malformed).await;
    assert_eq!(status, 400);

    let (status, body) =
        odata_error(http.get(server.url("/dataPolicyOperations?$top=abc")).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    let (status, _) =
        odata_error(http.get(server.url("/dataPolicyOperations?$select=nope")).send().await.unwrap()).await;
    assert_eq!(status, 400);
    let (status, _) = odata_error(http.get(server.url("/dataPolicyOperations?$expand=x")).send().await.unwrap()).await;
    assert_eq!(status, 400);
    // An exploded array ($select twice) is not OData: refused, not half-read.
    let (status, _) =
        odata_error(http.get(server.url("/dataPolicyOperations?$select=id&$select=status")).send().await.unwrap())
            .await;
    assert_eq!(status, 400);
    let (status, body) =
        odata_error(http.get(server.url("/dataPolicyOperations/not-a-guid")).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(body["error"]["innerError"]["request-id"].is_string(), "{body}");
    let (status, body) = odata_error(
        http.get(server.url("/dataPolicyOperations/d007e3da-cd9b-4b02-8d66-422403c53e3f")).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");

    let count = http.get(server.url("/dataPolicyOperations/$count")).send().await.unwrap();
    assert_eq!(count.text().await.unwrap(), "0", "nothing stored from rejected requests");
    server.stop().await;
}

#[tokio::test]
async fn paths_that_name_nothing_get_graphs_odata_answer() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let id = "d007e3da-cd9b-4b02-8d66-422403c53e3f";
    let cases = [
        (reqwest::Method::GET, format!("/v1.0/dataPolicyOperations/{id}/owner"), "owner"),
        (reqwest::Method::DELETE, format!("/dataPolicyOperations/{id}/a/b/c"), "a"),
        (reqwest::Method::POST, "/beta/users/alice/exportPersonalData/now".to_string(), "now"),
        (reqwest::Method::GET, "/v1.0/users/alice".to_string(), "alice"),
        (reqwest::Method::GET, "/v1.0/users".to_string(), "users"),
        (reqwest::Method::PUT, "/users".to_string(), "users"),
    ];
    for (method, path, segment) in cases {
        let (status, body) = odata_error(http.request(method.clone(), server.url(&path)).send().await.unwrap()).await;
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest", "{method} {path}");
        assert_eq!(body["error"]["message"], format!("Resource not found for the segment '{segment}'."));
        assert!(body["error"]["innerError"]["request-id"].is_string(), "{body}");
    }
    for root in ["/", "/v1.0", "/beta/"] {
        let (status, body) = odata_error(http.get(server.url(root)).send().await.unwrap()).await;
        assert_eq!(status, 400, "{root}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("/dataPolicyOperations"), "{body}");
    }
    // The known routes beside them still answer as before.
    let (status, _) =
        odata_error(http.get(server.url(&format!("/v1.0/dataPolicyOperations/{id}"))).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let accepted = http
        .post(server.url("/v1.0/users/dave/exportPersonalData"))
        .json(&json!({"storageLocation": sas_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    server.stop().await;
}

#[tokio::test]
async fn read_only_properties_are_refused_on_create_and_patch() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let (status, body) = odata_error(
        http.post(server.url("/dataPolicyOperations"))
            .json(&json!({"userId": "f", "storageLocation": sas_url(), "status": "complete"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["target"], "status");

    let created: Value = http
        .post(server.url("/dataPolicyOperations"))
        .json(&json!({"userId": "f", "storageLocation": sas_url()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["@odata.etag"], "W/\"1\"");
    // Sending back what was read is accepted and changes nothing.
    let unchanged: Value = http
        .patch(server.url(&format!("/dataPolicyOperations/{id}")))
        .json(&json!({"userId": "f", "status": "notStarted"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["@odata.etag"], "W/\"1\"");
    let (status, body) = odata_error(
        http.patch(server.url(&format!("/dataPolicyOperations/{id}")))
            .json(&json!({"userId": "someone-else"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["target"], "userId");
    // PATCH honours If-Match too.
    let (status, _) = odata_error(
        http.patch(server.url(&format!("/dataPolicyOperations/{id}")))
            .header("If-Match", "W/\"41\"")
            .json(&json!({"storageLocation": sas_url() + "&x=1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 412);
    server.stop().await;
}
