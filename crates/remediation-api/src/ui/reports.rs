//! The reports page (`/ui/reports`): a form for the compliance report of a period, which
//! `/ui/reports/compliance` answers with the API's own report (`GET /v1/reports/compliance`,
//! same handler and role) as a download in the chosen format.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use remediation_service::report::ReportFormat;
use serde::Deserialize;
use time::Duration;

use super::{Flash, Me, Ui, html, open_page};
use crate::auth::Caller;
use crate::extract::ApiQuery;
use crate::handlers;
use crate::types::ComplianceQuery;

/// The form's fields.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ReportForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    format: String,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    flash: Option<Flash>,
    me: Me,
    from: String,
    to: String,
    format: String,
    formats: Vec<&'static str>,
}

/// `2026-12-07`.
fn day(t: time::OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The form, filled with `form` or with the last 30 days.
fn form_page(ui: &Ui, signed: &super::Signed, flash: Option<Flash>, form: ReportForm) -> ReportsPage {
    let now = ui.now();
    let or = |v: String, default: String| if v.trim().is_empty() { default } else { v };
    ReportsPage {
        flash,
        me: Me::new(signed, "reports"),
        from: or(form.from, day(now - Duration::days(30))),
        to: or(form.to, day(now + Duration::days(1))),
        format: or(form.format, "html".to_owned()),
        formats: ReportFormat::ALL.iter().map(|f| f.as_str()).collect(),
    }
}

/// `GET /ui/reports`.
pub(super) async fn page(AxState(ui): AxState<Ui>, headers: HeaderMap) -> Response {
    let (signed, flash) = match open_page(&ui, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    html(StatusCode::OK, &form_page(&ui, &signed, flash, ReportForm::default()))
}

/// A file name part: letters, digits and `-` only.
fn file_part(s: &str) -> String {
    s.chars().take(40).map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// `GET /ui/reports/compliance?from=&to=&format=`: the report as a download, or the form
/// again with the API's refusal as a flash.
pub(super) async fn compliance(
    AxState(ui): AxState<Ui>,
    headers: HeaderMap,
    form: Result<Query<ReportForm>, QueryRejection>,
) -> Response {
    // A download leaves the page in place: the flash waiting for the next page stays.
    let signed = match ui.signed_in(&headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return super::login_page(&ui, &headers, StatusCode::OK, None),
        Err(e) => return super::error_page(&e),
    };
    let form = form.map(|Query(f)| f).unwrap_or_default();
    let format = ReportFormat::ALL.into_iter().find(|f| f.as_str() == form.format.trim());
    let Some(format) = format else {
        let why = Flash::error(format!("unknown format `{}`; choose html, csv or json", form.format));
        return html(StatusCode::BAD_REQUEST, &form_page(&ui, &signed, Some(why), form));
    };
    let query = ComplianceQuery { from: form.from.clone(), to: form.to.clone(), format: Some(format) };
    match handlers::compliance_report(AxState(ui.api.clone()), Caller(signed.actor.clone()), ApiQuery(query)).await {
        Ok(mut response) => {
            let name = format!(
                "attachment; filename=\"compliance-{}-{}.{}\"",
                file_part(&form.from),
                file_part(&form.to),
                format.as_str()
            );
            if let Ok(v) = HeaderValue::from_str(&name) {
                response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e) => {
            let status = e.status;
            html(status, &form_page(&ui, &signed, Some(Flash::error(e.message)), form))
        }
    }
}
