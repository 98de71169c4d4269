//! The engine asks a provider for its health and permissions once per TTL, not on every
//! suggestion, while an operator's explicit check always reaches the provider.

use std::sync::Arc;

use remediation_config::Config;
use remediation_core::{ManualClock, Target};
use remediation_runtime::{Runtime, RuntimeOptions};
use remediation_testkit::fakes::okta::FakeOkta;
use remediation_testkit::{RequestBuilder, requester};

/// The API token the fake org accepts with full rights.
const TOKEN: &str = "00fake-okta-api-token-full";

/// The requests of Okta's health and permission checks: each reads one item of a listing.
fn check_calls(fake: &FakeOkta, since: u64) -> usize {
    fake.log().since(since).iter().filter(|r| r.query.iter().any(|(k, v)| k == "limit" && v == "1")).count()
}

/// A fake Okta org with users `00uuser0`..`00uuser4` in group `00gsales`, and a runtime on a
/// manual clock whose one connector (`okta-test`) has the `[[connectors]]` line `extra`.
struct Setup {
    fake: FakeOkta,
    clock: Arc<ManualClock>,
    runtime: Runtime,
    _dir: tempfile::TempDir,
}

async fn setup(extra: &str) -> Setup {
    let fake = FakeOkta::start().await.unwrap();
    fake.org().add_api_token(TOKEN);
    fake.org().add_group("00gsales", "OKTA_GROUP");
    for i in 0..5 {
        fake.org().add_user(&format!("00uuser{i}"), "ACTIVE");
        fake.org().add_member("00gsales", &format!("00uuser{i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("okta.token"), format!("{TOKEN}\n")).unwrap();
    let config: Config = toml::from_str(&format!(
        "[[connectors]]\ntype = \"okta\"\nid = \"okta-test\"\norg_url = \"{}\"\n\
         auth = {{ method = \"ssws\", token = {{ file = \"{}\" }} }}\n{extra}\n",
        fake.org_url(),
        dir.path().join("okta.token").display()
    ))
    .unwrap();
    let clock = Arc::new(ManualClock::new(time::macros::datetime!(2026-01-01 0:00 UTC)));
    let options = RuntimeOptions { clock: Some(clock.clone()), ..RuntimeOptions::default() };
    let runtime = Runtime::build(&config, dir.path(), None, options).unwrap();
    Setup { fake, clock, runtime, _dir: dir }
}

impl Setup {
    /// Suggests revoking `00uuser{i}` from `00gsales`.
    async fn suggest(&self, i: usize) {
        let engine = self.runtime.active().await.unwrap().engine;
        let target = Target {
            identity: format!("00uuser{i}"),
            resource: Some("00gsales".to_owned()),
            grant: None,
            grant_type: "group_membership".to_owned(),
        };
        engine
            .suggest(RequestBuilder::new().connector("okta-test").target(target).build(), &requester())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn suggestions_within_the_ttl_ask_for_health_and_permissions_once() {
    let s = setup("").await;
    s.suggest(0).await;
    let one_set = check_calls(&s.fake, 0);
    assert!(one_set >= 5, "one health call and four permission reads at least: {one_set}");
    let mark = s.fake.log().count();
    for i in 1..4 {
        s.clock.advance(time::Duration::seconds(10));
        s.suggest(i).await;
    }
    assert_eq!(check_calls(&s.fake, mark), 0, "within the TTL the checks are not asked again");

    // The operator's explicit check reaches the provider.
    let mark = s.fake.log().count();
    let okta = &s.runtime.connectors().await.unwrap()[0];
    assert!(okta.health().await.unwrap().healthy);
    assert!(okta.check_permissions().await.unwrap().can_write());
    assert_eq!(check_calls(&s.fake, mark), one_set);

    // Past the TTL (60 s from the first answer), one new set.
    s.clock.advance(time::Duration::seconds(31));
    let mark = s.fake.log().count();
    s.suggest(4).await;
    assert_eq!(check_calls(&s.fake, mark), one_set);
}

#[tokio::test]
async fn the_ttl_is_set_per_connector() {
    let s = setup("check_ttl_secs = 0").await;
    s.suggest(0).await;
    let one_set = check_calls(&s.fake, 0);
    s.suggest(1).await;
    assert_eq!(check_calls(&s.fake, 0), 2 * one_set, "a TTL of 0 asks every time");

    let s = setup("check_ttl_secs = 600").await;
    s.suggest(0).await;
    s.clock.advance(time::Duration::seconds(599));
    s.suggest(1).await;
    assert_eq!(check_calls(&s.fake, 0), one_set, "still inside a 600 s TTL");
}
