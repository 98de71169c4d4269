//! The audit log on PostgreSQL: insert-only for the runtime role and the owner, sequenced by
//! one leader at a time, nothing left behind once writers stop.

use std::sync::Arc;
use std::time::Duration;

use remediation_core::{ActionStore, AuditLog, LeaseRequest, LeaseStore, State, StoreError};
use remediation_store_postgres::{PostgresConfig, PostgresStore, SEQUENCER_LEASE};
use remediation_testkit::{ActionBuilder, fixed_time, transition};

use crate::support::{TestDb, raw};

/// Creates `n` actions (seeds from `from`), each with its audit entry, through `store`.
async fn write(store: &PostgresStore, from: u64, n: u64) {
    for seed in from..from + n {
        let detail = ActionBuilder::new().seed(seed).state(State::Approved).at(fixed_time()).detail().build();
        let a = &detail.action;
        store.create_action(&detail, &transition(a.id, None, a.state, "suggest", a.created_at)).await.expect("create");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_rows_cannot_be_updated_or_deleted_by_the_runtime_role_nor_the_owner() {
    let Some(db) = TestDb::create("audit_rows_cannot_be_updated_or_deleted").await else { return };
    let (schema, store, _clock) = db.store().await;
    write(&store, 1, 3).await;
    assert_eq!(store.sequence_pending().await.expect("sequence"), 3);

    let app = raw(&db.conn(&db.app, &schema)).await;
    for sql in ["UPDATE audit SET hash = 'x' WHERE seq = 1", "DELETE FROM audit WHERE seq = 1", "TRUNCATE audit"] {
        let e = app.batch_execute(sql).await.expect_err(sql);
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {e:?}");
    }
    // The owner holds the privileges, and the triggers still refuse.
    let owner = raw(&db.conn(&db.owner, &schema)).await;
    for sql in ["UPDATE audit SET hash = 'x' WHERE seq = 1", "DELETE FROM audit WHERE seq = 1", "TRUNCATE audit"] {
        let e = owner.batch_execute(sql).await.expect_err(sql);
        let text = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
        assert!(text.contains("append-only"), "{sql}: {e:?}");
    }
    // Neither can append a record that does not extend the chain.
    let e = owner
        .batch_execute(
            "INSERT INTO audit (tenant, seq, action_id, at, record_json, prev_hash, hash)
             VALUES ('default', 7, '', 0, '{}', repeat('0', 64), 'x')",
        )
        .await
        .expect_err("a gap");
    assert!(format!("{:?}", e.as_db_error()).contains("extend the chain"), "{e:?}");
    // The verifiable log's leaves, heads and keys are as insert-only as the records.
    for table in ["audit_leaves", "audit_tree_heads", "audit_keys"] {
        for sql in
            [format!("UPDATE {table} SET tenant = 'x'"), format!("DELETE FROM {table}"), format!("TRUNCATE {table}")]
        {
            let e = app.batch_execute(&sql).await.expect_err(&sql);
            assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {e:?}");
        }
    }
    // A leaf row exists for each sealed record, so the owner's change reaches a trigger.
    for sql in ["UPDATE audit_leaves SET tenant = 'x'", "DELETE FROM audit_leaves", "TRUNCATE audit_leaves"] {
        let e = owner.batch_execute(sql).await.expect_err(sql);
        let text = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
        assert!(text.contains("append-only"), "{sql}: {e:?}");
    }
    let e = owner
        .batch_execute("INSERT INTO audit_leaves (tenant, leaf_index, hash) VALUES ('default', 9, sha256(''::bytea))")
        .await
        .expect_err("a leaf gap");
    assert!(format!("{:?}", e.as_db_error()).contains("extend the log"), "{e:?}");
    // The runtime role owns nothing.
    let owned: i64 = app
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .expect("owned")
        .get(0);
    assert_eq!(owned, 0);
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact() && report.records == 3, "{report}");
    drop(store);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn once_writers_stop_one_sequencer_pass_leaves_nothing_unsequenced() {
    let Some(db) = TestDb::create("once_writers_stop_one_sequencer_pass").await else { return };
    let (_schema, store, _clock) = db.store().await;
    // Four writers at once, while sequencer passes run beside them.
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move { write(&store, 1000 * (w + 1), 150).await })
        })
        .collect();
    let sequencer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut sealed = 0;
            for _ in 0..20 {
                sealed += store.sequence_pending().await.expect("pass");
                tokio::task::yield_now().await;
            }
            sealed
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let during = sequencer.await.expect("sequencer");
    let left = store.unsequenced().await.expect("unsequenced");
    let sealed = store.sequence_pending().await.expect("the last pass");
    assert_eq!(sealed, left, "the pass seals what was left");
    assert_eq!(store.unsequenced().await.expect("unsequenced"), 0, "nothing is left");
    assert_eq!(during + sealed, 600);
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.records, 600);
    println!("sealed {during} entries while writers ran, {sealed} in the last pass");
    drop(store);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_would_be_sequencers_never_both_seal() {
    let Some(db) = TestDb::create("two_would_be_sequencers_never_both_seal").await else { return };
    let (schema, a, clock) = db.store().await;
    let config = PostgresConfig::from_url(&db.conn(&db.app, &schema))
        .expect("config")
        .with_sequencer_interval(None)
        .with_clock(clock.clone());
    let b = PostgresStore::connect(&config, None).await.expect("b");
    assert_ne!(a.holder(), b.holder());

    write(&a, 1, 5).await;
    assert_eq!(a.sequence_pending().await.expect("a leads"), 5);
    write(&b, 10, 5).await;
    assert_eq!(b.sequence_pending().await.expect("b waits"), 0, "a's lease is live: b seals nothing");
    assert_eq!(b.unsequenced().await.expect("left"), 5);

    // a is frozen past its lease; b takes over with the next epoch.
    let stale = a
        .acquire_lease(SEQUENCER_LEASE, &LeaseRequest { holder: a.holder().to_owned(), ttl: Duration::from_secs(10) })
        .await
        .expect("acquire")
        .expect("a still holds it");
    clock.advance(time::Duration::seconds(11));
    assert_eq!(b.sequence_pending().await.expect("b takes over"), 5);
    write(&a, 20, 3).await;
    assert!(
        matches!(a.sequence_batch(&stale).await, Err(StoreError::LeaseLost { .. })),
        "a stale leader's batch is refused"
    );
    assert_eq!(a.unsequenced().await.expect("left"), 3, "and wrote nothing");
    assert_eq!(a.sequence_pending().await.expect("a is no leader now"), 0);

    // Both try at once, again and again, while entries arrive: the log never forks.
    clock.advance(time::Duration::seconds(11));
    let (a, b) = (Arc::new(a), Arc::new(b));
    let tasks: Vec<_> = (0..40u64)
        .map(|n| {
            let (a, b) = (Arc::clone(&a), Arc::clone(&b));
            tokio::spawn(async move {
                write(if n % 2 == 0 { &a } else { &b }, 100 + n, 1).await;
                let (x, y) = tokio::join!(a.sequence_pending(), b.sequence_pending());
                (x.expect("a"), y.expect("b"))
            })
        })
        .collect();
    let mut both = 0;
    for t in tasks {
        let (x, y) = t.await.expect("task");
        if x > 0 && y > 0 {
            both += 1;
        }
    }
    assert_eq!(both, 0, "never do both sequencers seal in the same round");
    let report = a.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{report}");
    let _ = b.sequence_pending().await.expect("b");
    let _ = a.sequence_pending().await.expect("a");
    drop((a, b));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_background_sequencer_seals_what_writers_leave_and_an_action_costs_four_commits() {
    use remediation_core::{BeginOutcome, DetailUpdate, StateChange};
    let Some(db) = TestDb::create("the_background_sequencer_seals").await else { return };
    let (schema, app) = db.migrated().await;
    // One replica writes, another (with the background sequencer on) seals.
    let store = PostgresStore::connect(&app, None).await.expect("connect the writer");
    let config = PostgresConfig::from_url(&db.conn(&db.app, &schema))
        .expect("config")
        .with_sequencer_interval(Some(Duration::from_millis(20)));
    let sequencer = PostgresStore::connect(&config, None).await.expect("connect the sequencer");
    const ACTIONS: u64 = 100;
    let tasks: Vec<_> = (0..ACTIONS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let t0 = fixed_time();
                let detail = ActionBuilder::new().seed(n + 1).state(State::PendingApproval).at(t0).detail().build();
                let id = detail.action.id;
                store.create_action(&detail, &transition(id, None, State::PendingApproval, "suggest", t0)).await?;
                let step = |from, to, event| {
                    StateChange::new(transition(id, Some(from), to, event, t0), DetailUpdate::default())
                };
                store.apply(&step(State::PendingApproval, State::Approved, "approve")).await?;
                let mut begin = step(State::Approved, State::Executing, "begin_execution");
                begin.lease = Some(LeaseRequest { holder: "w".into(), ttl: Duration::from_secs(60) });
                let out =
                    store.begin_execution(&begin, &[remediation_testkit::slot("global", 1000, 3600)], true).await?;
                assert!(matches!(out, BeginOutcome::Started(_)));
                let mut done = step(State::Executing, State::Completed, "execution_succeeded");
                done.fence = Some(1);
                store.apply(&done).await.map(|_| ())
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("lifecycle");
    }
    let writes = store.commits();
    // The background task seals what the writers left, without any call from here.
    let mut polls = 0;
    while sequencer.unsequenced().await.expect("unsequenced") > 0 {
        polls += 1;
        assert!(polls < 2_000, "the background sequencer never caught up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact() && report.records == 4 * ACTIONS, "{report}");
    assert_eq!(sequencer.sequencing_lag().await.expect("lag"), None, "nothing waits");
    let mut lags = sequencer.take_sequencing_lags();
    assert_eq!(lags.len(), usize::try_from(4 * ACTIONS).unwrap(), "one lag per sealed entry");
    assert!(store.take_sequencing_lags().is_empty(), "the writer sealed nothing");
    lags.sort();
    println!(
        "sequencing lag with a 20 ms interval: p50 {:?}, p99 {:?}",
        lags[lags.len() / 2],
        lags[lags.len() * 99 / 100]
    );
    assert_eq!(writes, 4 * ACTIONS, "one commit per state change, the audit entry in it");
    let sealing = sequencer.commits();
    println!(
        "PostgreSQL commits per action (suggest, approve, begin, complete): {:.2} for the changes, {:.2} with the background sequencer's ({sealing} commits)",
        writes as f64 / ACTIONS as f64,
        (writes + sealing) as f64 / ACTIONS as f64
    );
    drop((store, sequencer));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_the_checkpoint_follows_the_sequencer_and_a_cut_tail_stops_it() {
    use remediation_audit::{AuditKey, CheckpointVerdict};
    use remediation_store_postgres::StorePostgresError;
    let Some(db) = TestDb::create("with_a_key_the_checkpoint_follows_the_sequencer").await else { return };
    let (schema, app) = db.migrated().await;
    let hex = "11".repeat(32);
    let key = || AuditKey::from_hex(&hex).expect("key");
    let store = PostgresStore::connect(&app, Some(key())).await.expect("connect");
    write(&store, 1, 5).await;
    assert_eq!(store.sequence_pending().await.expect("sequence"), 5);
    let report = store.verify_audit().await.expect("verify");
    assert_eq!(report.checkpoint, CheckpointVerdict::Matches, "{report}");

    // Someone with the server's keys cuts the last record and moves the head back.
    let su = db.superuser(&schema).await;
    su.batch_execute(
        "SET session_replication_role = replica;
         DELETE FROM audit WHERE seq = 5;
         UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4);",
    )
    .await
    .expect("cut the tail");
    let report = store.verify_audit().await.expect("verify");
    assert!(
        matches!(report.checkpoint, CheckpointVerdict::Mismatch { checkpoint_count: 5, actual_count: 4, .. }),
        "{report}"
    );
    // The sequencer never seals over it.
    write(&store, 10, 1).await;
    let e = store.sequence_pending().await.unwrap_err();
    assert!(matches!(StorePostgresError::refusal_of(&e), Some(StorePostgresError::CheckpointMismatch { .. })), "{e:?}");
    assert_eq!(store.unsequenced().await.expect("left"), 1, "nothing was sealed");
    // A replica without the key cannot keep the checkpoint, so it does not sequence either.
    store.release_sequencer().await.expect("release");
    let keyless = PostgresStore::connect(&app, None).await.expect("connect");
    let e = keyless.sequence_pending().await.unwrap_err();
    assert!(matches!(StorePostgresError::refusal_of(&e), Some(StorePostgresError::KeyRequired)), "{e:?}");
    drop((store, keyless));
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_kept_without_a_key_is_adopted_only_when_it_verifies() {
    use remediation_audit::{AuditKey, CheckpointVerdict};
    let Some(db) = TestDb::create("a_chain_kept_without_a_key_is_adopted").await else { return };
    let (_schema, app) = db.migrated().await;
    let keyless = PostgresStore::connect(&app, None).await.expect("connect");
    write(&keyless, 1, 3).await;
    keyless.sequence_pending().await.expect("sequence");
    assert!(keyless.adopt_audit_chain().await.is_err(), "no key, no adoption");
    keyless.release_sequencer().await.expect("release");
    drop(keyless);
    let keyed = PostgresStore::connect(&app, Some(AuditKey::generate())).await.expect("connect");
    assert_eq!(keyed.verify_audit().await.expect("verify").checkpoint, CheckpointVerdict::Missing);
    let adopted = keyed.adopt_audit_chain().await.expect("adopt");
    assert_eq!((adopted.records, adopted.checkpoint.clone()), (3, CheckpointVerdict::Matches));
    write(&keyed, 10, 2).await;
    assert_eq!(keyed.sequence_pending().await.expect("sequence"), 2);
    let report = keyed.verify_audit().await.expect("verify");
    assert!(report.is_intact() && report.records == 5, "{report}");
    drop(keyed);
    db.drop().await;
}

#[tokio::test]
async fn a_short_lived_sequencer_gives_the_lease_up_after_its_pass() {
    let Some(db) = TestDb::create("a_short_lived_sequencer_gives_the_lease_up_after_its_pass").await else {
        return;
    };
    let (_, app) = db.migrated().await;
    let request = LeaseRequest { holder: "server".to_owned(), ttl: Duration::from_secs(60) };
    // A server's store keeps the lease between passes: nobody else takes it meanwhile.
    let server = PostgresStore::connect(&app, None).await.expect("connect");
    write(&server, 1, 2).await;
    assert_eq!(server.sequence_pending().await.expect("pass"), 2);
    let other = PostgresStore::connect(&app, None).await.expect("connect");
    assert!(other.acquire_lease(SEQUENCER_LEASE, &request).await.expect("acquire").is_none(), "kept");
    server.release_sequencer().await.expect("release");
    // A command's store seals what it wrote and leaves the lease free for the next process.
    let command =
        PostgresStore::connect(&app.clone().with_sequencer_release_after_pass(true), None).await.expect("connect");
    write(&command, 3, 2).await;
    assert_eq!(command.sequence_pending().await.expect("pass"), 2);
    assert_eq!(command.unsequenced().await.expect("unsequenced"), 0);
    assert!(other.acquire_lease(SEQUENCER_LEASE, &request).await.expect("acquire").is_some(), "given up");
    db.drop().await;
}

/// Signs a head of the first `size` stored leaves with `key`, extending `previous`, and stores it.
async fn sign_head(
    store: &PostgresStore,
    key: &remediation_audit::LogSigningKey,
    previous: Option<&remediation_audit::SignedTreeHead>,
    size: u64,
) -> remediation_audit::SignedTreeHead {
    use remediation_audit::merkle::{ConsistencyProof, MerkleHash, root};
    let leaves: Vec<MerkleHash> =
        store.leaf_hashes(0, size).await.expect("leaves").into_iter().map(MerkleHash).collect();
    let proof = match previous {
        Some(p) => ConsistencyProof::generate(&leaves, p.head.tree_size, size).expect("consistency").path,
        None => Vec::new(),
    };
    let head = key.sign_next(previous, size, root(&leaves), &proof, fixed_time()).expect("sign");
    store.store_tree_head(&head.clone().into(), previous.map(|p| p.head.tree_size)).await.expect("store the head");
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_goes_through_the_owners_function_only_and_checks_the_archive_against_the_log() {
    use remediation_audit::{AuditKey, CheckpointVerdict, LogSigningKey};
    use remediation_core::{AuditArchive, AuditFilter};
    let Some(db) = TestDb::create("archiving_goes_through_the_owners_function_only").await else { return };
    let (schema, app) = db.migrated().await;
    let store =
        PostgresStore::connect(&app, Some(AuditKey::from_hex(&"22".repeat(32)).expect("key"))).await.expect("connect");
    write(&store, 1, 5).await;
    assert_eq!(store.sequence_pending().await.expect("sequence"), 5);
    let signer = LogSigningKey::from_seed(&[5; 32]);
    let old = sign_head(&store, &signer, None, 3).await;
    let records = store.audit_records().await.expect("records");
    let leaves = store.leaf_hashes(0, 5).await.expect("leaves");

    // The runtime role can neither delete records nor register an archive itself.
    let runtime = raw(&db.conn(&db.app, &schema)).await;
    for sql in [
        "DELETE FROM audit WHERE seq = 1",
        "INSERT INTO audit_archives (tenant, through_seq, last_hash, tree_size, root_hash, file_sha256, archived_at)
         VALUES ('default', 4, 'x', 5, 'x', 'x', 0)",
    ] {
        let e = runtime.batch_execute(sql).await.expect_err(sql);
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {e:?}");
    }
    // Its one door checks the archive against the log, and a refusal removes nothing.
    let call = "SELECT audit_archive('default', $1, $2, 3, 'root', 'file', 0)";
    let refusals: [(i64, &str, &str); 3] = [
        (2, "0000", "is not stored with the archive's last hash"),
        (4, records[3].hash.as_str(), "no stored signed tree head covers record 4"),
        (5, records[4].hash.as_str(), "the newest audit record is never archived"),
    ];
    for (through, hash, why) in refusals {
        let e = runtime.query_one(call, &[&through, &hash]).await.expect_err(why);
        let db_error = e.as_db_error().expect("a server error");
        assert_eq!(db_error.code().code(), "RMA01", "{e:?}");
        assert!(db_error.message().contains(why), "{why}: {e:?}");
    }
    let owner = raw(&db.conn(&db.owner, &schema)).await;
    let count = |table: &'static str| {
        let owner = &owner;
        async move { owner.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.expect("count").get::<_, i64>(0) }
    };
    assert_eq!((count("audit").await, count("audit_archives").await), (5, 0), "the refusals removed nothing");
    // Nobody else may call it.
    let public: bool = owner
        .query_one(
            "SELECT has_function_privilege('public', 'audit_archive(TEXT, BIGINT, TEXT, BIGINT, TEXT, TEXT, BIGINT)', 'EXECUTE')",
            &[],
        )
        .await
        .expect("privilege")
        .get(0);
    assert!(!public, "PUBLIC may not execute the archive function");

    // Through the store: refusals are conflicts, then records 1 and 2 go.
    let archive = |through: usize| AuditArchive {
        through_seq: through as u64,
        last_hash: records[through - 1].hash.clone(),
        tree_size: 3,
        root_hash: old.head.root_hash.to_hex(),
        file_sha256: "0".repeat(64),
        archived_at: fixed_time(),
    };
    let wrong = store.archive_audit(&AuditArchive { last_hash: records[0].hash.clone(), ..archive(2) }).await;
    assert!(
        matches!(&wrong, Err(StoreError::AuditLogConflict { message }) if message.contains("last hash")),
        "{wrong:?}"
    );
    let uncovered = store.archive_audit(&archive(4)).await;
    assert!(matches!(uncovered, Err(StoreError::AuditLogConflict { .. })), "{uncovered:?}");
    assert_eq!(store.archive_audit(&archive(2)).await.expect("archive"), 2);
    assert_eq!((count("audit").await, count("audit_archives").await), (3, 1));
    let page = store.audit_page(&AuditFilter::default(), None, 2).await.expect("page");
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4], "reads start after the archive");
    assert_eq!(store.leaf_hashes(0, 5).await.expect("leaves"), leaves, "every leaf stays");
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact() && report.records == 3, "{report}");
    assert_eq!(report.checkpoint, CheckpointVerdict::Matches);
    // Archived or not, the owner removes no other record and no archive.
    for sql in
        ["DELETE FROM audit WHERE seq = 3", "DELETE FROM audit_archives", "UPDATE audit_archives SET through_seq = 9"]
    {
        let e = owner.batch_execute(sql).await.expect_err(sql);
        let text = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
        assert!(text.contains("append-only"), "{sql}: {e:?}");
    }

    // The log goes on: what `remediate audit archive` does next (its note, the next head
    // extending the old one) still verifies.
    write(&store, 10, 1).await;
    assert_eq!(store.sequence_pending().await.expect("sequence"), 1);
    let new = sign_head(&store, &signer, Some(&old), 6).await;
    assert_eq!(store.latest_tree_head().await.expect("latest"), Some(new.into()));
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact() && report.records == 4, "{report}");
    drop(store);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sequencing_backlog_and_each_sealed_entrys_wait_are_read_through_the_audit_log() {
    use remediation_core::SequencingBacklog;
    let Some(db) = TestDb::create("the_sequencing_backlog_and_each_sealed_entrys_wait").await else { return };
    let (_schema, store, _clock) = db.store().await;
    let log: &dyn AuditLog = &store;
    assert_eq!(log.sequencing_backlog().await.expect("backlog"), SequencingBacklog { entries: 0, oldest_age: None });
    write(&store, 1, 3).await;
    let backlog = log.sequencing_backlog().await.expect("backlog");
    assert_eq!(backlog.entries, 3);
    assert!(backlog.oldest_age.is_some(), "{backlog:?}");
    assert_eq!(store.sequence_pending().await.expect("sequence"), 3);
    assert_eq!(log.take_sequencing_lags().len(), 3, "one wait per sealed entry");
    assert!(log.take_sequencing_lags().is_empty(), "each wait is taken once");
    assert_eq!(log.sequencing_backlog().await.expect("backlog"), SequencingBacklog::default());
    drop(store);
    db.drop().await;
}
