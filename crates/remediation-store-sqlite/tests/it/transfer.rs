//! Copying an installation out of and into the SQLite store (`remediate store copy`): every
//! section round-trips, the audit log byte for byte with its checkpoint, between SQLite files
//! and the in-memory store alike; a tampered source and an occupied target are refused; 10,000
//! actions copy in bounded pages.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use remediation_core::store::transfer::{CopyError, Section, TransferStore, copy_installation};
use remediation_core::{ActionFilter, CheckpointVerdict, PageRequest, Store};
use remediation_store_sqlite::{SqliteStore, open_transfer_store};
use remediation_testkit::store_transfer::{archived_source_is_refused, assert_same, populate, round_trip};
use remediation_testkit::{ActionBuilder, InMemoryStore};

use crate::support::{key, raw};

fn keyed(dir: &Path, name: &str) -> Arc<dyn TransferStore> {
    open_transfer_store(dir.join(name), Some(key())).expect("open")
}

/// Every stored audit row as text, by seq.
fn audit_text(path: &Path) -> Vec<(i64, String, String, String)> {
    let conn = raw(path);
    let mut stmt = conn.prepare("SELECT seq, record_json, prev_hash, hash FROM audit ORDER BY seq").expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn checkpoint_row(path: &Path) -> Option<(i64, String, String)> {
    raw(path)
        .query_row("SELECT count, head, mac FROM audit_checkpoints", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .ok()
}

#[tokio::test]
async fn sqlite_to_sqlite_carries_everything_and_the_audit_log_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, to) = (keyed(dir.path(), "from.db"), keyed(dir.path(), "to.db"));
    round_trip(from.as_ref(), to.as_ref(), 24).await;
    let (a, b) = (dir.path().join("from.db"), dir.path().join("to.db"));
    let rows = audit_text(&a);
    assert!(rows.len() > 24, "{} records", rows.len());
    assert_eq!(rows, audit_text(&b), "seq, record text, prev_hash and hash identical");
    assert!(checkpoint_row(&a).is_some());
    assert_eq!(checkpoint_row(&a), checkpoint_row(&b), "the checkpoint is carried over as sealed");
    assert_eq!(to.verify_audit().await.expect("verify").checkpoint, CheckpointVerdict::Matches);
    // The copy keeps working as a store: the next change extends the copied chain.
    let head = to.verify_audit().await.expect("verify").records;
    populate_more(to.as_ref()).await;
    let after = to.verify_audit().await.expect("verify");
    assert!(after.is_intact() && after.records > head, "{after}");
}

/// One more action through the ordinary path.
async fn populate_more(store: &dyn Store) {
    let detail = ActionBuilder::new().seed(999_999).state(remediation_core::State::PendingApproval).detail().build();
    let a = &detail.action;
    let record = remediation_testkit::transition(a.id, None, a.state, "suggest", a.created_at);
    store.create_action(&detail, &record).await.expect("create after copy");
}

#[tokio::test]
async fn the_contract_is_store_agnostic_memory_to_sqlite_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Without a key on either side: the in-memory store keeps no checkpoint.
    let sqlite: Arc<dyn TransferStore> = open_transfer_store(dir.path().join("s.db"), None).expect("open");
    round_trip(&InMemoryStore::new(), sqlite.as_ref(), 13).await;
    let back = InMemoryStore::new();
    let sqlite2: Arc<dyn TransferStore> = open_transfer_store(dir.path().join("s2.db"), None).expect("open");
    let hash = populate(sqlite2.as_ref(), 9).await;
    copy_installation(sqlite2.as_ref(), &back, 4, &mut |_| {}).await.expect("sqlite to memory");
    assert_same(sqlite2.as_ref(), &back, &hash, true).await;
}

#[tokio::test]
async fn a_source_with_archived_records_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, to) = (keyed(dir.path(), "from.db"), keyed(dir.path(), "to.db"));
    archived_source_is_refused(from.as_ref(), to.as_ref()).await;
}

#[tokio::test]
async fn a_tampered_source_is_not_copied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = keyed(dir.path(), "from.db");
    populate(from.as_ref(), 6).await;
    // Rewrite one record's comment behind the store's back.
    raw(&dir.path().join("from.db"))
        .execute_batch(
            "DROP TRIGGER audit_no_update;
             UPDATE audit SET record_json = replace(record_json, 'the pipeline moved', 'nothing happened') WHERE seq = 5;",
        )
        .expect("tamper");
    let to = keyed(dir.path(), "to.db");
    let err = copy_installation(from.as_ref(), to.as_ref(), 50, &mut |_| {}).await.expect_err("refused");
    assert!(matches!(err, CopyError::SourceTampered { .. }), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert_eq!(to.occupied().await.expect("occupied"), None, "nothing was written to the target");
}

#[tokio::test]
async fn a_cut_off_tail_is_refused_with_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = keyed(dir.path(), "from.db");
    populate(from.as_ref(), 6).await;
    raw(&dir.path().join("from.db"))
        .execute_batch(
            "DROP TRIGGER audit_no_delete;
             DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit);",
        )
        .expect("truncate");
    let to = keyed(dir.path(), "to.db");
    let err = copy_installation(from.as_ref(), to.as_ref(), 50, &mut |_| {}).await.expect_err("refused");
    assert!(matches!(err, CopyError::SourceTampered { ref report } if report.first_break.is_none()), "{err}");
}

#[tokio::test]
async fn an_occupied_target_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, to) = (keyed(dir.path(), "from.db"), keyed(dir.path(), "to.db"));
    populate(from.as_ref(), 3).await;
    populate_more(to.as_ref()).await;
    let before = audit_text(&dir.path().join("to.db"));
    let err = copy_installation(from.as_ref(), to.as_ref(), 50, &mut |_| {}).await.expect_err("refused");
    assert!(matches!(err, CopyError::TargetNotEmpty { section: Section::Actions }), "{err}");
    assert_eq!(audit_text(&dir.path().join("to.db")), before);
}

#[tokio::test]
async fn ten_thousand_actions_copy_page_by_page() {
    const N: u64 = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = SqliteStore::open_with(dir.path().join("from.db"), Some(key())).expect("open");
    let details: Vec<_> = (0..N)
        .map(|n| {
            let at = remediation_testkit::fixed_time() + time::Duration::milliseconds(i64::try_from(n).unwrap_or(0));
            ActionBuilder::new().seed(1_000_000 + n).state(remediation_core::State::Approved).at(at).detail().build()
        })
        .collect();
    source.seed_actions(&details).expect("seed");
    let hash = populate(&source, 20).await;
    let to = keyed(dir.path(), "to.db");
    let mut pages = 0u32;
    let started = Instant::now();
    let report = copy_installation(&source, to.as_ref(), 500, &mut |p| {
        if p.section == Section::Actions {
            pages += 1;
        }
    })
    .await
    .expect("copy");
    let took = started.elapsed();
    eprintln!("copied {} actions in {took:?} ({pages} pages of actions)", N + 20);
    assert_eq!(report.copied[&Section::Actions], N + 20);
    assert_eq!(pages, 21, "pages of at most 500 actions");
    assert_same(&source, to.as_ref(), &hash, false).await;
    let listed = to
        .list(
            &ActionFilter { state: Some(remediation_core::State::Approved), ..ActionFilter::default() },
            &PageRequest::first(20_000),
        )
        .await
        .expect("list");
    assert!(listed.items.len() as u64 >= N);
}

#[tokio::test]
async fn legacy_transitions_and_unsequenced_entries_are_carried_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("from.db"), dir.path().join("to.db"));
    let from = keyed(dir.path(), "from.db");
    let hash = populate(from.as_ref(), 3).await;
    let first = from.list(&ActionFilter::default(), &PageRequest::first(1)).await.expect("list").items[0].id;
    // A transition written before audit records held them (schema < 8), and an entry an older
    // version left unsequenced.
    let legacy = remediation_testkit::transition(
        first,
        None,
        remediation_core::State::Suggested,
        "import",
        remediation_testkit::fixed_time(),
    );
    let note = remediation_core::AuditBody::Settings(remediation_core::SettingsRecord {
        setting_event: "left_by_an_older_version".to_owned(),
        actor: "system".to_owned(),
        credential: None,
        at: remediation_testkit::fixed_time(),
        comment: None,
        previous: serde_json::Value::Null,
        value: serde_json::Value::Null,
        action_id: None,
    });
    let conn = raw(&a);
    conn.execute(
        "INSERT INTO transitions (action_id, record_json) VALUES (?1, ?2)",
        rusqlite::params![first.to_string(), serde_json::to_string(&legacy).expect("json")],
    )
    .expect("legacy row");
    conn.execute(
        "INSERT INTO audit_pending (tenant, body_json) VALUES ('default', ?1)",
        rusqlite::params![serde_json::to_string(&note).expect("json")],
    )
    .expect("pending row");
    drop(conn);
    let to = keyed(dir.path(), "to.db");
    let report = copy_installation(from.as_ref(), to.as_ref(), 2, &mut |_| {}).await.expect("copy");
    assert_eq!(report.copied[&Section::PendingAudit], 1);
    assert_same(from.as_ref(), to.as_ref(), &hash, true).await;
    assert!(to.transitions(first).await.expect("t").iter().any(|t| t.event == "import"), "the legacy row is read");
    // The next write on the copy seals the carried entry first, then its own.
    let records = to.verify_audit().await.expect("verify").records;
    populate_more(to.as_ref()).await;
    let after = to.verify_audit().await.expect("verify");
    assert!(after.is_intact(), "{after}");
    assert_eq!(after.records, records + 2);
    assert_eq!(crate::support::count(&b, "audit_pending"), 0);
}
