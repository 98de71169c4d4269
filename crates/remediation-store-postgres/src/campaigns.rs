//! Campaigns (the `campaigns` and `campaign_entries` tables): a named import's record, kept as
//! JSON, and its entries in order. Progress is a read-modify-write under a row lock, so two
//! processes resuming one campaign never move its cursor back.

use async_trait::async_trait;
use remediation_core::StoreError;
use remediation_core::store::{Campaign, CampaignProgress, CampaignStore, advance_campaign};

use crate::store::{PostgresStore, clamped_nanos, decode, encode, pg};

/// Rows per multi-row insert of entries.
const ENTRY_CHUNK: usize = 2_000;

fn parse(json: &str, op: &str) -> Result<Campaign, StoreError> {
    serde_json::from_str(json).map_err(decode(op))
}

#[async_trait]
impl CampaignStore for PostgresStore {
    async fn create_campaign(&self, campaign: &Campaign, entries: &[serde_json::Value]) -> Result<(), StoreError> {
        const OP: &str = "cannot store the campaign";
        let record = serde_json::to_string(campaign).map_err(encode(OP))?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let inserted = tx
            .execute(
                "INSERT INTO campaigns (tenant, name, created_at, record_json) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, name) DO NOTHING",
                &[&self.tenant(), &campaign.name, &clamped_nanos(campaign.created_at), &record],
            )
            .await
            .map_err(pg(OP))?;
        if inserted == 0 {
            return Err(StoreError::CampaignConflict {
                message: format!(
                    "a campaign named `{}` exists already; choose another name, or resume it",
                    campaign.name
                ),
            });
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO campaign_entries (tenant, campaign, idx, entry_json)
                 SELECT $1, $2, idx, entry_json FROM unnest($3::bigint[], $4::text[]) AS t(idx, entry_json)",
            )
            .await
            .map_err(pg(OP))?;
        let mut start = 0_i64;
        for chunk in entries.chunks(ENTRY_CHUNK) {
            let json =
                chunk.iter().map(|e| serde_json::to_string(e).map_err(encode(OP))).collect::<Result<Vec<_>, _>>()?;
            let idx: Vec<i64> = (start..).take(chunk.len()).collect();
            start += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            tx.execute(&stmt, &[&self.tenant(), &campaign.name, &idx, &json]).await.map_err(pg(OP))?;
        }
        self.commit(tx, OP).await
    }

    async fn campaign(&self, name: &str) -> Result<Option<Campaign>, StoreError> {
        const OP: &str = "cannot read the campaign";
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT record_json FROM campaigns WHERE tenant = $1 AND name = $2", &[&self.tenant(), &name])
            .await
            .map_err(pg(OP))?;
        row.map(|row| parse(row.get::<_, &str>(0), OP)).transpose()
    }

    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        const OP: &str = "cannot list the campaigns";
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record_json FROM campaigns WHERE tenant = $1 ORDER BY created_at DESC, name",
                &[&self.tenant()],
            )
            .await
            .map_err(pg(OP))?;
        rows.iter().map(|row| parse(row.get::<_, &str>(0), OP)).collect()
    }

    async fn campaign_entries(
        &self,
        name: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
        const OP: &str = "cannot read the campaign's entries";
        if self.campaign(name).await?.is_none() {
            return Err(StoreError::CampaignNotFound(name.to_owned()));
        }
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT idx, entry_json FROM campaign_entries
                 WHERE tenant = $1 AND campaign = $2 AND idx >= $3 ORDER BY idx LIMIT $4",
                &[&self.tenant(), &name, &from, &limit],
            )
            .await
            .map_err(pg(OP))?;
        rows.iter()
            .map(|row| {
                let idx: i64 = row.get(0);
                let value = serde_json::from_str(row.get::<_, &str>(1)).map_err(decode(OP))?;
                Ok((u64::try_from(idx).unwrap_or(0), value))
            })
            .collect()
    }

    async fn record_campaign_progress(&self, name: &str, progress: &CampaignProgress) -> Result<Campaign, StoreError> {
        const OP: &str = "cannot record the campaign's progress";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg(OP))?;
        let row = tx
            .query_opt(
                "SELECT record_json FROM campaigns WHERE tenant = $1 AND name = $2 FOR UPDATE",
                &[&self.tenant(), &name],
            )
            .await
            .map_err(pg(OP))?
            .ok_or_else(|| StoreError::CampaignNotFound(name.to_owned()))?;
        let stored = parse(row.get::<_, &str>(0), OP)?;
        let next = advance_campaign(&stored, progress)?;
        let json = serde_json::to_string(&next).map_err(encode(OP))?;
        tx.execute(
            "UPDATE campaigns SET record_json = $1 WHERE tenant = $2 AND name = $3",
            &[&json, &self.tenant(), &name],
        )
        .await
        .map_err(pg(OP))?;
        self.commit(tx, OP).await?;
        Ok(next)
    }
}
