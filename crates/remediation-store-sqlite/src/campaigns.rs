//! Campaigns (the `campaigns` and `campaign_entries` tables): a named import's record, kept as
//! JSON, and its entries in order. Writes go through the writer like every other write; reads
//! run on the read pool.

use async_trait::async_trait;
use remediation_core::StoreError;
use remediation_core::store::{Campaign, CampaignProgress, CampaignStore, advance_campaign};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::store::{clamped_nanos, decode, encode, sql};

fn read(conn: &Connection, tenant: &str, name: &str, op: &str) -> Result<Option<Campaign>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT record_json FROM campaigns WHERE tenant = ?1 AND name = ?2")
        .and_then(|mut stmt| stmt.query_row(params![tenant, name], |row| row.get(0)).optional())
        .map_err(sql(op))?;
    json.map(|j| serde_json::from_str(&j).map_err(decode(op))).transpose()
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn create_campaign(&self, campaign: &Campaign, entries: &[serde_json::Value]) -> Result<(), StoreError> {
        const OP: &str = "cannot store the campaign";
        let record = serde_json::to_string(campaign).map_err(encode(OP))?;
        let entries =
            entries.iter().map(|e| serde_json::to_string(e).map_err(encode(OP))).collect::<Result<Vec<_>, _>>()?;
        let (name, created_at) = (campaign.name.clone(), clamped_nanos(campaign.created_at));
        self.write(move |conn, ctx| {
            if read(conn, &ctx.tenant(), &name, OP)?.is_some() {
                return Err(StoreError::CampaignConflict {
                    message: format!("a campaign named `{name}` exists already; choose another name, or resume it"),
                });
            }
            conn.prepare_cached(
                "INSERT INTO campaigns (tenant, name, created_at, record_json) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![ctx.tenant(), name, created_at, record]))
            .map_err(sql(OP))?;
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO campaign_entries (tenant, campaign, idx, entry_json) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql(OP))?;
            for (idx, entry) in (0_i64..).zip(&entries) {
                stmt.execute(params![ctx.tenant(), name, idx, entry]).map_err(sql(OP))?;
            }
            Ok(())
        })
        .await
    }

    async fn campaign(&self, name: &str) -> Result<Option<Campaign>, StoreError> {
        const OP: &str = "cannot read the campaign";
        let name = name.to_owned();
        self.blocking(move |s| s.with_conn(|conn| read(conn, &s.tenant, &name, OP))).await
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        const OP: &str = "cannot list the campaigns";
        self.blocking(move |s| {
            s.with_conn(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT record_json FROM campaigns WHERE tenant = ?1 ORDER BY created_at DESC, name",
                    )
                    .map_err(sql(OP))?;
                let rows = stmt.query_map(params![s.tenant], |row| row.get::<_, String>(0)).map_err(sql(OP))?;
                let mut out = Vec::new();
                for row in rows {
                    out.push(serde_json::from_str(&row.map_err(sql(OP))?).map_err(decode(OP))?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn campaign_entries(
        &self,
        name: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
        const OP: &str = "cannot read the campaign's entries";
        let name = name.to_owned();
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.blocking(move |s| {
            s.with_conn(|conn| {
                if read(conn, &s.tenant, &name, OP)?.is_none() {
                    return Err(StoreError::CampaignNotFound(name.clone()));
                }
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT idx, entry_json FROM campaign_entries
                         WHERE tenant = ?1 AND campaign = ?2 AND idx >= ?3 ORDER BY idx LIMIT ?4",
                    )
                    .map_err(sql(OP))?;
                let rows = stmt
                    .query_map(params![s.tenant, name, from, limit], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                    })
                    .map_err(sql(OP))?;
                let mut out = Vec::new();
                for row in rows {
                    let (idx, json) = row.map_err(sql(OP))?;
                    let value = serde_json::from_str(&json).map_err(decode(OP))?;
                    out.push((u64::try_from(idx).unwrap_or(0), value));
                }
                Ok(out)
            })
        })
        .await
    }

    async fn record_campaign_progress(&self, name: &str, progress: &CampaignProgress) -> Result<Campaign, StoreError> {
        const OP: &str = "cannot record the campaign's progress";
        let (name, progress) = (name.to_owned(), progress.clone());
        self.write(move |conn, ctx| {
            let stored =
                read(conn, &ctx.tenant(), &name, OP)?.ok_or_else(|| StoreError::CampaignNotFound(name.clone()))?;
            let next = advance_campaign(&stored, &progress)?;
            let json = serde_json::to_string(&next).map_err(encode(OP))?;
            conn.prepare_cached("UPDATE campaigns SET record_json = ?1 WHERE tenant = ?2 AND name = ?3")
                .and_then(|mut stmt| stmt.execute(params![json, ctx.tenant(), name]))
                .map_err(sql(OP))?;
            Ok(next)
        })
        .await
    }
}
