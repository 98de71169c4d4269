//! The store's reads are index searches even as generic plans of prepared statements (what a
//! pooled connection runs after a few executions): no sequential scan, no sort of every row
//! after a cursor. The statements are the store's, written out here as `EXPLAIN` needs them.

use crate::support::TestDb;

/// (statement, parameter types, arguments, the index its plan must use).
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "SELECT detail_json FROM actions WHERE tenant = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4",
        "text, bigint, text, bigint",
        "'default', 5000, '', 501",
        "actions_by_created",
    ),
    (
        "SELECT detail_json FROM actions WHERE tenant = $1 AND (created_at, id) > ($2, $3) AND state = $4 ORDER BY created_at, id LIMIT $5",
        "text, bigint, text, text, bigint",
        "'default', 5000, '', 'approved', 501",
        "actions_by_state",
    ),
    (
        "SELECT detail_json FROM actions WHERE tenant = $1 AND (created_at, id) > ($2, $3) AND connector = $4 ORDER BY created_at, id LIMIT $5",
        "text, bigint, text, text, bigint",
        "'default', 5000, '', 'okta', 501",
        "actions_by_created",
    ),
    (
        "SELECT detail_json FROM actions WHERE tenant = $1 AND due_at IS NOT NULL AND due_at < $2 ORDER BY due_at LIMIT $3",
        "text, bigint, bigint",
        "'default', 100, 10",
        "actions_by_due",
    ),
    (
        "SELECT detail_json FROM actions WHERE tenant = $1 AND state = 'approved' AND (not_before IS NULL OR not_before <= $2) ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        "text, bigint, bigint",
        "'default', 100, 32",
        "actions_by_state",
    ),
    (
        "SELECT id FROM actions WHERE tenant = $1 AND state IN ('executing', 'rolling_back') AND (lease_expires_at IS NULL OR lease_expires_at <= $2) ORDER BY COALESCE(lease_expires_at, 0), created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        "text, bigint, bigint",
        "'default', 100, 32",
        "actions_leased",
    ),
    (
        "SELECT count(*) FROM limit_slots WHERE key = $1 AND at > $2",
        "text, bigint",
        "'connector:okta', 100",
        "limit_slots_by_key_at",
    ),
    (
        "SELECT seq, record_json FROM audit WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        "text, bigint, bigint",
        "'default', 100, 500",
        "audit_pkey",
    ),
    (
        "SELECT seq, record_json FROM audit WHERE tenant = $1 AND seq > $2 AND action_id = $3 ORDER BY seq LIMIT $4",
        "text, bigint, text, bigint",
        "'default', 0, 'a7', 500",
        "audit_by_action",
    ),
    (
        "SELECT id, body_json FROM audit_pending WHERE tenant = $1 ORDER BY id LIMIT $2",
        "text, bigint",
        "'default', 1000",
        // With one tenant the primary key serves as well as (tenant, id).
        "Index Scan using audit_pending_",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_index_searches_as_generic_plans() {
    let Some(db) = TestDb::create("reads_are_index_searches_as_generic_plans").await else { return };
    let (schema, _app) = db.migrated().await;
    let su = db.superuser(&schema).await;
    su.batch_execute(
        "SET session_replication_role = replica;
         INSERT INTO actions (id, tenant, state, connector, requested_by, identity, created_at, updated_at, due_at,
                              lease_expires_at, detail_json)
         SELECT 'a' || g, 'default',
                (ARRAY['approved', 'pending_approval', 'completed', 'executing'])[1 + g % 4],
                (ARRAY['okta', 'github', 'google'])[1 + g % 3], 'x', 'user' || g % 100, g, g,
                CASE WHEN g % 4 = 1 THEN g END, CASE WHEN g % 4 = 3 THEN g END, '{}'
         FROM generate_series(1, 40000) g;
         INSERT INTO limit_slots (key, at, action_id)
         SELECT 'connector:' || (ARRAY['okta', 'github', 'google'])[1 + g % 3], g, 'a' || g FROM generate_series(1, 40000) g;
         INSERT INTO audit (tenant, seq, action_id, at, record_json, prev_hash, hash)
         SELECT 'default', g, 'a' || g % 5000, g, '{}', 'p', 'h' FROM generate_series(1, 40000) g;
         INSERT INTO audit_pending (tenant, action_id, body_json)
         SELECT 'default', 'a' || g, '{}' FROM generate_series(1, 40000) g;
         ANALYZE;
         SET plan_cache_mode = force_generic_plan;",
    )
    .await
    .expect("seed");
    for (n, (sql, types, args, index)) in CASES.iter().enumerate() {
        su.batch_execute(&format!("PREPARE p{n} ({types}) AS {sql}")).await.expect(sql);
        let plan: Vec<String> = su
            .query(&format!("EXPLAIN EXECUTE p{n} ({args})"), &[])
            .await
            .expect(sql)
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{sql}\nshould use {index}:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{sql}\nscans the table:\n{plan}");
        // A sort is only acceptable over the few rows an index search found (takeover's order).
        if !sql.contains("COALESCE") {
            assert!(!plan.contains("Sort"), "{sql}\nsorts instead of walking the index:\n{plan}");
        }
    }
    db.drop().await;
}
