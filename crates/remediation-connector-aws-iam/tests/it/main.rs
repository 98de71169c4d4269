//! Integration tests of the AWS IAM connector, in one binary: configuration and secrets, the
//! least-privilege policy file, and the semantic conformance suite and error mapping against
//! a local moto server (`REMEDIATION_TEST_MOTO`, started by `.ci/setup-moto.sh`).

// A test that meets the unexpected should stop right there; `unwrap` says so most briefly.
#![allow(clippy::unwrap_used)]

mod config;
mod conformance;
mod moto;
mod policy;
mod provider;

use std::future::Future;

/// Runs a future to completion on a fresh runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}
