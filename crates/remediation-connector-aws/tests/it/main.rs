//! Integration tests of the AWS cloud-posture connector, in one binary: configuration,
//! hostile identifiers refused before any request, and against a local moto server
//! (`REMEDIATION_TEST_MOTO`, started by `.ci/setup-moto.sh`) the conformance suite and a
//! scenario per operation with drift refusal.

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod config;
mod conformance;
mod errors;
mod hostile;
mod moto;
mod policy;
mod rotation;
mod scenarios;

use std::future::Future;

/// Runs a future to completion on a fresh runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}
