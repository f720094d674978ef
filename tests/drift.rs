//! The drift check against the real server API: clean on main, loud on a deliberately drifted document.

use dpo_openapi::{allowlist::AllowList, bundle, drift, layout::SpecLayout};
use serde_json::{Value, json};

fn inputs() -> (Value, Value, AllowList) {
    let layout = SpecLayout::of_this_checkout();
    let spec = bundle::read_document(&layout.bundled()).expect("bundled document");
    let server = dpo_api::document::openapi_document().expect("server document");
    let allowlist = AllowList::load(&layout.allowlist()).expect("allow-list");
    (spec, server, allowlist)
}

fn drifted(mutate: impl FnOnce(&mut Value)) -> String {
    let (mut spec, server, allowlist) = inputs();
    mutate(&mut spec);
    let report = drift::check(&spec, &server, &allowlist);
    assert!(!report.is_clean(), "the drifted document must fail the check");
    report.to_string()
}

#[test]
fn the_server_matches_the_bundled_document() {
    let (spec, server, allowlist) = inputs();
    let report = drift::check(&spec, &server, &allowlist);
    assert!(report.is_clean(), "{report}");
}

#[test]
fn the_bundled_document_is_what_the_sources_bundle_to() {
    assert!(bundle::bundled_is_fresh(&SpecLayout::of_this_checkout()).unwrap(), "run `cargo xtask bundle`");
}

#[test]
fn a_changed_parameter_schema_is_reported_with_its_location() {
    let report = drifted(|spec| spec["components"]["parameters"]["top"]["schema"]["type"] = json!("string"));
    assert!(
        report.contains("GET /dataPolicyOperations > parameters > query $top > schema > type: the spec says \"string\", the server says \"integer\""),
        "{report}"
    );
}

#[test]
fn a_changed_response_code_is_reported() {
    let responses = "/paths/~1dataPolicyOperations~1{dataPolicyOperation-id}/delete/responses";
    let report = drifted(|spec| {
        let r = spec.pointer_mut(responses).unwrap().as_object_mut().unwrap();
        let ok = r.remove("204").unwrap();
        r.insert("200".into(), ok);
    });
    assert!(
        report.contains("DELETE /dataPolicyOperations/{dataPolicyOperation-id} > responses > 200: only in the spec"),
        "{report}"
    );
    assert!(
        report.contains("DELETE /dataPolicyOperations/{dataPolicyOperation-id} > responses > 204: only in the server"),
        "{report}"
    );
}

#[test]
fn a_changed_property_type_is_reported_for_every_operation_that_carries_it() {
    let report = drifted(|spec| {
        spec["components"]["schemas"]["microsoft.graph.dataPolicyOperation"]["allOf"][1]["properties"]["userId"]["type"] =
            json!("integer")
    });
    assert!(report.contains("GET /dataPolicyOperations/{dataPolicyOperation-id} > responses > 200 > content > application/json > properties > userId > type"), "{report}");
    assert!(report.contains("POST /dataPolicyOperations > requestBody"), "{report}");
}

#[test]
fn a_missing_handler_and_a_missing_required_flag_are_reported() {
    let report = drifted(|spec| {
        spec["paths"]["/users/{user-id}/exportPersonalData"]["post"]["requestBody"]["required"] = json!(false);
        spec["paths"]["/dataPolicyOperations/{dataPolicyOperation-id}"]
            .as_object_mut()
            .unwrap()
            .insert("put".into(), json!({"operationId": "replace", "responses": {"204": {"description": "d"}}}));
    });
    assert!(report.contains("POST /users/{user-id}/exportPersonalData > requestBody > required"), "{report}");
    assert!(report.contains("PUT /dataPolicyOperations/{dataPolicyOperation-id}: only in the spec"), "{report}");
}
