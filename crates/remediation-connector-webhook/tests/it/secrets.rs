//! The signing secret never appears in `Debug` output, errors or log lines.

use std::sync::{Arc, Mutex};

use remediation_connector_webhook::{WebhookConfig, WebhookConnector, WebhookOptions};
use remediation_core::{ActionKind, Connector, ManualClock, SystemClock};
use remediation_testkit::ActionBuilder;
use tracing::instrument::WithSubscriber;

use crate::{SECRET, config, connector, fake, fresh_identity, target};

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

#[tokio::test]
async fn the_secret_is_in_no_debug_error_or_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let fake = fake().await;
    let file_config = WebhookConfig { secret_env: None, secret_file: Some(path.clone()), ..config(&fake.url()) };
    let loaded = file_config.load_secret().unwrap();
    let no_waits = || WebhookOptions {
        sleeper: Arc::new(remediation_connector_http::RecordingSleeper::new()),
        ..Default::default()
    };
    let from_file = WebhookConnector::new(&file_config, loaded.clone(), no_waits()).unwrap();
    let mut seen = vec![
        format!("{file_config:?}"),
        format!("{from_file:?}"),
        format!("{loaded:?}"),
        format!("{:?}", WebhookOptions::default()),
    ];

    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    async {
        let t = target("app_role", &fresh_identity(&fake), Some("crm"));
        let action = ActionBuilder::new().connector("hooks").kind(ActionKind::Revoke).target(t.clone()).build();
        let before = from_file.snapshot(&t).await.unwrap();
        from_file.execute(&action, &before).await.unwrap();
        // Failures: a stale signature, a missing target, a refused write, a dead receiver.
        let stale = ManualClock::new(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
        let (old, _) = connector(&fake, SECRET, Arc::new(stale));
        let e = old.snapshot(&t).await.unwrap_err();
        seen.push(format!("{e:?} {e}"));
        let e = from_file.snapshot(&target("app_role", "nobody", None)).await.unwrap_err();
        seen.push(format!("{e:?} {e}"));
        fake.faults().fail_next(8, 500);
        let e = from_file.execute(&action, &before).await.unwrap_err();
        seen.push(format!("{e:?} {e}"));
        let gone =
            remediation_testkit::fakes::webhook::WebhookFake::start(SECRET, Arc::new(SystemClock)).await.unwrap();
        let url = gone.url();
        drop(gone);
        let dead = WebhookConnector::new(&config(&url), SECRET.to_owned().into(), no_waits()).unwrap();
        let e = dead.snapshot(&t).await.unwrap_err();
        seen.push(format!("{e:?} {e}"));
    }
    .with_subscriber(subscriber)
    .await;
    seen.push(String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned());
    assert!(seen.last().is_some_and(|l| l.contains("sending")), "the log captured the requests");
    for text in &seen {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
    }
}
