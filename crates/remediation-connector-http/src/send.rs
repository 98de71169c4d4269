//! The send loop: authorization, one token refresh on 401, throttling waits and transient
//! retries within the policy's bounds.

use remediation_core::{ConnectorError, ConnectorErrorKind};
use reqwest::StatusCode;

use crate::client::{HttpClient, Request, Response, describe, finish, request_id};
use crate::status::map_status;

pub(crate) async fn run(client: &HttpClient, req: Request) -> Result<Response, ConnectorError> {
    let p = client.parts();
    let url = req.url(p.base)?;
    let path = url.path().to_owned();
    let max_attempts = p.retry.max_attempts.max(1);
    let mut attempts = 0u32;
    let mut retries = 0u32;
    let mut refreshed = false;
    let mut request_ids = Vec::new();
    loop {
        attempts += 1;
        let authorization = match p.auth {
            Some(a) => Some(a.authorization().await?),
            None => None,
        };
        let builder = req.build(p.inner, url.clone(), authorization.as_ref())?;
        let request = finish(builder, p.signer)?;
        // The URL about to be sent, after every normalisation, must still be the template's.
        req.check_sent(p.base, request.url())?;
        tracing::debug!(method = %req.method(), path = %path, attempt = attempts, "sending");
        let response = match p.inner.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                // A refused connection never reached the provider; a timeout may have.
                let safe = e.is_connect() || req.is_idempotent();
                if safe && retries + 1 < max_attempts {
                    retries += 1;
                    let wait = p.retry.backoff(retries);
                    tracing::debug!(path = %path, wait_ms = wait.as_millis() as u64, "transport failure; retrying");
                    p.sleeper.sleep(wait).await;
                    continue;
                }
                return Err(ConnectorError::new(ConnectorErrorKind::Transient, describe(&e)));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let rid = request_id(&headers);
        request_ids.extend(rid.clone());
        let body = read_body(response, p.max_response_bytes).await?;
        tracing::debug!(path = %path, status = status.as_u16(), request_id = rid.as_deref().unwrap_or(""), "received");

        if status == StatusCode::UNAUTHORIZED {
            // A 401 was refused before any processing: one refresh-and-retry is always safe.
            if !refreshed && p.auth.is_some_and(|a| a.invalidate()) {
                refreshed = true;
                tracing::debug!(path = %path, "401; refreshing the token once");
                continue;
            }
            return Err(map_status(status, &headers, &body, p.parser));
        }

        if let Some(throttle) = p.retry.signal.classify(status, &headers, &body, p.clock.now()) {
            // 429 and rate-limit 403s are refusals: the provider did nothing, so even a
            // non-idempotent call may be sent again. A throttling 5xx may have been processed.
            let refused = matches!(status.as_u16(), 403 | 429);
            if req.is_idempotent() || refused {
                let wait = p.retry.throttle_wait(&throttle, retries + 1);
                if wait > p.retry.max_wait || retries + 1 >= max_attempts {
                    let mut err = map_status(status, &headers, &body, p.parser);
                    err.kind = ConnectorErrorKind::Throttled { retry_after: Some(wait) };
                    return Err(err);
                }
                retries += 1;
                tracing::debug!(path = %path, wait_ms = wait.as_millis() as u64, "throttled; waiting");
                p.sleeper.sleep(wait).await;
                continue;
            }
        } else if is_transient(status) && req.is_idempotent() && retries + 1 < max_attempts {
            retries += 1;
            let wait = crate::retry::retry_after(&headers, p.clock.now())
                .filter(|w| *w <= p.retry.max_wait)
                .unwrap_or_else(|| p.retry.backoff(retries));
            tracing::debug!(path = %path, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "transient failure; retrying");
            p.sleeper.sleep(wait).await;
            continue;
        }
        return Ok(Response::new(status, headers, body, request_ids, attempts));
    }
}

/// Reads `response`'s body, failing as soon as it exceeds `limit` bytes (announced by
/// `Content-Length` or counted while reading), so a huge answer never sits in memory whole.
pub(crate) async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ConnectorError> {
    let too_big = |what: &str| {
        let mut err = ConnectorError::permanent(format!(
            "the provider's response body {what} the {limit}-byte limit (max_response_bytes); refusing to read it"
        ));
        if let Some(id) = request_id(response.headers()) {
            err = err.with_request_id(id);
        }
        err
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big("announces more than"));
    }
    let too_big = too_big("exceeds");
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ConnectorError::new(ConnectorErrorKind::Transient, describe(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_big);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 500 | 502 | 503 | 504)
}
