//! The HTTP protocol part of conformance: one call per HTTP connector proves that it waits
//! out the provider's own throttling signal, retries transient failures only when a repeat
//! is safe, refreshes its token once on 401, and finds a target on the third page of a
//! listing (for connectors that page through listings at all).

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use remediation_core::{Action, Connector, ConnectorErrorKind, OutcomeStatus, Snapshot};

use super::{Case, Report, Subject, action_for};
use crate::fakes::{Faults, RecordedRequest, RequestLog};

/// A [`Subject`] whose provider is a fake with a [`Faults`] switchboard.
///
/// The connector must be built with a sleeper that does not sleep (such as
/// `remediation_connector_http::RecordingSleeper`), so throttling waits cost no time.
#[async_trait]
pub trait HttpSubject: Subject {
    /// The fake's fault switchboard.
    fn faults(&self) -> &Faults;

    /// The fake's request log.
    fn log(&self) -> &RequestLog;

    /// Whether the connector's credentials can be refreshed after a 401 (OAuth tokens: yes;
    /// a static API token: no).
    fn refreshes_tokens(&self) -> bool;

    /// A fresh case (a new target each call) whose `execute` sends only requests that are
    /// safe to repeat.
    async fn idempotent_case(&self) -> Case;

    /// A fresh case whose `execute` ends with a POST that is not safe to repeat, if the
    /// connector has one.
    async fn non_idempotent_case(&self) -> Option<Case>;

    /// A fresh case whose target the connector finds only on the third page of a listing.
    async fn paged_case(&self) -> Case;

    /// Whether the connector finds targets through paginated listings. A connector that only
    /// reads single resources by key (Google's `members.get`, a webhook receiver) answers
    /// `false`, and the third-page check is skipped.
    fn paginates(&self) -> bool {
        true
    }
}

/// Runs the HTTP protocol suite; panics listing every failed check. Leaves the switchboard
/// reset.
pub async fn http_protocol(subject: &dyn HttpSubject) {
    let mut report = Report::default();
    let connector = subject.connector();
    throttled(subject, &connector, &mut report).await;
    subject.faults().reset();
    transient_idempotent(subject, &connector, &mut report).await;
    subject.faults().reset();
    transient_not_idempotent(subject, &connector, &mut report).await;
    subject.faults().reset();
    expired_token(subject, &connector, &mut report).await;
    subject.faults().reset();
    refresh_does_not_help(subject, &connector, &mut report).await;
    subject.faults().reset();
    if subject.paginates() {
        third_page(subject, &connector, &mut report).await;
        subject.faults().reset();
    }
    // With the provider's API description attached (`Faults::describe`), every request the
    // suite made must be one it defines.
    for v in subject.faults().violations() {
        report.failures.push(format!("a request the provider's API description does not allow: {v}"));
    }
    if !report.failures.is_empty() {
        let mut msg = format!("HTTP protocol conformance: {} check(s) failed\n", report.failures.len());
        for f in &report.failures {
            let _ = writeln!(msg, "  - {f}");
        }
        panic!("{msg}");
    }
}

fn summary(requests: &[RecordedRequest]) -> String {
    requests.iter().map(|r| format!("{} {} -> {}", r.method, r.path, r.status)).collect::<Vec<_>>().join(", ")
}

/// Throttling answered with the provider's own signal is waited out, on reads and writes.
async fn throttled(subject: &dyn HttpSubject, connector: &Arc<dyn Connector>, report: &mut Report) {
    let case = subject.idempotent_case().await;
    let name = format!("throttled {}", case.name);
    subject.faults().throttle_next(2);
    let mark = subject.log().count();
    let before = match connector.snapshot(&case.target).await {
        Ok(s) => s,
        Err(e) => {
            report.fail(format!("{name}: snapshot through two throttled answers failed: {e}"));
            return;
        }
    };
    let throttled_reads = subject.log().since(mark).len();
    report.check(throttled_reads >= 3, || {
        format!("{name}: the fake served {throttled_reads} request(s); expected two throttled ones and a retry")
    });
    let action = action_for(connector.id(), case.kind.clone(), case.target.clone());
    subject.faults().throttle_next(1);
    let mark = subject.log().count();
    match connector.execute(&action, &before).await {
        Ok(o) => {
            report.check(o.status == OutcomeStatus::Applied, || format!("{name}: execute answered {:?}", o.status))
        }
        Err(e) => report.fail(format!("{name}: execute through a throttled answer failed: {e}")),
    }
    let seen = subject.log().since(mark);
    report.check(seen.len() >= 2, || format!("{name}: no retry after the throttled answer ({})", summary(&seen)));
}

/// Reads `case`'s target and builds a fresh action for it; `None`, with the failure recorded,
/// when the read fails.
async fn prepared(
    connector: &Arc<dyn Connector>,
    case: &Case,
    name: &str,
    report: &mut Report,
) -> Option<(Snapshot, Action)> {
    match connector.snapshot(&case.target).await {
        Ok(before) => Some((before, action_for(connector.id(), case.kind.clone(), case.target.clone()))),
        Err(e) => {
            report.fail(format!("{name}: snapshot failed: {e}"));
            None
        }
    }
}

/// A 5xx on an idempotent call is retried and the action succeeds.
async fn transient_idempotent(subject: &dyn HttpSubject, connector: &Arc<dyn Connector>, report: &mut Report) {
    let case = subject.idempotent_case().await;
    let name = format!("transient {}", case.name);
    let Some((before, action)) = prepared(connector, &case, &name, report).await else {
        return;
    };
    subject.faults().fail_next(1, 503);
    let mark = subject.log().count();
    match connector.execute(&action, &before).await {
        Ok(o) => {
            report.check(o.status == OutcomeStatus::Applied, || format!("{name}: execute answered {:?}", o.status))
        }
        Err(e) => report.fail(format!("{name}: an idempotent call was not retried after a 503: {e}")),
    }
    let seen = subject.log().since(mark);
    let failed = seen.iter().position(|r| r.status == 503);
    let retried =
        failed.is_some_and(|i| seen[i + 1..].iter().any(|r| r.method == seen[i].method && r.path == seen[i].path));
    report.check(retried, || format!("{name}: the failed request was not sent again ({})", summary(&seen)));
}

/// A 5xx on a POST not marked idempotent fails as transient without a second request.
async fn transient_not_idempotent(subject: &dyn HttpSubject, connector: &Arc<dyn Connector>, report: &mut Report) {
    let Some(case) = subject.non_idempotent_case().await else {
        return;
    };
    let name = format!("non-idempotent {}", case.name);
    let Some((before, action)) = prepared(connector, &case, &name, report).await else {
        return;
    };
    subject.faults().fail_next_for(axum::http::Method::POST, 1, 500);
    let mark = subject.log().count();
    match connector.execute(&action, &before).await {
        Ok(o) => report.fail(format!("{name}: execute succeeded ({:?}) although its POST failed with 500", o.status)),
        Err(e) => report.check(e.kind == ConnectorErrorKind::Transient, || {
            format!("{name}: a 500 on a non-idempotent POST should be transient, got {e}")
        }),
    }
    let seen = subject.log().since(mark);
    match seen.iter().position(|r| r.status == 500) {
        Some(i) => {
            let again = seen[i + 1..].iter().any(|r| r.method == seen[i].method && r.path == seen[i].path);
            report.check(!again, || format!("{name}: the non-idempotent POST was sent twice ({})", summary(&seen)));
        }
        None => report.fail(format!("{name}: the connector sent no POST ({})", summary(&seen))),
    }
}

/// An expired token is refreshed once and the action succeeds; a static one is
/// `Unauthenticated` after a single request.
async fn expired_token(subject: &dyn HttpSubject, connector: &Arc<dyn Connector>, report: &mut Report) {
    let case = subject.idempotent_case().await;
    let name = format!("expired token {}", case.name);
    let Some((before, action)) = prepared(connector, &case, &name, report).await else {
        return;
    };
    subject.faults().expire_tokens();
    let mark = subject.log().count();
    let result = connector.execute(&action, &before).await;
    let seen = subject.log().since(mark);
    let unauthorized = seen.iter().filter(|r| r.status == 401).count();
    if subject.refreshes_tokens() {
        match result {
            Ok(o) => {
                report.check(o.status == OutcomeStatus::Applied, || format!("{name}: execute answered {:?}", o.status))
            }
            Err(e) => report.fail(format!("{name}: the connector did not refresh its expired token: {e}")),
        }
        report.check(unauthorized == 1, || {
            format!("{name}: expected one 401 then a refreshed retry ({})", summary(&seen))
        });
    } else {
        match result {
            Ok(_) => report.fail(format!("{name}: execute succeeded with an expired static token")),
            Err(e) => report.check(e.kind == ConnectorErrorKind::Unauthenticated, || {
                format!("{name}: an expired static token should be unauthenticated, got {e}")
            }),
        }
        report
            .check(unauthorized == 1, || format!("{name}: a static token was retried after 401 ({})", summary(&seen)));
    }
}

/// When the refreshed token is refused too, the call is `Unauthenticated` after exactly one
/// refresh-and-retry.
async fn refresh_does_not_help(subject: &dyn HttpSubject, connector: &Arc<dyn Connector>, report: &mut Report) {
    let case = subject.idempotent_case().await;
    let name = format!("refused token {}", case.name);
    subject.faults().reject_auth_next(10);
    let mark = subject.log().count();
    match connector.snapshot(&case.target).await {
        Ok(_) => report.fail(format!("{name}: snapshot succeeded although every request got 401")),
        Err(e) => report.check(e.kind == ConnectorErrorKind::Unauthenticated, || {
            format!("{name}: expected unauthenticated after a refused refresh, got {e}")
        }),
    }
    let seen = subject.log().since(mark);
    let unauthorized = seen.iter().filter(|r| r.status == 401).count();
    let expected = if subject.refreshes_tokens() { 2 } else { 1 };
    report.check(unauthorized == expected, || {
        format!("{name}: expected {expected} request(s) answered 401, saw {unauthorized} ({})", summary(&seen))
    });
}

/// A target on the third page of a listing is found, changed and read back.
async fn third_page(subject: &dyn HttpSubject, connector: &Arc<dyn Connector>, report: &mut Report) {
    let case = subject.paged_case().await;
    let name = format!("third page {}", case.name);
    let mark = subject.log().count();
    let before = match connector.snapshot(&case.target).await {
        Ok(s) => s,
        Err(e) => {
            report.fail(format!("{name}: snapshot failed: {e}"));
            return;
        }
    };
    let reads = subject.log().since(mark).iter().filter(|r| r.method == "GET").count();
    report.check(reads >= 3, || format!("{name}: the snapshot read {reads} page(s); the fixture needs three"));
    let action = action_for(connector.id(), case.kind.clone(), case.target.clone());
    let planned = match connector.plan(&action, &before).await {
        Ok(p) => p,
        Err(e) => {
            report.fail(format!("{name}: plan failed: {e}"));
            return;
        }
    };
    report.check(planned.expected_after != before, || format!("{name}: the target on page three was not found"));
    match connector.execute(&action, &before).await {
        Ok(o) => {
            report.check(o.status == OutcomeStatus::Applied, || format!("{name}: execute answered {:?}", o.status))
        }
        Err(e) => report.fail(format!("{name}: execute failed: {e}")),
    }
    match connector.snapshot(&case.target).await {
        Ok(after) => report.check(after == planned.expected_after, || {
            format!(
                "{name}: state after execute {} differs from the plan {}",
                after.state, planned.expected_after.state
            )
        }),
        Err(e) => report.fail(format!("{name}: snapshot after execute failed: {e}")),
    }
}
