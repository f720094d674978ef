//! Every operation of the bundled document, called with the generated client against a real server.

use crate::common::{TestServer, sas_url};
use dpo_client::{
    ClientError, Error, ListOptions, WaitOptions, operation_id_from_location,
    types::{
        DataPolicyOperationStatusValue, MicrosoftGraphDataPolicyOperation as Operation,
        MicrosoftGraphDataPolicyOperationStatus as Status, UsersUserExportPersonalDataBody,
    },
};
use dpo_server::auth::tokens::MintRequest;
use futures::TryStreamExt;
use std::{collections::HashSet, time::Duration};

async fn submit(client: &dpo_client::Client, user: &str) -> String {
    let accepted = client
        .users_user_export_personal_data(user, &UsersUserExportPersonalDataBody { storage_location: Some(sas_url()) })
        .await
        .expect("export accepted");
    operation_id_from_location(&accepted).expect("Location names the operation")
}

#[tokio::test]
async fn every_operation_round_trips_through_the_generated_client() {
    let server = TestServer::start(7).await;
    let client = server.client();

    // exportPersonalData: 202, absolute Location, Retry-After in seconds.
    let accepted = client
        .users_user_export_personal_data(
            "alice",
            &UsersUserExportPersonalDataBody { storage_location: Some(sas_url()) },
        )
        .await
        .expect("export accepted");
    assert_eq!(accepted.status().as_u16(), 202);
    let location = accepted.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&format!("{}/dataPolicyOperations/", server.base_url)), "{location}");
    assert_eq!(accepted.headers()["retry-after"], "7");
    let id = operation_id_from_location(&accepted).unwrap();

    // GET with $select: only the selected properties (and id).
    let selected = vec!["status".to_string(), "userId".to_string()];
    let got = client
        .data_policy_operations_data_policy_operation_get_data_policy_operation(&id, None, Some(&selected))
        .await
        .expect("get");
    let etag = got.headers()["etag"].to_str().unwrap().to_string();
    let got = got.into_inner();
    assert_eq!(got.id.as_deref(), Some(id.as_str()));
    assert_eq!(got.status, Some(DataPolicyOperationStatusValue::Variant0(Status::NotStarted)));
    assert_eq!(got.user_id.as_deref(), Some("alice"));
    assert_eq!(got.storage_location, None, "not selected");

    // POST (create): 201 with the new entity.
    let created = client
        .data_policy_operations_data_policy_operation_create_data_policy_operation(&Operation {
            user_id: Some("bob".into()),
            storage_location: Some(sas_url()),
            ..Default::default()
        })
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let created = created.into_inner();
    assert_eq!(created.user_id.as_deref(), Some("bob"));
    let created_id = created.id.clone().unwrap();

    // PATCH: storageLocation may change before the export starts.
    let moved =
        "https://other.blob.core.windows.net/exports?sv=2023-11-03&sp=cw&se=2099-01-01T00:00:00Z&sig=def".to_string();
    let patched = client
        .data_policy_operations_data_policy_operation_update_data_policy_operation(
            &created_id,
            &Operation { storage_location: Some(moved.clone()), ..Default::default() },
        )
        .await
        .expect("patch")
        .into_inner();
    // The SAS signature is never shown back.
    assert_eq!(patched.storage_location.as_deref(), Some(moved.replace("sig=def", "sig=REDACTED").as_str()));

    // List with $top, $count and $select (two names: the client hook sends them comma-separated).
    let select = vec!["id".to_string(), "status".to_string()];
    let page = client
        .data_policy_operations_data_policy_operation_list_data_policy_operation(
            Some(true),
            None,
            None,
            None,
            None,
            Some(&select),
            None,
            Some(1),
        )
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.value.len(), 1);
    assert_eq!(page.odata_count, Some(2));
    assert!(page.value[0].user_id.is_none() && page.value[0].status.is_some());

    // $count, as text/plain.
    assert_eq!(client.count_operations(None, None).await.unwrap(), 2);

    // DELETE with a stale If-Match: 412 with a typed OData error.
    let stale = client
        .data_policy_operations_data_policy_operation_delete_data_policy_operation(&id, Some("W/\"999\""))
        .await
        .expect_err("stale ETag refused");
    match stale {
        Error::ErrorResponse(body) => {
            assert_eq!(body.status().as_u16(), 412);
            assert_eq!(body.error.code, "PreconditionFailed");
        }
        other => panic!("expected an OData error, got {other:?}"),
    }
    // DELETE with the current ETag, and with `*`: 204.
    let deleted = client
        .data_policy_operations_data_policy_operation_delete_data_policy_operation(&id, Some(&etag))
        .await
        .expect("delete with the current ETag");
    assert_eq!(deleted.status().as_u16(), 204);
    client
        .data_policy_operations_data_policy_operation_delete_data_policy_operation(&created_id, Some("*"))
        .await
        .expect("delete with *");

    // The deleted operation is gone: 404 as a typed error.
    let gone: ClientError = client
        .data_policy_operations_data_policy_operation_get_data_policy_operation(&id, None, None)
        .await
        .expect_err("deleted")
        .into();
    assert_eq!(gone.status(), Some(404));
    assert_eq!(gone.code(), Some("Request_ResourceNotFound"));
    assert_eq!(client.count_operations(None, None).await.unwrap(), 0);
    server.stop().await;
}

#[tokio::test]
async fn listing_all_operations_follows_next_links_across_pages() {
    let server = TestServer::start(60).await;
    let client = server.client();
    let mut submitted = HashSet::new();
    for i in 0..250 {
        submitted.insert(submit(&client, &format!("user{i}")).await);
    }
    let first = client.list_operations_page(&ListOptions::default()).await.unwrap();
    assert_eq!(first.value.len(), 100, "default page size");
    assert!(first.odata_next_link.is_some());

    let all: Vec<Operation> = client.list_all_operations(ListOptions::default()).try_collect().await.unwrap();
    let seen: HashSet<String> = all.iter().filter_map(|op| op.id.clone()).collect();
    assert_eq!(all.len(), 250);
    assert_eq!(seen, submitted);

    // $top is the page size, as on Graph: pages of 30, and the stream still walks every operation.
    let first = client.list_operations_page(&ListOptions { top: Some(30), ..Default::default() }).await.unwrap();
    assert_eq!(first.value.len(), 30);
    assert!(first.odata_next_link.as_deref().is_some_and(|next| next.contains("$top=30")));
    let paged: Vec<Operation> =
        client.list_all_operations(ListOptions { top: Some(30), ..Default::default() }).try_collect().await.unwrap();
    assert_eq!(paged.iter().filter_map(|op| op.id.clone()).collect::<HashSet<_>>(), submitted);
    assert_eq!(paged.len(), 250);
    server.stop().await;
}

#[tokio::test]
async fn waiting_polls_as_retry_after_says_until_the_operation_finishes() {
    let server = TestServer::start(1).await;
    let client = server.client();
    let id = submit(&client, "carol").await;

    // Nothing completes it: waiting gives up at the timeout, having slept Retry-After (1 s) between polls
    // rather than the 5 s default.
    let options = WaitOptions { timeout: Duration::from_millis(2500), ..Default::default() };
    let started = std::time::Instant::now();
    let err = client.wait_for_operation(&id, &options).await.expect_err("times out");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(2), "slept per Retry-After: {:?}", started.elapsed());

    // The server completes the operation a little later; the waiter sees it.
    complete_later(&server, &id, Duration::from_millis(1200));
    let done = client.wait_for_operation(&id, &WaitOptions::default()).await.expect("completes");
    assert_eq!(done.status, Some(DataPolicyOperationStatusValue::Variant0(Status::Complete)));
    assert!(done.completed_date_time.is_some());
    server.stop().await;
}

#[tokio::test]
async fn an_operation_handle_waits_for_completion_and_reports_failure_as_a_typed_error() {
    let server = TestServer::start(1).await;
    let client = server.client();
    let export = client.export_personal_data("dave", &sas_url()).await.unwrap();
    assert_eq!(export.retry_after, Some(Duration::from_secs(1)));
    let id = export.id.clone();
    let complete_later = |status, server: &TestServer| {
        let store = server.store.operations.clone();
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let mut record = store.get(uuid).unwrap().unwrap();
            record.status = status;
            record.progress = 100.0;
            record.version += 1;
            store.replace(&record).unwrap();
        })
    };
    complete_later(dpo_api::model::DataPolicyOperationStatus::Complete, &server);
    let mut polls = 0;
    let done = export.wait(&WaitOptions::default(), |_| polls += 1).await.unwrap();
    assert_eq!(done.id.as_deref(), Some(id.as_str()));
    assert!(polls >= 1);

    let failing = client.export_personal_data("erin", &sas_url()).await.unwrap();
    let id = failing.id.clone();
    let store = server.store.operations.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut record = store.get(uuid::Uuid::parse_str(&id).unwrap()).unwrap().unwrap();
        record.status = dpo_api::model::DataPolicyOperationStatus::Failed;
        record.version += 1;
        store.replace(&record).unwrap();
    });
    let err = failing.wait(&WaitOptions::default(), |_| {}).await.unwrap_err();
    assert!(matches!(err, ClientError::ExportFailed { .. }), "{err}");
    server.stop().await;
}

/// Marks operation `id` complete behind the server's back after `delay`, as a finished export would.
fn complete_later(server: &TestServer, id: &str, delay: Duration) {
    let (store, uuid) = (server.store.operations.clone(), uuid::Uuid::parse_str(id).unwrap());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut record = store.get(uuid).unwrap().unwrap();
        record.status = dpo_api::model::DataPolicyOperationStatus::Complete;
        record.progress = 100.0;
        record.completed_at = Some(chrono::Utc::now());
        record.version += 1;
        store.replace(&record).unwrap();
    });
}

#[tokio::test]
async fn waiting_rides_out_throttling_as_retry_after_says() {
    let throttle =
        dpo_server::throttle::ThrottleLimits { per_caller: std::num::NonZeroU32::new(1), ..Default::default() };
    let server =
        TestServer::start_with(crate::common::Options { retry_after: 1, throttle, ..Default::default() }).await;
    let client = server.client();
    let before = crate::common::throttled_so_far();
    // The submission takes this caller's one request of the second: the first poll is answered 429.
    let export = client.export_personal_data("erin", &sas_url()).await.unwrap();
    complete_later(&server, &export.id, Duration::from_millis(1500));
    let done = client.wait_for_operation(&export.id, &WaitOptions::default()).await.expect("completes despite 429s");
    assert_eq!(done.status, Some(DataPolicyOperationStatusValue::Variant0(Status::Complete)));
    assert!(crate::common::throttled_so_far() > before, "a poll was throttled on the way");
    server.stop().await;
}

#[tokio::test]
async fn the_users_of_one_application_share_its_request_budget() {
    let throttle = dpo_server::throttle::ThrottleLimits { per_app: std::num::NonZeroU32::new(2), ..Default::default() };
    let server = TestServer::start_with(crate::common::Options { throttle, ..Default::default() }).await;
    // Tokens minted locally name the same client application (appid dpo-local-client).
    let user = |id: &str| {
        let request = MintRequest { user: Some(id.into()), ..MintRequest::admin(crate::common::TENANT) };
        server.http_with(&server.token(&request))
    };
    let (ann, ben) = (user("ann"), user("ben"));
    let list = server.url("/dataPolicyOperations");
    assert_eq!(ann.get(&list).send().await.unwrap().status(), 200);
    assert_eq!(ben.get(&list).send().await.unwrap().status(), 200);
    let over = ann.get(&list).send().await.unwrap();
    assert_eq!(over.status(), 429, "the application's two requests of the second are used");
    assert!(over.headers().contains_key("retry-after"));
    let body: serde_json::Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!(body["error"]["message"].as_str().unwrap().contains("app"), "{body}");
    server.stop().await;
}
