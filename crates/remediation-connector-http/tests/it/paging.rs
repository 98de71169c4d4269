//! Pagination helpers and the page walker.

use remediation_connector_http::{
    PageStyle, Request, ScimPage, ThrottleSignal, next_page_token, odata_next_link, parse_link_next,
};
use serde_json::json;
use wiremock::matchers::{path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::client;

#[test]
fn link_headers_name_the_next_page() {
    let v = r#"<https://x.okta.com/api/v1/users?limit=2>; rel="self", <https://x.okta.com/api/v1/users?after=00u2&limit=2>; rel="next""#;
    assert_eq!(parse_link_next(v).as_deref(), Some("https://x.okta.com/api/v1/users?after=00u2&limit=2"));
    let gh = r#"<https://api.github.com/repositories/1/collaborators?page=2>; rel="next", <https://api.github.com/repositories/1/collaborators?page=5>; rel="last""#;
    assert_eq!(parse_link_next(gh).as_deref(), Some("https://api.github.com/repositories/1/collaborators?page=2"));
    assert_eq!(parse_link_next(r#"<https://a/b?x=1,2>; rel="self""#), None);
}

#[test]
fn body_cursors() {
    assert_eq!(
        odata_next_link(&json!({"@odata.nextLink": "https://graph/next", "value": []})).as_deref(),
        Some("https://graph/next")
    );
    assert_eq!(next_page_token(&json!({"nextPageToken": "tok"})).as_deref(), Some("tok"));
    assert_eq!(next_page_token(&json!({"nextPageToken": ""})), None);
    let p = ScimPage::from_body(&json!({"totalResults": 5, "startIndex": 1, "itemsPerPage": 2, "Resources": [{}, {}]}))
        .expect("page");
    assert_eq!(p.next_start_index(), Some(3));
    let last = ScimPage::from_body(&json!({"totalResults": 5, "startIndex": 5, "Resources": [{}]})).expect("page");
    assert_eq!(last.next_start_index(), None);
}

#[tokio::test]
async fn link_pages_are_followed_to_the_third_page_and_stop_at_the_match() {
    let server = MockServer::start().await;
    let base = server.uri();
    let page = |items: serde_json::Value, next: Option<&str>| {
        let mut t = ResponseTemplate::new(200).set_body_json(items);
        if let Some(n) = next {
            t = t.insert_header("link", format!("<{base}/api/v1/groups?after={n}&limit=2>; rel=\"next\"").as_str());
        }
        t
    };
    Mock::given(path("/api/v1/groups"))
        .and(query_param("after", "g2"))
        .respond_with(page(json!([{"id": "g3"}, {"id": "g4"}]), Some("g4")))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/groups"))
        .and(query_param("after", "g4"))
        .respond_with(page(json!([{"id": "g5"}, {"id": "g6"}]), Some("g6")))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/groups"))
        .and(query_param("after", "g6"))
        .respond_with(page(json!([]), None))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/groups"))
        .respond_with(page(json!([{"id": "g1"}, {"id": "g2"}]), Some("g2")))
        .with_priority(10)
        .mount(&server)
        .await;
    let (c, _) = client(&format!("{base}/api/v1"), ThrottleSignal::OktaRateLimitReset, None);
    let found = c
        .pages(Request::get("/groups").query("limit", "2"), PageStyle::Link, 10, |g| g["id"] == "g5")
        .await
        .expect("pages");
    assert_eq!(found.pages, 3);
    assert_eq!(found.items.last(), Some(&json!({"id": "g5"})));
    let all =
        c.pages(Request::get("/groups").query("limit", "2"), PageStyle::Link, 10, |_| false).await.expect("pages");
    assert_eq!((all.items.len(), all.pages, all.truncated), (6, 4, false));
    let cut = c.pages(Request::get("/groups"), PageStyle::Link, 2, |_| false).await.expect("pages");
    assert_eq!((cut.items.len(), cut.truncated), (4, true));
}

#[tokio::test]
async fn page_tokens_and_scim_indexes_repeat_the_request() {
    let server = MockServer::start().await;
    Mock::given(path("/members"))
        .and(query_param("pageToken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"members": [{"id": 2}]})))
        .mount(&server)
        .await;
    Mock::given(path("/members"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"members": [{"id": 1}], "nextPageToken": "p2"})))
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(path("/Users"))
        .and(query_param("startIndex", "3"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"totalResults": 3, "startIndex": 3, "itemsPerPage": 1, "Resources": [{"id": "c"}]}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(path("/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"totalResults": 3, "startIndex": 1, "itemsPerPage": 2, "Resources": [{"id": "a"}, {"id": "b"}]}),
        ))
        .with_priority(10)
        .mount(&server)
        .await;
    let (c, _) = client(&server.uri(), ThrottleSignal::Google, None);
    let g = c
        .pages(Request::get("/members").query("maxResults", "1"), PageStyle::PageToken { items: "members" }, 5, |_| {
            false
        })
        .await
        .expect("pages");
    assert_eq!(g.items, vec![json!({"id": 1}), json!({"id": 2})]);
    let s = c.pages(Request::get("/Users"), PageStyle::Scim { count: 2 }, 5, |_| false).await.expect("pages");
    assert_eq!(s.items.len(), 3);
    let reqs = server.received_requests().await.unwrap_or_default();
    let last = reqs.last().map(|r| r.url.query().unwrap_or("").to_owned());
    assert_eq!(last.as_deref(), Some("startIndex=3&count=2"));
}
