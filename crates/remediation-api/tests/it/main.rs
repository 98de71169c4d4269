//! In-process tests of the API: the router driven with `tower::ServiceExt::oneshot`.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on the first surprise")]

mod api;
mod authz;
mod conformance;
mod console;
mod contract;
mod controls;
mod findings;
mod incident;
mod principals;
mod secrets;
mod serve;
mod support;
mod tenants;
mod ui;
mod ui_incident;
