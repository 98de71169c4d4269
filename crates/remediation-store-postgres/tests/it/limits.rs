//! Limits hold exactly across processes: three processes start executions on one limit key at
//! once, and exactly the limit start, 20 rounds in a row, each on a fresh key.
//!
//! The test binary runs itself as the three children (`CHILD` set): each connects as the
//! runtime role, waits on an advisory lock the parent holds until all three wait, then begins
//! its actions all at once.

use std::process::{Command, Stdio};
use std::time::Instant;

use remediation_core::{ActionId, ActionStore, BeginOutcome, DetailUpdate, State, StateChange};
use remediation_store_postgres::{PostgresConfig, PostgresStore};
use remediation_testkit::{ActionBuilder, fixed_time, slot, transition};

use crate::support::{TestDb, raw};

const TEST: &str = "limits::three_processes_admit_exactly_the_limit";
const CHILD: &str = "REMEDIATION_PGSTORE_LIMIT_CHILD";
const ROUNDS: u64 = 20;
const PROCESSES: u64 = 3;
const PER_PROCESS: u64 = 8;
const LIMIT: u32 = 5;
/// The advisory lock (class) the children wait on; the round is the key.
const GATE: i32 = 0x7465_7374;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_processes_admit_exactly_the_limit() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec).await;
        return;
    }
    let Some(db) = TestDb::create(TEST).await else { return };
    let (schema, app) = db.migrated().await;
    let store = PostgresStore::connect(&app, None).await.expect("connect");
    let gate = db.superuser(&schema).await;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let key = format!("connector:hammer-{round}");
        let mut children = Vec::new();
        gate.execute("SELECT pg_advisory_lock($1, $2)", &[&GATE, &i32::try_from(round).expect("round")])
            .await
            .expect("close the gate");
        for p in 0..PROCESSES {
            let mut ids = Vec::new();
            for n in 0..PER_PROCESS {
                let seed = 1 + round * 1000 + p * 100 + n;
                let detail = ActionBuilder::new().seed(seed).state(State::Approved).at(fixed_time()).detail().build();
                let a = &detail.action;
                store
                    .create_action(&detail, &transition(a.id, None, a.state, "suggest", a.created_at))
                    .await
                    .expect("create");
                ids.push(a.id.to_string());
            }
            let spec = format!("{round}|{key}|{}|{}", db.conn(&db.app, &schema), ids.join(","));
            children.push(
                Command::new(std::env::current_exe().expect("exe"))
                    .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
                    .env(CHILD, spec)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("spawn a child"),
            );
        }
        // Open the gate once every child waits on it, so their starts overlap.
        let round_key = i32::try_from(round).expect("round");
        loop {
            let waiting: i64 = gate
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int::oid
                     AND objid = $2::int::oid AND NOT granted",
                    &[&GATE, &round_key],
                )
                .await
                .expect("waiting")
                .get(0);
            if waiting == i64::try_from(PROCESSES).expect("n") {
                break;
            }
            tokio::task::yield_now().await;
        }
        gate.execute("SELECT pg_advisory_unlock($1, $2)", &[&GATE, &round_key]).await.expect("open the gate");
        let mut started_here = 0;
        for child in children {
            let out = child.wait_with_output().expect("child");
            assert!(out.status.success(), "a child failed");
            let text = String::from_utf8_lossy(&out.stdout);
            // libtest prints the count on the line of the test's name.
            let n: u32 = text
                .split("started=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no count in {text}"));
            started_here += n;
        }
        let slots: i64 =
            gate.query_one("SELECT count(*) FROM limit_slots WHERE key = $1", &[&key]).await.expect("slots").get(0);
        assert_eq!((started_here, slots), (LIMIT, i64::from(LIMIT)), "round {round}: exactly the limit starts");
    }
    println!(
        "three processes, {ROUNDS} rounds of {} starts on a limit of {LIMIT}: {:.2} s",
        PROCESSES * PER_PROCESS,
        started.elapsed().as_secs_f64()
    );
    drop(store);
    db.drop().await;
}

/// One child: waits at the gate, then begins its actions all at once; prints how many started.
async fn child(spec: &str) {
    let mut parts = spec.splitn(4, '|');
    let round: i32 = parts.next().and_then(|r| r.parse().ok()).expect("round");
    let key = parts.next().expect("key").to_owned();
    let conn = parts.next().expect("conn");
    let ids: Vec<ActionId> = parts.next().expect("ids").split(',').map(|i| i.parse().expect("id")).collect();
    let config = PostgresConfig::from_url(conn).expect("config").with_sequencer_interval(None);
    let store = PostgresStore::connect(&config.with_pool_size(ids.len()), None).await.expect("connect");
    // Warm the pool, so the starts do not wait on connections.
    let warm: Vec<_> = ids
        .iter()
        .map(|id| {
            let store = store.clone();
            let id = *id;
            tokio::spawn(async move { store.get(id).await.expect("get") })
        })
        .collect();
    for w in warm {
        w.await.expect("warm");
    }
    let gate = raw(conn).await;
    gate.execute("SELECT pg_advisory_lock_shared($1, $2)", &[&GATE, &round]).await.expect("gate");
    gate.execute("SELECT pg_advisory_unlock_shared($1, $2)", &[&GATE, &round]).await.expect("gate");
    let at = fixed_time() + time::Duration::minutes(1);
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let change = StateChange::new(
                    transition(id, Some(State::Approved), State::Executing, "begin_execution", at),
                    DetailUpdate::default(),
                );
                store.begin_execution(&change, &[slot(&key, LIMIT, 3600)], true).await.expect("begin")
            })
        })
        .collect();
    let mut started = 0;
    for t in tasks {
        if matches!(t.await.expect("task"), BeginOutcome::Started(_)) {
            started += 1;
        }
    }
    println!("started={started}");
}
