//! In-process tests of the API: the router driven with `tower::ServiceExt::oneshot`.

mod api;
mod authz;
mod findings;
mod secrets;
mod support;
