//! OData query options on the collection, against a real server over a real SQLite file.

use crate::common::{TestServer, get_json, ids, set_status, submit};
use dpo_api::model::DataPolicyOperationStatus as Status;
use dpo_client::ListOptions;
use futures::TryStreamExt;
use std::collections::HashSet;

/// alice: notStarted, running (40%), complete; bob: failed, notStarted. Returns ids in submission order.
async fn fixture(server: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for user in ["alice", "alice", "alice", "bob", "bob"] {
        out.push(submit(server, user).await);
    }
    set_status(server, &out[1], Status::Running, 40.0);
    set_status(server, &out[2], Status::Complete, 100.0);
    set_status(server, &out[3], Status::Failed, 10.0);
    out
}

fn enc(s: &str) -> String {
    s.replace(' ', "%20").replace('\'', "%27")
}

#[tokio::test]
async fn filter_selects_exactly_the_matching_operations_and_count_agrees() {
    let server = TestServer::start(60).await;
    let ops = fixture(&server).await;
    let cases: Vec<(&str, Vec<usize>)> = vec![
        ("userId eq 'alice'", vec![0, 1, 2]),
        ("userId ne 'alice'", vec![3, 4]),
        ("status eq 'complete'", vec![2]),
        ("status eq microsoft.graph.dataPolicyOperationStatus'failed'", vec![3]),
        ("status in ('running', 'failed')", vec![1, 3]),
        ("not (status eq 'notStarted')", vec![1, 2, 3]),
        ("completedDateTime eq null", vec![0, 1, 4]),
        ("completedDateTime ne null and userId eq 'alice'", vec![2]),
        ("progress ge 40", vec![1, 2]),
        ("progress gt 5 and progress lt 50", vec![1, 3]),
        ("startswith(userId,'al') and endswith(userId,'ce')", vec![0, 1, 2]),
        ("contains(storageLocation,'blob.core') eq false", vec![]),
        ("(userId eq 'bob' or status eq 'running') and progress le 10", vec![3, 4]),
        ("submittedDateTime gt 2000-01-01T00:00:00Z", vec![0, 1, 2, 3, 4]),
        ("submittedDateTime lt 2000-01-01T00:00:00Z", vec![]),
    ];
    for (filter, expected) in cases {
        let (status, page) = get_json(&server, &format!("/dataPolicyOperations?$filter={}", enc(filter))).await;
        assert_eq!(status, 200, "{filter}: {page}");
        let got: HashSet<String> = ids(&page).into_iter().collect();
        let want: HashSet<String> = expected.iter().map(|i| ops[*i].clone()).collect();
        assert_eq!(got, want, "{filter}");
        let count =
            crate::common::count(&server, &format!("/dataPolicyOperations/$count?$filter={}", enc(filter))).await;
        assert_eq!(count, expected.len().to_string(), "$count with {filter}");
    }
    let (_, by_id) = get_json(&server, &format!("/dataPolicyOperations?$filter=id%20eq%20{}", ops[3])).await;
    assert_eq!(ids(&by_id), vec![ops[3].clone()]);

    // The same through the generated client.
    let client = server.client();
    let running: Vec<_> = client
        .list_all_operations(ListOptions { filter: Some("status eq 'running'".into()), ..Default::default() })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id.as_deref(), Some(ops[1].as_str()));
    assert_eq!(client.count_operations(Some("userId eq 'bob'"), None).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn filter_mistakes_are_bad_requests_that_point_at_the_problem() {
    let server = TestServer::start(60).await;
    for (filter, needle) in [
        ("color eq 'red'", "'color'"),
        ("progress eq 'high'", "Edm.Double"),
        ("status eq 'sleeping'", "'sleeping'"),
        ("userId eq 'alice", "not closed"),
        ("userId eq", "end of the expression"),
        ("userId eq 'a' xor userId eq 'b'", "'xor'"),
        ("submittedDateTime gt 'yesterday'", "DateTimeOffset"),
    ] {
        let (status, body) = get_json(&server, &format!("/dataPolicyOperations?$filter={}", enc(filter))).await;
        assert_eq!(status, 400, "{filter}");
        assert_eq!(body["error"]["code"], "BadRequest", "{filter}");
        assert_eq!(body["error"]["target"], "$filter", "{filter}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{filter}: {message}");
    }
    let (status, _) = get_json(&server, "/dataPolicyOperations/$count?$filter=nope%20eq%201").await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn orderby_sorts_by_several_keys_and_status_by_its_enum_order() {
    let server = TestServer::start(60).await;
    let ops = fixture(&server).await;
    let (_, page) = get_json(&server, "/dataPolicyOperations?$orderby=userId%20desc,submittedDateTime%20desc").await;
    assert_eq!(ids(&page), vec![ops[4].clone(), ops[3].clone(), ops[2].clone(), ops[1].clone(), ops[0].clone()]);
    // notStarted < running < complete < failed, ties by submission.
    let (_, page) = get_json(&server, "/dataPolicyOperations?$orderby=status,submittedDateTime").await;
    assert_eq!(ids(&page), vec![ops[0].clone(), ops[4].clone(), ops[1].clone(), ops[2].clone(), ops[3].clone()]);
    let (status, body) = get_json(&server, "/dataPolicyOperations?$orderby=shoeSize").await;
    assert_eq!((status, body["error"]["target"].as_str()), (400, Some("$orderby")));
    server.stop().await;
}

#[tokio::test]
async fn top_skip_count_select_and_search_behave_as_odata_says() {
    let server = TestServer::start(60).await;
    let ops = fixture(&server).await;
    let (_, page) = get_json(&server, "/dataPolicyOperations?$top=2&$skip=1&$count=true").await;
    assert_eq!(ids(&page), vec![ops[1].clone(), ops[2].clone()]);
    assert_eq!(page["@odata.count"], 5, "the count ignores $top and $skip");
    // As on Graph, $top is the page size: the next link repeats it (and $count), not $skip.
    let next = page["@odata.nextLink"].as_str().expect("more remain after a page of $top");
    assert!(next.contains("$top=2") && next.contains("$count=true") && !next.contains("$skip="), "{next}");
    let (_, page) = get_json(&server, next.strip_prefix(&server.base_url).unwrap()).await;
    assert_eq!(ids(&page), vec![ops[3].clone(), ops[4].clone()]);
    assert_eq!(page["@odata.count"], 5);
    assert!(page.get("@odata.nextLink").is_none(), "the last page has no next link");

    let (_, page) = get_json(&server, "/dataPolicyOperations?$select=status,progress&$top=1").await;
    let first = page["value"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["@odata.etag", "id", "progress", "status"]);
    assert!(page["@odata.context"].as_str().unwrap().ends_with("$metadata#dataPolicyOperations(status,progress)"));

    let (_, page) = get_json(&server, "/dataPolicyOperations?$search=%22bob%22").await;
    assert_eq!(ids(&page), vec![ops[3].clone(), ops[4].clone()]);
    let (_, page) = get_json(&server, "/dataPolicyOperations?$search=BLOB.CORE").await;
    assert_eq!(ids(&page).len(), 5, "search is case-insensitive and covers storageLocation");
    let count = crate::common::count(&server, "/dataPolicyOperations/$count?$search=%22alice%22").await;
    assert_eq!(count, "3");

    for bad in [
        "$select=secret",
        "$expand=owner",
        "$top=-1",
        "$count=maybe",
        "$search=%22%22",
        "$format=json",
        "$top=1&$top=2",
    ] {
        let (status, body) = get_json(&server, &format!("/dataPolicyOperations?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest", "{bad}");
    }
    let (status, _) = get_json(&server, &format!("/dataPolicyOperations/{}?$top=1", ops[0])).await;
    assert_eq!(status, 400, "$top does not apply to one entity");
    server.stop().await;
}

async fn follow_all(server: &TestServer, first: &str, mut between_pages: impl AsyncFnMut(usize)) -> Vec<String> {
    let mut url = server.url(first);
    let mut seen = Vec::new();
    for page_number in 0.. {
        let page: serde_json::Value = server.http().get(&url).send().await.unwrap().json().await.unwrap();
        if !first.contains("$top") {
            assert!(page["value"].as_array().unwrap().len() as u64 <= server.page_size, "{page}");
        }
        seen.extend(ids(&page));
        between_pages(page_number).await;
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    seen
}

#[tokio::test]
async fn paging_stays_correct_when_operations_are_added_and_removed_between_pages() {
    let server = TestServer::start_paged(60, 3).await;
    let mut original = Vec::new();
    for i in 0..10 {
        original.push(submit(&server, &format!("user{i}")).await);
    }
    let mut added = Vec::new();
    let removed = original[0].clone();
    let seen = follow_all(&server, "/dataPolicyOperations", async |page| {
        if page == 0 {
            // After the first page: a new operation (it sorts last) and the removal of one already seen.
            added.push(submit(&server, "user20").await);
            server.http().delete(server.url(&format!("/dataPolicyOperations/{removed}"))).send().await.unwrap();
        }
    })
    .await;
    let mut expected = original.clone();
    expected.extend(added.iter().cloned());
    assert_eq!(seen, expected, "every operation once, in order, none skipped");

    // Ordered by userId descending: an insert that sorts before the cursor is not shown, one after it is.
    let seen = follow_all(
        &server,
        "/dataPolicyOperations?$orderby=userId%20desc&$filter=startswith(userId,'user')",
        async |page| {
            if page == 0 {
                submit(&server, "user99").await; // sorts first: already passed
                submit(&server, "user0").await; // sorts near the end: still ahead
            }
        },
    )
    .await;
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no operation twice");
    assert_eq!(seen.len(), 9 + 1 + 1, "9 left of the first ten, user20, and the new user0");

    // A token only works with the query it was made for.
    let page: serde_json::Value = server
        .http()
        .get(server.url("/dataPolicyOperations?$filter=startswith(userId,'user')"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = page["@odata.nextLink"].as_str().unwrap();
    let token = next.split("$skiptoken=").nth(1).unwrap();
    let (status, body) = get_json(&server, &format!("/dataPolicyOperations?$skiptoken={token}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["target"], "$skiptoken");
    let (status, _) = get_json(&server, "/dataPolicyOperations?$skiptoken=garbage").await;
    assert_eq!(status, 400);

    // $top sets the page size (as on Graph), larger than the default here; following the links with it
    // walks every operation, seven at a time.
    let page: serde_json::Value =
        server.http().get(server.url("/dataPolicyOperations?$top=7")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ids(&page).len(), 7);
    assert!(page["@odata.nextLink"].as_str().unwrap().contains("$top=7"));
    let all = follow_all(&server, "/dataPolicyOperations?$top=7", async |_| {}).await;
    let (_, every) = get_json(&server, "/dataPolicyOperations?$top=1000").await;
    assert_eq!(all, ids(&every));
    server.stop().await;
}
