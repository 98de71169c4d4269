//! The embedded schema migrations, versioned by `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreSqliteError;
use crate::error::hint;

/// Schema migrations: entry `i` takes the database from version `i` to version `i + 1`.
/// Append only; never edit a migration that has shipped.
pub(crate) const MIGRATIONS: &[&str] = &[
    // Version 1.
    //
    // Timestamps used for ordering and windows are INTEGER unix nanoseconds, so comparisons
    // are exact; the JSON columns keep the RFC 3339 forms. The JSON is authoritative; the
    // other columns duplicate what filters and indexes need.
    r#"
    CREATE TABLE actions (
        id           TEXT PRIMARY KEY NOT NULL,
        tenant       TEXT NOT NULL DEFAULT 'default',
        state        TEXT NOT NULL,
        connector    TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        detail_json  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX actions_by_created ON actions (tenant, created_at, id);
    CREATE INDEX actions_by_state ON actions (tenant, state, created_at);
    CREATE INDEX actions_by_connector ON actions (tenant, connector, created_at);

    CREATE TABLE transitions (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        action_id   TEXT NOT NULL REFERENCES actions (id),
        record_json TEXT NOT NULL
    ) STRICT;
    CREATE INDEX transitions_by_action ON transitions (action_id, seq);

    CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY,
        action_id   TEXT NOT NULL,
        at          INTEGER NOT NULL,
        record_json TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_at ON audit (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'audit records are append-only');
    END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'audit records are append-only');
    END;
    CREATE TRIGGER audit_extends_chain BEFORE INSERT ON audit
    WHEN NEW.seq IS NOT COALESCE((SELECT MAX(seq) FROM audit), 0) + 1
      OR NEW.prev_hash IS NOT COALESCE(
             (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1),
             '0000000000000000000000000000000000000000000000000000000000000000')
    BEGIN
        SELECT RAISE(ABORT, 'audit records must extend the chain: seq must follow the last record and prev_hash must be its hash');
    END;

    CREATE TABLE limit_slots (
        key       TEXT NOT NULL,
        at        INTEGER NOT NULL,
        action_id TEXT NOT NULL REFERENCES actions (id)
    ) STRICT;
    CREATE INDEX limit_slots_by_key_at ON limit_slots (key, at);
    "#,
    // Version 2.
    //
    // The audit chain head kept outside the chained table: the last record's `seq` and
    // `hash`, sealed with an HMAC key (see `remediation_audit::Checkpoint`). One row at most;
    // written in the same transaction as every audit append, and only when a key is configured.
    r#"
    CREATE TABLE audit_checkpoint (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        count INTEGER NOT NULL,
        head  TEXT NOT NULL,
        mac   TEXT NOT NULL
    ) STRICT;
    "#,
    // Version 3.
    //
    // Installation-wide safety state (kill switch, circuit breaker, emergency-access
    // verification, policy settings) as one JSON document. Every change to it is appended to
    // the audit chain in the same transaction. One row at most.
    r#"
    CREATE TABLE safety_state (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        state_json TEXT NOT NULL
    ) STRICT;
    "#,
    // Version 4.
    //
    // API bearer tokens of the server: only the SHA-256 of each token is kept. A revoked
    // token keeps its row (with `revoked_at`) until a token of the same name replaces it.
    r#"
    CREATE TABLE api_tokens (
        tenant     TEXT NOT NULL DEFAULT 'default',
        name       TEXT NOT NULL,
        role       TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        PRIMARY KEY (tenant, name)
    ) STRICT;
    "#,
    // Version 5.
    //
    // Principals (people and services) hold roles; a token is one principal's credential and
    // expires. Principals are named once for the installation and hold a role per tenant, so
    // tenancy adds rows, not columns. Every existing token becomes the credential of a
    // principal of the same name holding the token's role, and expires 90 days after it was
    // created, as new tokens do by default.
    //
    // Changes that need a second admin wait in `pending_changes` until another admin
    // confirms them, someone cancels them or they expire.
    r#"
    CREATE TABLE principals (
        name       TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('person', 'service')),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE TABLE principal_roles (
        tenant    TEXT NOT NULL DEFAULT 'default',
        principal TEXT NOT NULL REFERENCES principals (name),
        role      TEXT NOT NULL,
        PRIMARY KEY (tenant, principal)
    ) STRICT;
    INSERT INTO principals (name, kind, created_at)
        SELECT name, 'person', MIN(created_at) FROM api_tokens GROUP BY name;
    INSERT INTO principal_roles (tenant, principal, role)
        SELECT tenant, name, role FROM api_tokens;

    CREATE TABLE credentials (
        tenant     TEXT NOT NULL DEFAULT 'default',
        name       TEXT NOT NULL,
        principal  TEXT NOT NULL REFERENCES principals (name),
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        PRIMARY KEY (tenant, name)
    ) STRICT;
    INSERT INTO credentials (tenant, name, principal, token_hash, created_at, expires_at, revoked_at)
        SELECT tenant, name, name, token_hash, created_at, created_at + 90 * 86400 * 1000000000, revoked_at
        FROM api_tokens;
    DROP TABLE api_tokens;
    CREATE INDEX credentials_by_principal ON credentials (principal);

    CREATE TABLE pending_changes (
        id          TEXT PRIMARY KEY NOT NULL,
        tenant      TEXT NOT NULL DEFAULT 'default',
        status      TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'cancelled', 'expired', 'failed')),
        proposed_at INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        change_json TEXT NOT NULL
    ) STRICT;
    CREATE INDEX pending_changes_by_status ON pending_changes (tenant, status, proposed_at);
    "#,
    // Version 6.
    //
    // Indexed queries and an audit log shaped for several writers.
    //
    // - `actions.due_at`: when the system must look at the action again (approval deadline,
    //   rollback request window), indexed, so expiry never scans. Actions waiting today get
    //   their creation time: due at once, and the engine judges them by their age as before.
    // - The state index gains `id`, the second half of the keyset (created_at, id).
    // - `audit_pending`: entries written with their state change without reading the chain
    //   head; the sequencer moves them into `audit` (assigning seq, prev_hash, hash) and
    //   deletes them.
    // - `audit_head`: the chain head (seq, hash) per tenant, so sealing never re-reads the
    //   previous record's JSON.
    // - `audit.tenant`: the log each record belongs to.
    r#"
    ALTER TABLE actions ADD COLUMN due_at INTEGER;
    UPDATE actions SET due_at = created_at WHERE state IN ('pending_approval', 'rollback_requested');
    CREATE INDEX actions_by_due ON actions (tenant, due_at) WHERE due_at IS NOT NULL;
    DROP INDEX actions_by_state;
    CREATE INDEX actions_by_state ON actions (tenant, state, created_at, id);

    ALTER TABLE audit ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';

    CREATE TABLE audit_pending (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant    TEXT NOT NULL,
        body_json TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_pending_by_tenant ON audit_pending (tenant, id);

    CREATE TABLE audit_head (
        tenant TEXT PRIMARY KEY NOT NULL,
        seq    INTEGER NOT NULL,
        hash   TEXT NOT NULL
    ) STRICT;
    INSERT INTO audit_head (tenant, seq, hash) SELECT 'default', seq, hash FROM audit ORDER BY seq DESC LIMIT 1;
    "#,
    // Version 7.
    //
    // Leases. On the action row: who holds the action in `executing` or `rolling_back`, until
    // when (unix nanoseconds by the store's clock), and the epoch that grows with every grant
    // and fences out a holder that was taken over. An action in those states without a lease
    // (written before leases existed) counts as expired, so recovery takes it over.
    // `leases`: named leases of single-leader jobs, on the same design.
    r#"
    ALTER TABLE actions ADD COLUMN lease_holder TEXT;
    ALTER TABLE actions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE actions ADD COLUMN lease_expires_at INTEGER;

    CREATE TABLE leases (
        tenant     TEXT NOT NULL DEFAULT 'default',
        name       TEXT NOT NULL,
        holder     TEXT,
        epoch      INTEGER NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (tenant, name)
    ) STRICT;
    "#,
    // Version 8.
    //
    // A transition is stored once, in its audit record (the tamper-evident copy): the
    // transitions of an action are read from `audit` on (`action_id`, `seq`). The rows of
    // `transitions` whose audit record exists (same action, event, state reached and time) are
    // deleted; any other row stays and is still read, so nothing stored before is lost.
    // `transitions` receives no new rows.
    r#"
    CREATE INDEX audit_by_action ON audit (action_id, seq);
    DELETE FROM transitions WHERE EXISTS (
        SELECT 1 FROM audit
        WHERE audit.action_id = transitions.action_id
          AND json_extract(audit.record_json, '$.event') IS json_extract(transitions.record_json, '$.event')
          AND json_extract(audit.record_json, '$.to') IS json_extract(transitions.record_json, '$.to')
          AND json_extract(audit.record_json, '$.at') IS json_extract(transitions.record_json, '$.at'));
    "#,
    // Version 9.
    //
    // Requeued executions: `actions.not_before` (unix nanoseconds) is when an `approved`
    // action put back by a requeue may be claimed again; NULL for every other action. The
    // worker's claim query walks the state index and skips rows whose time has not come.
    // A requeue deletes the action's limit slots, found by `limit_slots_by_action`.
    r#"
    ALTER TABLE actions ADD COLUMN not_before INTEGER;
    CREATE INDEX limit_slots_by_action ON limit_slots (action_id);
    "#,
    // Version 10.
    //
    // Limit admission at a cost that does not grow with the slots recorded. A window's usage
    // is `total - aged`: `limit_totals` counts every slot row of a key, and `limit_cursors`
    // keeps, per key and window length, how many of its rows lie at or before a cursor time
    // (the start of the window last checked). A check moves the cursor to its window's start,
    // counting only the rows between the old and the new cursor, which each row crosses once
    // per window length. Triggers keep both tables exact on every insert and delete of a slot
    // row, whoever makes it; the totals start from the rows already stored.
    r#"
    CREATE TABLE limit_totals (
        key   TEXT PRIMARY KEY NOT NULL,
        total INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE limit_cursors (
        key       TEXT NOT NULL,
        window_ns INTEGER NOT NULL,
        cursor    INTEGER NOT NULL,
        aged      INTEGER NOT NULL,
        PRIMARY KEY (key, window_ns)
    ) STRICT;
    INSERT INTO limit_totals (key, total) SELECT key, COUNT(*) FROM limit_slots GROUP BY key;
    CREATE TRIGGER limit_slots_counted AFTER INSERT ON limit_slots
    BEGIN
        INSERT INTO limit_totals (key, total) VALUES (NEW.key, 1)
            ON CONFLICT (key) DO UPDATE SET total = total + 1;
        UPDATE limit_cursors SET aged = aged + 1 WHERE key = NEW.key AND cursor >= NEW.at;
    END;
    CREATE TRIGGER limit_slots_uncounted AFTER DELETE ON limit_slots
    BEGIN
        UPDATE limit_totals SET total = total - 1 WHERE key = OLD.key;
        UPDATE limit_cursors SET aged = aged - 1 WHERE key = OLD.key AND cursor >= OLD.at;
    END;
    "#,
    // Version 11.
    //
    // The verifiable log (RFC 9162 Merkle tree over the sequenced records).
    //
    // - `audit_leaves`: the leaf hash of every sequenced record (`SHA-256(0x00 || record
    //   JSON)`), written by the sequencer in the same transaction as the record, leaf i for
    //   `seq` i + 1. Kept when a record is archived, so later proofs still verify. Filled for
    //   the records already stored by `backfill_leaves` in this migration's transaction.
    // - `audit_tree_heads`: signed tree heads, in the order stored; never smaller than the
    //   last one.
    // - `audit_keys`: the public keys that verify them, current and retired.
    //
    // All three are insert-only (triggers), as `audit` is.
    r#"
    CREATE TABLE audit_leaves (
        tenant     TEXT NOT NULL,
        leaf_index INTEGER NOT NULL,
        hash       BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (tenant, leaf_index)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
    BEGIN
        SELECT RAISE(ABORT, 'audit leaf hashes are append-only');
    END;
    CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
    BEGIN
        SELECT RAISE(ABORT, 'audit leaf hashes are append-only');
    END;
    CREATE TRIGGER audit_leaves_extend BEFORE INSERT ON audit_leaves
    WHEN NEW.leaf_index IS NOT COALESCE((SELECT MAX(leaf_index) FROM audit_leaves WHERE tenant = NEW.tenant), -1) + 1
    BEGIN
        SELECT RAISE(ABORT, 'audit leaf hashes must extend the log: leaf_index must follow the last one');
    END;

    CREATE TABLE audit_tree_heads (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant    TEXT NOT NULL,
        tree_size INTEGER NOT NULL,
        root_hash TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_tree_heads_by_size ON audit_tree_heads (tenant, tree_size, id);
    CREATE TRIGGER audit_tree_heads_no_update BEFORE UPDATE ON audit_tree_heads
    BEGIN
        SELECT RAISE(ABORT, 'signed tree heads are append-only');
    END;
    CREATE TRIGGER audit_tree_heads_no_delete BEFORE DELETE ON audit_tree_heads
    BEGIN
        SELECT RAISE(ABORT, 'signed tree heads are append-only');
    END;
    CREATE TRIGGER audit_tree_heads_grow BEFORE INSERT ON audit_tree_heads
    WHEN NEW.tree_size < COALESCE((SELECT MAX(tree_size) FROM audit_tree_heads WHERE tenant = NEW.tenant), 0)
    BEGIN
        SELECT RAISE(ABORT, 'a signed tree head never shrinks the log');
    END;

    CREATE TABLE audit_keys (
        tenant       TEXT NOT NULL,
        key_id       TEXT NOT NULL,
        algorithm    TEXT NOT NULL,
        public_key   TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, key_id)
    ) STRICT;
    CREATE TRIGGER audit_keys_no_update BEFORE UPDATE ON audit_keys
    BEGIN
        SELECT RAISE(ABORT, 'published keys are never changed');
    END;
    CREATE TRIGGER audit_keys_no_delete BEFORE DELETE ON audit_keys
    BEGIN
        SELECT RAISE(ABORT, 'published keys are never removed');
    END;
    "#,
    // Version 12.
    //
    // Retention: `audit_archives` registers each archive of the oldest records (written,
    // fsynced and verified before), insert-only. The audit table's delete trigger now lets
    // exactly the records an archive registers be removed, and nothing else; leaf hashes stay.
    r#"
    CREATE TABLE audit_archives (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant      TEXT NOT NULL,
        through_seq INTEGER NOT NULL,
        last_hash   TEXT NOT NULL,
        tree_size   INTEGER NOT NULL,
        root_hash   TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        archived_at INTEGER NOT NULL
    ) STRICT;
    CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
    BEGIN
        SELECT RAISE(ABORT, 'audit archives are never changed');
    END;
    CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
    BEGIN
        SELECT RAISE(ABORT, 'audit archives are never removed');
    END;
    DROP TRIGGER audit_no_delete;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_archives WHERE tenant = OLD.tenant), 0)
    BEGIN
        SELECT RAISE(ABORT, 'audit records are append-only: only records in a registered archive are removed');
    END;
    "#,
    // Version 13.
    //
    // The approval page's sessions, so every process sharing the file knows them: keyed by the
    // SHA-256 of the session id (never the id), with the hash of the token signed in with,
    // the CSRF token, the expiry (unix ns, indexed for pruning) and the one-time flash (JSON).
    r#"
    CREATE TABLE ui_sessions (
        tenant     TEXT NOT NULL DEFAULT 'default',
        id_hash    TEXT NOT NULL CHECK (length(id_hash) = 64),
        token_hash TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        flash_json TEXT,
        PRIMARY KEY (tenant, id_hash)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX ui_sessions_by_expiry ON ui_sessions (tenant, expires_at);
    "#,
    // Version 14.
    //
    // The audit log as the event outbox: each sink's high-water mark (the last `seq` it
    // acknowledged or parked) and the records a sink refused for good, with the reason and
    // whether an operator asked for them again. Times are unix ns. A parked record belongs to
    // a registered sink. Rowid tables, so `store copy` pages them by rowid as it pages the others.
    r#"
    CREATE TABLE delivery_marks (
        tenant            TEXT NOT NULL DEFAULT 'default',
        sink              TEXT NOT NULL,
        delivered_through INTEGER NOT NULL CHECK (delivered_through >= 0),
        updated_at        INTEGER NOT NULL,
        PRIMARY KEY (tenant, sink)
    ) STRICT;
    CREATE TABLE delivery_parked (
        tenant    TEXT NOT NULL DEFAULT 'default',
        sink      TEXT NOT NULL,
        seq       INTEGER NOT NULL CHECK (seq > 0),
        reason    TEXT NOT NULL,
        parked_at INTEGER NOT NULL,
        replay    INTEGER NOT NULL DEFAULT 0 CHECK (replay IN (0, 1)),
        PRIMARY KEY (tenant, sink, seq),
        FOREIGN KEY (tenant, sink) REFERENCES delivery_marks (tenant, sink)
    ) STRICT;
    "#,
    // Version 15.
    //
    // Short handles (`#1234`): each action's number in the installation, in creation order,
    // given by the writer (the next after the largest) in the transaction that stores the
    // action and kept in its JSON too. Actions stored before get theirs in creation order.
    // Campaigns: a named import's record (JSON) and its entries, kept so an interrupted
    // import resumes where it stopped.
    r#"
    ALTER TABLE actions ADD COLUMN handle INTEGER;
    UPDATE actions SET handle = (
        SELECT COUNT(*) FROM actions AS a
        WHERE a.created_at < actions.created_at OR (a.created_at = actions.created_at AND a.id <= actions.id)
    );
    UPDATE actions SET detail_json = json_set(detail_json, '$.action.handle', handle);
    CREATE UNIQUE INDEX actions_by_handle ON actions (handle);
    CREATE TABLE campaigns (
        tenant      TEXT NOT NULL DEFAULT 'default',
        name        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        record_json TEXT NOT NULL,
        PRIMARY KEY (tenant, name)
    ) STRICT;
    CREATE TABLE campaign_entries (
        tenant     TEXT NOT NULL DEFAULT 'default',
        campaign   TEXT NOT NULL,
        idx        INTEGER NOT NULL CHECK (idx >= 0),
        entry_json TEXT NOT NULL,
        PRIMARY KEY (tenant, campaign, idx),
        FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, name)
    ) STRICT;
    "#,
    // Version 16.
    //
    // Tenants. `tenants` lists those created (the default tenant is implicit). Each tenant has
    // its own audit chain, so the audit table is keyed by (`tenant`, `seq`), and its append-only
    // triggers judge each tenant's chain alone (after an archive removed a tenant's oldest
    // records, its chain goes on from the archive's last record). The safety state and the
    // audit checkpoint get one row per tenant. Limit windows are told apart by key (see
    // `scoped_limit_key`), so their tables keep their shape.
    r#"
    CREATE TABLE tenants (
        name        TEXT PRIMARY KEY NOT NULL,
        created_at  INTEGER NOT NULL,
        record_json TEXT NOT NULL
    ) STRICT;

    CREATE TABLE audit_by_tenant (
        tenant      TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        action_id   TEXT NOT NULL,
        at          INTEGER NOT NULL,
        record_json TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL,
        PRIMARY KEY (tenant, seq)
    ) STRICT;
    INSERT INTO audit_by_tenant (tenant, seq, action_id, at, record_json, prev_hash, hash)
        SELECT tenant, seq, action_id, at, record_json, prev_hash, hash FROM audit ORDER BY seq;
    DROP TABLE audit;
    ALTER TABLE audit_by_tenant RENAME TO audit;
    CREATE INDEX audit_by_at ON audit (tenant, at);
    CREATE INDEX audit_by_action ON audit (action_id, seq);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN
        SELECT RAISE(ABORT, 'audit records are append-only');
    END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_archives WHERE tenant = OLD.tenant), 0)
    BEGIN
        SELECT RAISE(ABORT, 'audit records are append-only: only records in a registered archive are removed');
    END;
    CREATE TRIGGER audit_extends_chain BEFORE INSERT ON audit
    WHEN NEW.seq IS NOT COALESCE(
             (SELECT MAX(seq) FROM audit WHERE tenant = NEW.tenant),
             (SELECT MAX(through_seq) FROM audit_archives WHERE tenant = NEW.tenant),
             0) + 1
      OR NEW.prev_hash IS NOT COALESCE(
             (SELECT hash FROM audit WHERE tenant = NEW.tenant ORDER BY seq DESC LIMIT 1),
             (SELECT last_hash FROM audit_archives WHERE tenant = NEW.tenant ORDER BY through_seq DESC LIMIT 1),
             '0000000000000000000000000000000000000000000000000000000000000000')
    BEGIN
        SELECT RAISE(ABORT, 'audit records must extend the chain: seq must follow the last record and prev_hash must be its hash');
    END;

    CREATE TABLE safety_states (
        tenant     TEXT PRIMARY KEY NOT NULL,
        state_json TEXT NOT NULL
    ) STRICT;
    INSERT INTO safety_states (tenant, state_json) SELECT 'default', state_json FROM safety_state;
    DROP TABLE safety_state;

    CREATE TABLE audit_checkpoints (
        tenant TEXT PRIMARY KEY NOT NULL,
        count  INTEGER NOT NULL,
        head   TEXT NOT NULL,
        mac    TEXT NOT NULL
    ) STRICT;
    INSERT INTO audit_checkpoints (tenant, count, head, mac) SELECT 'default', count, head, mac FROM audit_checkpoint;
    DROP TABLE audit_checkpoint;

    -- An operator's token reaches other tenants too (a JSON array of their names).
    ALTER TABLE credentials ADD COLUMN also_tenants TEXT NOT NULL DEFAULT '[]';
    "#,
    // Version 17.
    //
    // Managed connections: connectors created at run time. Each row is the connection's
    // record (JSON; its secrets only as the vault's ciphertext) and its revision, the
    // compare-and-set token; `connection_revisions` is each tenant's counter of changes, so a
    // runtime knows with one read when to rebuild its connectors.
    r#"
    CREATE TABLE connections (
        tenant      TEXT NOT NULL DEFAULT 'default',
        id          TEXT NOT NULL,
        revision    INTEGER NOT NULL CHECK (revision > 0),
        record_json TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    ) STRICT;
    CREATE TABLE connection_revisions (
        tenant   TEXT NOT NULL PRIMARY KEY,
        revision INTEGER NOT NULL
    ) STRICT;
    "#,
    // Version 18.
    //
    // Documents: small JSON documents of a tenant, kept by collection (playbooks, playbook
    // runs, identity links). Each row is the document's body (JSON), its revision, the
    // compare-and-set token, and who wrote that revision when (RFC 3339).
    r#"
    CREATE TABLE documents (
        tenant     TEXT NOT NULL,
        collection TEXT NOT NULL,
        id         TEXT NOT NULL,
        revision   INTEGER NOT NULL CHECK (revision > 0),
        body       TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    ) STRICT;
    "#,
];

/// The version whose migration also computes the leaf hashes of the records already stored.
const LEAVES_VERSION: i64 = 11;

/// The newest schema version this build knows.
pub(crate) fn supported_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// The `user_version` of the file at `path` opened read-only; `None` when there is no file or
/// no schema yet. A newer schema than this build knows is returned as it is, not refused.
pub(crate) fn read_version(path: &Path) -> Result<Option<u32>, StoreSqliteError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| open_error(path, "opening the file read-only", e))?;
    conn.busy_timeout(crate::store::BUSY_TIMEOUT).map_err(|e| open_error(path, "setting busy_timeout", e))?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| open_error(path, "reading the schema version", e))?;
    // Reading the version does not read the file's header pages; this does.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))
        .map_err(|e| open_error(path, "reading the schema", e))?;
    Ok(u32::try_from(found).ok().filter(|v| *v > 0))
}

/// Brings the schema up to [`supported_version`], one migration per IMMEDIATE transaction, so
/// several processes opening the same file at once apply each migration exactly once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreSqliteError> {
    let read_error = |source: rusqlite::Error| open_error(path, "reading the schema version", source);
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(read_error)?;
    check_not_newer(path, current)?;
    for (version, sql) in (1..).zip(MIGRATIONS.iter()) {
        if current >= version {
            continue;
        }
        let migrate_error = |source: rusqlite::Error| StoreSqliteError::Migrate {
            path: path.to_owned(),
            version,
            hint: hint(&source),
            source,
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(migrate_error)?;
        // Another process may have migrated since the first read.
        let now: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(migrate_error)?;
        check_not_newer(path, now)?;
        if now >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(migrate_error)?;
        if version == LEAVES_VERSION {
            crate::log::backfill_leaves(&tx).map_err(migrate_error)?;
        }
        tx.pragma_update(None, "user_version", version).map_err(migrate_error)?;
        tx.commit().map_err(migrate_error)?;
    }
    Ok(())
}

fn check_not_newer(path: &Path, found: i64) -> Result<(), StoreSqliteError> {
    let supported = supported_version();
    if found > supported {
        return Err(StoreSqliteError::SchemaTooNew { path: path.to_owned(), found, supported });
    }
    Ok(())
}

/// Maps a failure while opening: a file that is not a database gets its own error.
pub(crate) fn open_error(path: &Path, step: &'static str, source: rusqlite::Error) -> StoreSqliteError {
    use rusqlite::ErrorCode;
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreSqliteError::NotADatabase { path: path.to_owned(), source }
        }
        _ => StoreSqliteError::Open { path: path.to_owned(), step, hint: hint(&source), source },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_schema_version_is_the_number_of_migrations() {
        assert_eq!(i64::from(crate::SCHEMA_VERSION), super::supported_version());
    }
}
