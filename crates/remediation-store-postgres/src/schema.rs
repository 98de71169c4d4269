//! The embedded, versioned schema migrations (table `schema_migrations`), the grants of the
//! runtime role, and the version check every connection makes.
//!
//! Migrations are written expand-then-contract: a migration only adds (tables, nullable
//! columns, indexes) what the next release reads, so the previous release keeps running
//! against it while replicas are upgraded one by one; what the previous release still needs
//! is dropped only by a later migration, once no replica of that release runs.

use tokio_postgres::Client;

use crate::config::{MigrateOptions, PostgresConfig, check_role};
use crate::error::hint;
use crate::{StorePostgresError, connect_one};

/// Schema migrations: entry `i` takes the database from version `i` to version `i + 1`.
/// Append only; never edit a migration that has shipped.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "actions, audit log with a sequencer, principals, limits, leases",
        // Timestamps that are compared (ordering, windows, expiry) are BIGINT unix nanoseconds,
        // exact and the same as the embedded store's; the JSON columns are authoritative and keep
        // the RFC 3339 forms. The other columns duplicate what filters and indexes need.
        r#"
    CREATE TABLE actions (
        id                 TEXT PRIMARY KEY,
        tenant             TEXT NOT NULL DEFAULT 'default',
        state              TEXT NOT NULL,
        connector          TEXT NOT NULL,
        requested_by       TEXT NOT NULL,
        identity           TEXT NOT NULL,
        canonical_identity TEXT,
        control_id         TEXT,
        created_at         BIGINT NOT NULL,
        updated_at         BIGINT NOT NULL,
        due_at             BIGINT,
        not_before         BIGINT,
        lease_holder       TEXT,
        lease_epoch        BIGINT NOT NULL DEFAULT 0,
        lease_expires_at   BIGINT,
        detail_json        TEXT NOT NULL
    );
    CREATE INDEX actions_by_created ON actions (tenant, created_at, id);
    CREATE INDEX actions_by_state ON actions (tenant, state, created_at, id);
    CREATE INDEX actions_by_due ON actions (tenant, due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX actions_leased ON actions (tenant, lease_expires_at)
        WHERE state IN ('executing', 'rolling_back');

    -- The sequenced, hash-chained log: insert-only (triggers below, and the runtime role is
    -- granted SELECT and INSERT only).
    CREATE TABLE audit (
        tenant      TEXT NOT NULL,
        seq         BIGINT NOT NULL,
        action_id   TEXT NOT NULL,
        at          BIGINT NOT NULL,
        record_json TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL,
        PRIMARY KEY (tenant, seq)
    );
    CREATE INDEX audit_by_action ON audit (action_id, seq);

    CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit records are append-only: % on audit is refused', TG_OP;
    END;
    $$;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

    CREATE FUNCTION audit_extends_chain() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        last_seq  BIGINT;
        last_hash TEXT;
    BEGIN
        SELECT seq, hash INTO last_seq, last_hash FROM audit
            WHERE tenant = NEW.tenant ORDER BY seq DESC LIMIT 1;
        IF NEW.seq <> COALESCE(last_seq, 0) + 1
           OR NEW.prev_hash <> COALESCE(last_hash, repeat('0', 64)) THEN
            RAISE EXCEPTION 'audit records must extend the chain: seq must follow the last record and prev_hash must be its hash';
        END IF;
        RETURN NEW;
    END;
    $$;
    CREATE TRIGGER audit_extends_chain BEFORE INSERT ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_extends_chain();

    -- Entries written with their change, not yet sequenced; `written_at` (unix nanoseconds by
    -- the server's clock) measures the sequencing lag.
    CREATE TABLE audit_pending (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant     TEXT NOT NULL,
        action_id  TEXT NOT NULL,
        body_json  TEXT NOT NULL,
        written_at BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint
    );
    CREATE INDEX audit_pending_by_tenant ON audit_pending (tenant, id);
    CREATE INDEX audit_pending_by_action ON audit_pending (action_id, id);

    CREATE TABLE audit_head (
        tenant TEXT PRIMARY KEY,
        seq    BIGINT NOT NULL,
        hash   TEXT NOT NULL
    );

    CREATE TABLE audit_checkpoint (
        tenant TEXT PRIMARY KEY,
        count  BIGINT NOT NULL,
        head   TEXT NOT NULL,
        mac    TEXT NOT NULL
    );

    CREATE TABLE limit_slots (
        key       TEXT NOT NULL,
        at        BIGINT NOT NULL,
        action_id TEXT NOT NULL
    );
    CREATE INDEX limit_slots_by_key_at ON limit_slots (key, at);
    CREATE INDEX limit_slots_by_action ON limit_slots (action_id);

    CREATE TABLE safety_state (
        tenant     TEXT PRIMARY KEY,
        state_json TEXT NOT NULL
    );

    CREATE TABLE principals (
        name       TEXT PRIMARY KEY,
        kind       TEXT NOT NULL CHECK (kind IN ('person', 'service')),
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
    );
    CREATE TABLE principal_roles (
        tenant    TEXT NOT NULL DEFAULT 'default',
        principal TEXT NOT NULL REFERENCES principals (name),
        role      TEXT NOT NULL,
        PRIMARY KEY (tenant, principal)
    );
    CREATE TABLE credentials (
        tenant     TEXT NOT NULL DEFAULT 'default',
        name       TEXT NOT NULL,
        principal  TEXT NOT NULL REFERENCES principals (name),
        token_hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT,
        PRIMARY KEY (tenant, name)
    );
    CREATE INDEX credentials_by_principal ON credentials (principal);

    CREATE TABLE pending_changes (
        id          TEXT PRIMARY KEY,
        tenant      TEXT NOT NULL DEFAULT 'default',
        status      TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'cancelled', 'expired', 'failed')),
        proposed_at BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL,
        change_json TEXT NOT NULL
    );
    CREATE INDEX pending_changes_by_status ON pending_changes (tenant, status, proposed_at);

    CREATE TABLE leases (
        tenant     TEXT NOT NULL DEFAULT 'default',
        name       TEXT NOT NULL,
        holder     TEXT,
        epoch      BIGINT NOT NULL,
        expires_at BIGINT,
        PRIMARY KEY (tenant, name)
    );
    "#,
    ),
    (
        "the verifiable log: leaf hashes, signed tree heads, published keys",
        r#"
    -- Leaf i of the RFC 9162 tree over the sequenced records is SHA-256(0x00 || record JSON of
    -- seq i + 1), written by the sequencer with its record; insert-only, each leaf following
    -- the last. The leaves of records already stored are computed here.
    CREATE FUNCTION log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the verifiable log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME;
    END;
    $$;
    CREATE TABLE audit_leaves (
        tenant     TEXT NOT NULL,
        leaf_index BIGINT NOT NULL,
        hash       BYTEA NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (tenant, leaf_index)
    );
    CREATE FUNCTION audit_leaf_extends() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.leaf_index <> COALESCE((SELECT max(leaf_index) FROM audit_leaves WHERE tenant = NEW.tenant), -1) + 1 THEN
            RAISE EXCEPTION 'audit leaf hashes must extend the log: leaf_index must follow the last one';
        END IF;
        RETURN NEW;
    END;
    $$;
    CREATE TRIGGER audit_leaves_extend BEFORE INSERT ON audit_leaves
        FOR EACH ROW EXECUTE FUNCTION audit_leaf_extends();
    CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE OR DELETE ON audit_leaves
        FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
    CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
        FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();
    INSERT INTO audit_leaves (tenant, leaf_index, hash)
        SELECT tenant, seq - 1, sha256('\x00'::bytea || convert_to(record_json, 'UTF8'))
        FROM audit ORDER BY tenant, seq;

    CREATE TABLE audit_tree_heads (
        id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant    TEXT NOT NULL,
        tree_size BIGINT NOT NULL,
        root_hash TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE INDEX audit_tree_heads_by_size ON audit_tree_heads (tenant, tree_size, id);
    CREATE TRIGGER audit_tree_heads_no_update BEFORE UPDATE OR DELETE ON audit_tree_heads
        FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
    CREATE TRIGGER audit_tree_heads_no_truncate BEFORE TRUNCATE ON audit_tree_heads
        FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();

    CREATE TABLE audit_keys (
        id           BIGINT GENERATED ALWAYS AS IDENTITY,
        tenant       TEXT NOT NULL,
        key_id       TEXT NOT NULL,
        algorithm    TEXT NOT NULL,
        public_key   TEXT NOT NULL,
        published_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, key_id)
    );
    CREATE TRIGGER audit_keys_no_update BEFORE UPDATE OR DELETE ON audit_keys
        FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
    CREATE TRIGGER audit_keys_no_truncate BEFORE TRUNCATE ON audit_keys
        FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();
    "#,
    ),
    (
        "the approval page's sessions",
        r#"
    -- Expand only: a new table the previous release never reads. Keyed by the SHA-256 of the
    -- session id (never the id), so whoever reads the table cannot ride a session; the token
    -- signed in with is kept as its hash. Not audit rows: the runtime role changes them.
    CREATE TABLE ui_sessions (
        tenant     TEXT NOT NULL DEFAULT 'default',
        id_hash    TEXT NOT NULL CHECK (length(id_hash) = 64),
        token_hash TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        flash_json TEXT,
        PRIMARY KEY (tenant, id_hash)
    );
    CREATE INDEX ui_sessions_by_expiry ON ui_sessions (tenant, expires_at);
    "#,
    ),
    // Version 4.
    (
        "retention: audit archives, and the one door through which archived records go",
        r#"
    -- Each written and verified archive of the oldest records, insert-only.
    CREATE TABLE audit_archives (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant      TEXT NOT NULL,
        through_seq BIGINT NOT NULL,
        last_hash   TEXT NOT NULL,
        tree_size   BIGINT NOT NULL,
        root_hash   TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        archived_at BIGINT NOT NULL
    );
    CREATE INDEX audit_archives_by_seq ON audit_archives (tenant, through_seq);
    CREATE TRIGGER audit_archives_no_update BEFORE UPDATE OR DELETE ON audit_archives
        FOR EACH ROW EXECUTE FUNCTION log_refuse_change();
    CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
        FOR EACH STATEMENT EXECUTE FUNCTION log_refuse_change();

    -- A record goes only when a registered archive holds it (its `through_seq` covers it);
    -- updates and truncation stay refused for everyone.
    CREATE FUNCTION audit_delete_archived_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.seq > COALESCE((SELECT max(through_seq) FROM audit_archives WHERE tenant = OLD.tenant), 0) THEN
            RAISE EXCEPTION 'audit records are append-only: only records in a registered archive are removed';
        END IF;
        RETURN OLD;
    END;
    $$;
    DROP TRIGGER audit_no_delete ON audit;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_delete_archived_only();

    -- The runtime role holds no DELETE on `audit` and cannot register archives itself; this
    -- function, run with its owner's rights, is its only way to remove records: it checks the
    -- archive against the log (the last archived record stored with the archive's last hash,
    -- a newer record staying, a stored signed head covering it), registers it and removes the
    -- records it holds, under the chain lock the sequencer takes. Refusals carry SQLSTATE
    -- RMA01. The search path is fixed to this schema (then pg_temp), so a caller's objects
    -- are never resolved with the owner's rights.
    DO $migration$
    BEGIN
        EXECUTE format($create$
            CREATE FUNCTION audit_archive(
                p_tenant TEXT, p_through_seq BIGINT, p_last_hash TEXT, p_tree_size BIGINT,
                p_root_hash TEXT, p_file_sha256 TEXT, p_archived_at BIGINT
            ) RETURNS BIGINT LANGUAGE plpgsql SECURITY DEFINER SET search_path = %I, pg_temp AS $body$
            DECLARE
                stored_hash TEXT;
                newest      BIGINT;
                covered     BIGINT;
                removed     BIGINT;
            BEGIN
                PERFORM pg_advisory_xact_lock(hashtextextended('remediation-audit-chain:' || p_tenant, 0));
                SELECT hash INTO stored_hash FROM audit WHERE tenant = p_tenant AND seq = p_through_seq;
                IF stored_hash IS DISTINCT FROM p_last_hash THEN
                    RAISE EXCEPTION USING ERRCODE = 'RMA01', MESSAGE = format(
                        'record %%s is not stored with the archive''s last hash: the log changed since the archive was written',
                        p_through_seq);
                END IF;
                SELECT COALESCE(max(seq), 0) INTO newest FROM audit WHERE tenant = p_tenant;
                IF p_through_seq >= newest THEN
                    RAISE EXCEPTION USING ERRCODE = 'RMA01', MESSAGE = 'the newest audit record is never archived';
                END IF;
                SELECT max(tree_size) INTO covered FROM audit_tree_heads WHERE tenant = p_tenant;
                IF covered IS NULL OR covered < p_through_seq THEN
                    RAISE EXCEPTION USING ERRCODE = 'RMA01', MESSAGE = format(
                        'no stored signed tree head covers record %%s', p_through_seq);
                END IF;
                INSERT INTO audit_archives
                    (tenant, through_seq, last_hash, tree_size, root_hash, file_sha256, archived_at)
                    VALUES (p_tenant, p_through_seq, p_last_hash, p_tree_size, p_root_hash, p_file_sha256,
                            p_archived_at);
                DELETE FROM audit WHERE tenant = p_tenant AND seq <= p_through_seq;
                GET DIAGNOSTICS removed = ROW_COUNT;
                RETURN removed;
            END;
            $body$
        $create$, current_schema());
    END;
    $migration$;
    REVOKE ALL ON FUNCTION audit_archive(TEXT, BIGINT, TEXT, BIGINT, TEXT, TEXT, BIGINT) FROM PUBLIC;
    "#,
    ),
    // Version 5.
    (
        "reservations of approved actions, so replicas' workers take different actions",
        r#"
    -- Expand only: two nullable columns the previous release neither reads nor writes. A
    -- worker reserving approved actions to execute marks them with its holder id and an
    -- expiry; other workers pass them by until then. Advice, not a lock: the move to
    -- `executing` ignores them, and an expired reservation is anyone's.
    ALTER TABLE actions ADD COLUMN claimed_by TEXT, ADD COLUMN claimed_until BIGINT;
    "#,
    ),
    // Version 6.
    (
        "the audit log as the event outbox: each sink's delivery mark and its parked records",
        r#"
    -- Expand only: two new tables the previous release never reads. A relay delivers the
    -- sequenced audit log to each sink from its mark (the last `seq` the sink acknowledged or
    -- parked); the records a sink refused for good stay parked, with the reason, until an
    -- operator asks for them again. Not audit rows: the runtime role changes them. A parked
    -- record belongs to a registered sink.
    CREATE TABLE delivery_marks (
        tenant            TEXT NOT NULL DEFAULT 'default',
        sink              TEXT NOT NULL,
        delivered_through BIGINT NOT NULL CHECK (delivered_through >= 0),
        updated_at        BIGINT NOT NULL,
        PRIMARY KEY (tenant, sink)
    );
    CREATE TABLE delivery_parked (
        tenant    TEXT NOT NULL DEFAULT 'default',
        sink      TEXT NOT NULL,
        seq       BIGINT NOT NULL CHECK (seq > 0),
        reason    TEXT NOT NULL,
        parked_at BIGINT NOT NULL,
        replay    BOOLEAN NOT NULL DEFAULT false,
        PRIMARY KEY (tenant, sink, seq),
        FOREIGN KEY (tenant, sink) REFERENCES delivery_marks (tenant, sink)
    );
    "#,
    ),
    // Version 7.
    (
        "short handles for actions, a campaign column to filter by, and campaigns",
        r#"
    -- Expand only: the previous release neither reads nor writes the new columns and tables.
    -- Each action's short number (`#1234`) comes from one sequence, so replicas never give
    -- one twice; actions stored before get theirs in creation order, in their JSON too.
    CREATE SEQUENCE action_handles AS BIGINT START 1;
    ALTER TABLE actions ADD COLUMN handle BIGINT, ADD COLUMN campaign TEXT;
    UPDATE actions SET handle = numbered.n
        FROM (SELECT id, nextval('action_handles') AS n
              FROM (SELECT id FROM actions ORDER BY created_at, id) AS ordered) AS numbered
        WHERE actions.id = numbered.id;
    UPDATE actions SET detail_json = jsonb_set(detail_json::jsonb, '{action,handle}', to_jsonb(handle))::text
        WHERE handle IS NOT NULL;
    CREATE UNIQUE INDEX actions_by_handle ON actions (handle);
    CREATE INDEX actions_by_campaign ON actions (tenant, campaign, created_at, id) WHERE campaign IS NOT NULL;
    -- A campaign's record (JSON) and its entries, so an interrupted import resumes.
    CREATE TABLE campaigns (
        tenant      TEXT NOT NULL DEFAULT 'default',
        name        TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        record_json TEXT NOT NULL,
        PRIMARY KEY (tenant, name)
    );
    CREATE TABLE campaign_entries (
        tenant     TEXT NOT NULL DEFAULT 'default',
        campaign   TEXT NOT NULL,
        idx        BIGINT NOT NULL CHECK (idx >= 0),
        entry_json TEXT NOT NULL,
        PRIMARY KEY (tenant, campaign, idx),
        FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, name)
    );
    "#,
    ),
    // Version 8.
    (
        "tenants",
        r#"
    -- Expand only: every table was keyed by tenant already; this lists the tenants created
    -- (the default tenant is implicit). Limit windows are told apart by key.
    CREATE TABLE tenants (
        name        TEXT PRIMARY KEY,
        created_at  BIGINT NOT NULL,
        record_json TEXT NOT NULL
    );
    -- An operator's token reaches other tenants too.
    ALTER TABLE credentials ADD COLUMN also_tenants TEXT[] NOT NULL DEFAULT '{}';
    "#,
    ),
    // Version 9.
    (
        "managed connections and each tenant's counter of their changes",
        r#"
    -- Expand only: two new tables the previous release never reads. A managed connection's
    -- record (JSON; its secrets only as the vault's ciphertext) and its revision, the
    -- compare-and-set token; the counter moves with every change, so a runtime knows with
    -- one read when to rebuild its connectors.
    CREATE TABLE connections (
        tenant      TEXT NOT NULL DEFAULT 'default',
        id          TEXT NOT NULL,
        revision    BIGINT NOT NULL CHECK (revision > 0),
        record_json TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE TABLE connection_revisions (
        tenant   TEXT NOT NULL PRIMARY KEY,
        revision BIGINT NOT NULL
    );
    "#,
    ),
    // Version 10.
    (
        "documents: small JSON documents of each tenant by collection, with a revision",
        r#"
    -- Expand only: a new table the previous release never reads. A document's body (JSON),
    -- its revision, the compare-and-set token, and who wrote that revision when (RFC 3339).
    CREATE TABLE documents (
        tenant     TEXT NOT NULL,
        collection TEXT NOT NULL,
        id         TEXT NOT NULL,
        revision   BIGINT NOT NULL CHECK (revision > 0),
        body       TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    );
    "#,
    ),
];

/// Tables the runtime role may change (SELECT, INSERT, UPDATE, DELETE).
const MUTABLE_TABLES: &[&str] = &[
    "actions",
    "audit_pending",
    "audit_head",
    "audit_checkpoint",
    "limit_slots",
    "safety_state",
    "principals",
    "principal_roles",
    "credentials",
    "pending_changes",
    "leases",
    "ui_sessions",
    "delivery_marks",
    "delivery_parked",
    "campaigns",
    "campaign_entries",
    "tenants",
    "connections",
    "connection_revisions",
    "documents",
];

/// Tables the runtime role may only read and append to.
const INSERT_ONLY_TABLES: &[&str] = &["audit", "audit_leaves", "audit_tree_heads", "audit_keys"];

/// Tables the runtime role may only read: archives are registered through
/// [`ARCHIVE_FUNCTION`] alone.
const READ_ONLY_TABLES: &[&str] = &["audit_archives"];

/// The owner's function through which the runtime role archives records (schema version 4).
const ARCHIVE_FUNCTION: &str = "audit_archive(TEXT, BIGINT, TEXT, BIGINT, TEXT, TEXT, BIGINT)";

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: u32 = {
    assert!(MIGRATIONS.len() < u32::MAX as usize);
    MIGRATIONS.len() as u32
};

/// The advisory lock (class, key) under which migrations run, so two `migrate` at once apply
/// each migration once.
const MIGRATION_LOCK: (i32, i32) = (0x7265_6d00, 1);

/// What [`crate::migrate`] or [`crate::migrate_with`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema version found (`None`: a database without this store's schema).
    pub from: Option<u32>,
    /// The schema version now.
    pub to: u32,
    /// The versions applied by this call, in order.
    pub applied: Vec<u32>,
    /// The runtime role granted its privileges, if one was named.
    pub granted: Option<String>,
}

/// The schema version of the database (`None` when it holds no schema of this store).
pub(crate) async fn read_version(client: &Client) -> Result<Option<u32>, tokio_postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(None);
    }
    let version: Option<i32> = client.query_one("SELECT max(version) FROM schema_migrations", &[]).await?.get(0);
    Ok(version.map(|v| u32::try_from(v).unwrap_or(0)))
}

/// Refuses a schema other than this build's: missing or older ("run `remediate migrate`"),
/// or newer (name both versions).
pub(crate) fn check_version(config: &PostgresConfig, found: Option<u32>) -> Result<(), StorePostgresError> {
    let target = config.target();
    match found {
        None | Some(0) => Err(StorePostgresError::SchemaMissing { target }),
        Some(found) if found < SCHEMA_VERSION => {
            Err(StorePostgresError::SchemaTooOld { target, found, supported: SCHEMA_VERSION })
        }
        Some(found) if found > SCHEMA_VERSION => {
            Err(StorePostgresError::SchemaTooNew { target, found, supported: SCHEMA_VERSION })
        }
        Some(_) => Ok(()),
    }
}

/// Applies the migrations this database lacks, as the role the configuration logs in as (the
/// schema's owner), in one transaction under an advisory lock; then grants the runtime role
/// what it needs. A database whose schema is newer than this build is refused and left alone.
pub(crate) async fn migrate(
    config: &PostgresConfig,
    options: &MigrateOptions,
) -> Result<MigrationReport, StorePostgresError> {
    if let Some(role) = &options.runtime_role {
        check_role(role)?;
    }
    let target = config.target();
    let failed = |version: u32| {
        let target = target.clone();
        move |source: tokio_postgres::Error| StorePostgresError::Migrate {
            target,
            version,
            hint: hint(&source),
            source,
        }
    };
    let mut client = connect_one(config).await?;
    let tx = client.transaction().await.map_err(failed(0))?;
    tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1])
        .await
        .map_err(failed(0))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(failed(0))?;
    let from: Option<i32> =
        tx.query_one("SELECT max(version) FROM schema_migrations", &[]).await.map_err(failed(0))?.get(0);
    let from = from.map(|v| u32::try_from(v).unwrap_or(0));
    if let Some(found) = from
        && found > SCHEMA_VERSION
    {
        return Err(StorePostgresError::SchemaTooNew { target, found, supported: SCHEMA_VERSION });
    }
    let mut applied = Vec::new();
    for (version, (description, sql)) in (1u32..).zip(MIGRATIONS) {
        if from.unwrap_or(0) >= version {
            continue;
        }
        tx.batch_execute(sql).await.map_err(failed(version))?;
        let v = i32::try_from(version).unwrap_or(i32::MAX);
        tx.execute("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)", &[&v, description])
            .await
            .map_err(failed(version))?;
        applied.push(version);
    }
    // Nobody but the owner changes or removes audit records, and the triggers stop the owner too.
    for table in INSERT_ONLY_TABLES.iter().chain(READ_ONLY_TABLES) {
        tx.batch_execute(&format!("REVOKE ALL ON {table} FROM PUBLIC")).await.map_err(failed(0))?;
    }
    tx.batch_execute(&format!("REVOKE ALL ON FUNCTION {ARCHIVE_FUNCTION} FROM PUBLIC")).await.map_err(failed(0))?;
    if let Some(role) = &options.runtime_role {
        // The name was checked above: lowercase letters, digits and `_` only.
        let schema: String = tx.query_one("SELECT current_schema()", &[]).await.map_err(failed(0))?.get(0);
        let schema = format!("\"{}\"", schema.replace('"', "\"\""));
        let mut grants =
            format!("GRANT USAGE ON SCHEMA {schema} TO {role};\nGRANT SELECT ON schema_migrations TO {role};\n");
        for table in MUTABLE_TABLES {
            grants.push_str(&format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role};\n"));
        }
        for table in INSERT_ONLY_TABLES {
            grants.push_str(&format!("REVOKE ALL ON {table} FROM {role};\n"));
            grants.push_str(&format!("GRANT SELECT, INSERT ON {table} TO {role};\n"));
        }
        for table in READ_ONLY_TABLES {
            grants.push_str(&format!("REVOKE ALL ON {table} FROM {role};\n"));
            grants.push_str(&format!("GRANT SELECT ON {table} TO {role};\n"));
        }
        grants.push_str(&format!("GRANT EXECUTE ON FUNCTION {ARCHIVE_FUNCTION} TO {role};\n"));
        // New actions take their handle from the sequence (schema version 7); a copy into the
        // store moves it past the handles it brought.
        grants.push_str(&format!("GRANT USAGE, UPDATE ON SEQUENCE action_handles TO {role};\n"));
        tx.batch_execute(&grants).await.map_err(failed(0))?;
    }
    tx.commit().await.map_err(failed(0))?;
    Ok(MigrationReport { from, to: SCHEMA_VERSION, applied, granted: options.runtime_role.clone() })
}
