//! Integration tests of the PostgreSQL store against a real server (`REMEDIATION_TEST_PG`):
//! skipped with a printed reason without it, failing under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on the first surprise")]

mod actions;
mod audit;
mod config;
mod conformance;
mod delivery;
mod limits;
mod plans;
mod runtimes;
mod sessions;
mod support;
mod transfer;
