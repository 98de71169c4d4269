//! Integration tests of the Okta connector against the testkit's fake Okta org.

mod api_description;
mod config;
mod conformance;
mod described;
mod golden;
mod live;
mod lookup;
mod paths;
mod support;
