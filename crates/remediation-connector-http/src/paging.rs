//! Following each provider's pagination: `Link: <...>; rel="next"` (Okta, GitHub),
//! `@odata.nextLink` (Microsoft Graph), `nextPageToken` (Google) and SCIM's
//! `startIndex`/`count`/`totalResults`.

use reqwest::header::HeaderMap;
use serde_json::Value;

/// How a listing says where its next page is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageStyle {
    /// The body is a JSON array; the next page's URL is in `Link: <url>; rel="next"`.
    Link,
    /// The items are in `value`; the next page's URL is `@odata.nextLink`.
    OData,
    /// The items are in the field named here; the next page repeats the request with
    /// `pageToken=<nextPageToken>`.
    PageToken {
        /// The field holding the items (`users`, `members`, `groups`).
        items: &'static str,
    },
    /// SCIM: items in `Resources`; the next page repeats the request with `startIndex`
    /// advanced by `itemsPerPage` and `count` set, until `totalResults` is reached.
    Scim {
        /// The page size to ask for.
        count: u64,
    },
}

/// The URL of the next page from a `Link` header, if any.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all("link").iter().filter_map(|v| v.to_str().ok()).find_map(parse_link_next)
}

/// The `rel="next"` target in one `Link` header value (which may list several links).
pub fn parse_link_next(value: &str) -> Option<String> {
    for part in split_links(value) {
        let part = part.trim();
        let Some(end) = part.find('>') else { continue };
        let url = part.get(1..end)?.trim();
        if !part.starts_with('<') {
            continue;
        }
        let params = &part[end + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            let Some((k, v)) = p.split_once('=') else { return false };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim().trim_matches('"').split_ascii_whitespace().any(|r| r == "next")
        });
        if is_next {
            return Some(url.to_owned());
        }
    }
    None
}

/// Splits on commas outside `<...>` (URLs may contain commas).
fn split_links(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// `@odata.nextLink` of a Graph listing, if any.
pub fn odata_next_link(body: &Value) -> Option<String> {
    body.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned)
}

/// `nextPageToken` of a Google listing, if any and not empty.
pub fn next_page_token(body: &Value) -> Option<String> {
    body.get("nextPageToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// The paging fields of a SCIM `ListResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimPage {
    /// `totalResults`: matches across all pages.
    pub total_results: u64,
    /// `startIndex`: 1-based index of this page's first item.
    pub start_index: u64,
    /// `itemsPerPage`: items on this page (the length of `Resources` when absent).
    pub items_per_page: u64,
}

impl ScimPage {
    /// Reads the paging fields of a `ListResponse`; `None` when `totalResults` is missing.
    pub fn from_body(body: &Value) -> Option<Self> {
        let total_results = body.get("totalResults").and_then(Value::as_u64)?;
        let start_index = body.get("startIndex").and_then(Value::as_u64).unwrap_or(1);
        let listed = body.get("Resources").and_then(Value::as_array).map_or(0, |a| a.len() as u64);
        let items_per_page = body.get("itemsPerPage").and_then(Value::as_u64).unwrap_or(listed);
        Some(Self { total_results, start_index, items_per_page })
    }

    /// The `startIndex` of the next page, or `None` on the last page.
    pub fn next_start_index(&self) -> Option<u64> {
        if self.items_per_page == 0 {
            return None;
        }
        let next = self.start_index + self.items_per_page;
        (next <= self.total_results).then_some(next)
    }
}

/// Items read from a paginated listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pages {
    /// The items, in order, up to and including the one that stopped the walk.
    pub items: Vec<Value>,
    /// The request id of every page read.
    pub request_ids: Vec<String>,
    /// Pages read.
    pub pages: usize,
    /// Whether the walk stopped at the page limit with more pages left.
    pub truncated: bool,
}
