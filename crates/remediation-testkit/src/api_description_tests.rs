//! Tests of the API description validator: each rule on a small synthetic description, and
//! the committed descriptions refusing what the providers refuse.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ApiDescription, GITHUB_OPERATIONS, GOOGLE_OPERATIONS, GRAPH_OPERATIONS, OKTA_OPERATIONS};
use crate::fakes::RecordedRequest;

fn request(method: &str, path: &str, query: &[(&str, &str)], body: Option<Value>) -> RecordedRequest {
    let mut headers = BTreeMap::new();
    headers.insert("authorization".to_owned(), "Bearer ***".to_owned());
    if body.is_some() {
        headers.insert("content-type".to_owned(), "application/json".to_owned());
    }
    RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        headers,
        body,
        status: 0,
    }
}

fn synthetic() -> ApiDescription {
    let doc = json!({
        "openapi": "3.0.3",
        "servers": [{"url": "https://api.example.com/v2/"}],
        "paths": {
            "/teams/{team}/members/{login}": {
                "parameters": [
                    {"name": "team", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z]+$"}},
                    {"$ref": "#/components/parameters/login"}
                ],
                "put": {
                    "parameters": [{"name": "X-Version", "in": "header", "required": true, "schema": {"type": "string", "enum": ["2022-11-28"]}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Membership"}}}},
                    "responses": {"200": {"description": ""}}
                },
                "delete": {"responses": {"204": {"description": ""}}}
            },
            "/teams/{team}/members/me": {"parameters": [{"name": "team", "in": "path", "required": true, "schema": {"type": "string"}}], "get": {"responses": {"200": {"description": ""}}}},
            "/teams": {
                "get": {
                    "parameters": [
                        {"name": "per_page", "in": "query", "schema": {"type": "integer"}},
                        {"name": "sort", "in": "query", "required": true, "schema": {"type": "string", "enum": ["name", "created"]}},
                        {"name": "$select", "in": "query", "explode": false, "schema": {"type": "array", "items": {"type": "string", "enum": ["id", "name"]}}},
                        {"name": "flag", "in": "query", "schema": {"type": "boolean"}}
                    ],
                    "responses": {"200": {"description": ""}}
                }
            }
        },
        "components": {
            "parameters": {"login": {"name": "login", "in": "path", "required": true, "schema": {"type": "string"}}},
            "schemas": {
                "Membership": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": ["member", "maintainer"]},
                        "note": {"type": "string", "nullable": true},
                        "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}},
                        "extra": {"oneOf": [{"type": "integer"}, {"allOf": [{"type": "object", "required": ["k"]}]}]}
                    }
                },
                "Tag": {"type": "string", "enum": ["a", "b"]}
            }
        }
    });
    ApiDescription::parse(&doc.to_string()).expect("parse")
}

fn violations(d: &ApiDescription, r: &RecordedRequest) -> String {
    match d.validate(r) {
        Ok(()) => String::new(),
        Err(v) => v.to_string(),
    }
}

fn put(body: Value) -> RecordedRequest {
    let mut r = request("PUT", "/v2/teams/core/members/octocat", &[], Some(body));
    r.headers.insert("x-version".to_owned(), "2022-11-28".to_owned());
    r
}

#[test]
fn a_conforming_request_passes() {
    let d = synthetic();
    assert_eq!(violations(&d, &put(json!({"role": "member", "note": null, "tags": ["a"], "extra": 3}))), "");
    assert_eq!(violations(&d, &put(json!({"role": "maintainer", "extra": {"k": 1}}))), "");
    assert_eq!(violations(&d, &request("DELETE", "/v2/teams/core/members/octocat", &[], None)), "");
    let list = request(
        "GET",
        "/v2/teams",
        &[("sort", "name"), ("per_page", "100"), ("$select", "id,name"), ("flag", "true")],
        None,
    );
    assert_eq!(violations(&d, &list), "");
    // The literal segment wins over the template.
    assert_eq!(violations(&d, &request("GET", "/v2/teams/core/members/me", &[], None)), "");
}

#[test]
fn the_operation_must_be_defined() {
    let d = synthetic();
    assert!(violations(&d, &request("GET", "/v2/nowhere", &[], None)).contains("no path in the description matches"));
    let v = violations(&d, &request("POST", "/v2/teams/core/members/octocat", &[], None));
    assert!(v.contains("defines only PUT") && v.contains("DELETE"), "{v}");
    assert!(violations(&d, &request("GET", "/teams", &[("sort", "name")], None)).contains("base path /v2"));
    let v = violations(&d, &request("DELETE", "/v2/teams/Core/members/octocat", &[], None));
    assert!(v.contains("path parameter team") && v.contains("^[a-z]+$"), "{v}");
}

#[test]
fn query_parameters_must_be_defined_and_their_values_accepted() {
    let d = synthetic();
    let v = violations(&d, &request("GET", "/v2/teams", &[("sort", "name"), ("limit", "1")], None));
    assert!(v.contains("query parameter limit is not defined"), "{v}");
    let v = violations(&d, &request("GET", "/v2/teams", &[("sort", "size")], None));
    assert!(v.contains("\"size\" is not one of \"name\", \"created\""), "{v}");
    let v = violations(&d, &request("GET", "/v2/teams", &[("sort", "name"), ("per_page", "many")], None));
    assert!(v.contains("\"many\" is not a valid integer"), "{v}");
    let v = violations(&d, &request("GET", "/v2/teams", &[("sort", "name"), ("$select", "id,secret")], None));
    assert!(v.contains("\"secret\" is not one of"), "{v}");
    let v = violations(&d, &request("GET", "/v2/teams", &[("sort", "name"), ("flag", "yes")], None));
    assert!(v.contains("not a valid boolean"), "{v}");
    let v = violations(&d, &request("GET", "/v2/teams", &[], None));
    assert!(v.contains("required query parameter sort is missing"), "{v}");
    let v = violations(&d, &request("GET", "/v2/teams", &[("sort", "name"), ("sort", "created")], None));
    assert!(v.contains("repeated"), "{v}");
}

#[test]
fn headers_and_the_media_type_are_checked() {
    let d = synthetic();
    let mut r = put(json!({"role": "member"}));
    r.headers.remove("x-version");
    assert!(violations(&d, &r).contains("required header X-Version is missing"));
    r.headers.insert("x-version".to_owned(), "2020-01-01".to_owned());
    assert!(violations(&d, &r).contains("header X-Version"));
    let mut r = put(json!({"role": "member"}));
    r.headers.insert("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned());
    assert!(violations(&d, &r).contains("is not one the operation accepts"));
    let mut r = put(json!({"role": "member"}));
    r.headers.insert("content-type".to_owned(), "application/json; charset=utf-8".to_owned());
    assert_eq!(violations(&d, &r), "", "parameters of the media type are ignored");
}

#[test]
fn the_body_must_match_the_request_body_schema() {
    let d = synthetic();
    let cases = [
        (json!({"role": "owner"}), "body.role: \"owner\" is not one of"),
        (json!({}), "required property role is missing"),
        (json!({"role": "member", "colour": "red"}), "property colour is not allowed"),
        (json!({"role": "member", "tags": ["c"]}), "body.tags[0]: \"c\" is not one of"),
        (json!({"role": 1}), "body.role: 1 is not of type string"),
        (json!({"role": "member", "extra": {"j": 1}}), "matches no branch of oneOf"),
        (json!({"role": "member", "extra": "x"}), "matches no branch of oneOf"),
        (json!(["member"]), "is not of type object"),
    ];
    for (body, expected) in cases {
        let v = violations(&d, &put(body.clone()));
        assert!(v.contains(expected), "{body}: {v}");
    }
    let mut missing = put(json!({}));
    missing.body = None;
    assert!(violations(&d, &missing).contains("the request body is required"));
    let v = violations(&d, &request("DELETE", "/v2/teams/core/members/octocat", &[], Some(json!({}))));
    assert!(v.contains("defines none"), "{v}");
}

#[test]
fn the_committed_descriptions_hold_every_listed_operation() {
    let okta = ApiDescription::okta().expect("okta");
    assert_eq!(okta.missing_operations(OKTA_OPERATIONS), Vec::<String>::new());
    let google = ApiDescription::google().expect("google");
    assert_eq!(google.missing_operations(GOOGLE_OPERATIONS), Vec::<String>::new());
    let github = ApiDescription::github().expect("github");
    assert_eq!(github.missing_operations(GITHUB_OPERATIONS), Vec::<String>::new());
    let graph = ApiDescription::graph().expect("graph");
    assert_eq!(graph.missing_operations(GRAPH_OPERATIONS), Vec::<String>::new());
}

#[test]
fn githubs_description_refuses_a_billing_manager_membership() {
    let github = ApiDescription::github().expect("github");
    let path = "/orgs/acme/memberships/octocat";
    assert_eq!(violations(&github, &request("PUT", path, &[], Some(json!({"role": "member"})))), "");
    let v = violations(&github, &request("PUT", path, &[], Some(json!({"role": "billing_manager"}))));
    assert!(v.contains("body.role: \"billing_manager\" is not one of"), "{v}");
    let v = violations(
        &github,
        &request("GET", "/repos/acme/payments/collaborators", &[("affiliation", "everyone")], None),
    );
    assert!(v.contains("affiliation"), "{v}");
}

#[test]
fn graphs_entities_accept_the_properties_of_their_base_types_and_unqualified_actions() {
    let graph = ApiDescription::graph().expect("graph");
    let user = "/v1.0/users/a11ce000-0000-4000-8000-000000000001";
    assert_eq!(violations(&graph, &request("PATCH", user, &[], Some(json!({"accountEnabled": false})))), "");
    let v = violations(&graph, &request("PATCH", user, &[], Some(json!({"accountEnabled": "no"}))));
    assert!(v.contains("body.accountEnabled"), "{v}");
    assert_eq!(violations(&graph, &request("POST", &format!("{user}/revokeSignInSessions"), &[], None)), "");
    let v = violations(&graph, &request("GET", user, &[("$select", "id"), ("$top", "999")], None));
    assert!(v.contains("query parameter $top is not defined"), "{v}");
}

#[test]
fn oktas_description_refuses_a_limit_on_list_user_groups() {
    let okta = ApiDescription::okta().expect("okta");
    assert_eq!(violations(&okta, &request("GET", "/api/v1/users/00u1/groups", &[], None)), "");
    let v = violations(&okta, &request("GET", "/api/v1/users/00u1/groups", &[("limit", "200")], None));
    assert!(v.contains("query parameter limit is not defined"), "{v}");
    let v = violations(&okta, &request("DELETE", "/api/v1/users/00u1/sessions", &[("oauthTokens", "maybe")], None));
    assert!(v.contains("oauthTokens"), "{v}");
}

#[test]
fn googles_description_refuses_an_unknown_projection() {
    let google = ApiDescription::google().expect("google");
    let path = "/admin/directory/v1/users/alice%40example.com";
    assert_eq!(violations(&google, &request("GET", path, &[("projection", "full")], None)), "");
    let v = violations(&google, &request("GET", path, &[("projection", "everything")], None));
    assert!(v.contains("\"everything\" is not one of"), "{v}");
    let v = violations(&google, &request("GET", path, &[("maxResults", "10")], None));
    assert!(v.contains("query parameter maxResults is not defined"), "{v}");
}
