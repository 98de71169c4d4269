//! [`CampaignStore`]: named imports of many findings, kept so an interrupted import resumes
//! where it stopped.
//!
//! A campaign is created with every entry of its document at once ([`CampaignStore::create_campaign`]),
//! so nothing the import still has to do lives only in a process that may be killed. The
//! import then takes the entries in order and records how far it got
//! ([`CampaignStore::record_campaign_progress`]): the cursor only moves forward, so two
//! processes resuming the same campaign cannot move it back. The actions a campaign creates
//! carry its name ([`crate::Action::campaign`]), written with the action itself: an action
//! created just before a crash, after the last recorded progress, is found again by name, and
//! intake's de-duplication turns the repeated entry into "already open".

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::StoreError;

/// Longest campaign name.
pub const MAX_CAMPAIGN_NAME: usize = 64;

/// The prefix of playbook runs' ids, which their actions carry as their campaign: no campaign
/// may take a name with it, so a run's actions are its own.
pub const RUN_PREFIX: &str = "run-";

/// Checks a campaign name: 1 to [`MAX_CAMPAIGN_NAME`] characters, ASCII letters, digits, `-`,
/// `_` and `.`, starting with a letter or digit (it appears in URLs, file names and filters),
/// and not starting with [`RUN_PREFIX`] (kept for playbook runs).
pub fn check_campaign_name(name: &str) -> Result<(), String> {
    if name.to_ascii_lowercase().starts_with(RUN_PREFIX) {
        return Err(format!(
            "campaign name `{}` starts with `{RUN_PREFIX}`, which is kept for playbook runs",
            name.escape_debug()
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_CAMPAIGN_NAME {
        return Err(format!("a campaign name has 1 to {MAX_CAMPAIGN_NAME} characters"));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "campaign name `{}` may hold only letters, digits, `-`, `_` and `.`, and starts with a letter or digit",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// A campaign as stored: where it came from and how far its import got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Its name, unique in the installation (see [`check_campaign_name`]).
    pub name: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    /// Where the findings came from (a file name, `-` for standard input, or `api`).
    pub source: String,
    /// The document's format (`own`, `ocsf`, `asff`, ...), when it had entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The connector every entry was sent to, when the import named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// How many entries the document has.
    pub total: u64,
    /// How many entries (from the first) have been taken in.
    pub cursor: u64,
    /// Outcomes of the entries taken in, by outcome name (`created`, `existing`,
    /// `unsupported`, `failed`, ...).
    #[serde(default)]
    pub outcomes: BTreeMap<String, u64>,
    /// A few reasons an entry was not taken, with how many entries gave each, most frequent
    /// first (at most 20).
    #[serde(default)]
    pub reasons: Vec<CampaignReason>,
    /// When the last entry was taken in.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<OffsetDateTime>,
    /// When progress was last recorded.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
}

impl Campaign {
    /// Whether every entry has been taken in.
    pub fn is_finished(&self) -> bool {
        self.cursor >= self.total
    }
}

/// Why some entries of a campaign were not taken, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignReason {
    /// The outcome (`unsupported`, `failed`, `invalid`).
    pub outcome: String,
    /// The reason, as intake gave it.
    pub reason: String,
    /// How many entries.
    pub count: u64,
}

/// How far an import got: written after a batch of entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignProgress {
    /// Entries taken in so far (never less than the stored cursor).
    pub cursor: u64,
    /// Outcome counts of entries `0..cursor`.
    pub outcomes: BTreeMap<String, u64>,
    /// Reasons, as [`Campaign::reasons`].
    pub reasons: Vec<CampaignReason>,
    /// When the last entry was taken in, once `cursor` reaches the total.
    pub finished_at: Option<OffsetDateTime>,
    /// Now.
    pub at: OffsetDateTime,
}

/// Campaigns and their entries. Every write is its own serializable step.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Stores a new campaign with its entries (each an opaque JSON value, in order) in one
    /// step. Fails with [`StoreError::CampaignConflict`] when a campaign of that name exists.
    async fn create_campaign(&self, campaign: &Campaign, entries: &[serde_json::Value]) -> Result<(), StoreError>;

    /// The campaign named `name`, if any.
    async fn campaign(&self, name: &str) -> Result<Option<Campaign>, StoreError>;

    /// Every campaign, newest first.
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;

    /// Entries `from..from + limit` of campaign `name` (fewer at its end), with their index.
    async fn campaign_entries(
        &self,
        name: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, serde_json::Value)>, StoreError>;

    /// Records progress and returns the campaign as stored after it. Refused with
    /// [`StoreError::CampaignConflict`] (nothing written) when `progress.cursor` is behind the stored
    /// cursor (another process got further) or beyond the total; [`StoreError::CampaignNotFound`]
    /// when there is no such campaign.
    async fn record_campaign_progress(&self, name: &str, progress: &CampaignProgress) -> Result<Campaign, StoreError>;
}

/// The stored campaign after `progress`, or why it cannot be recorded: the rule every store
/// applies inside its write transaction.
pub fn advance(stored: &Campaign, progress: &CampaignProgress) -> Result<Campaign, StoreError> {
    if progress.cursor < stored.cursor {
        return Err(StoreError::CampaignConflict {
            message: format!(
                "campaign {} is already at entry {}; this import stopped at {} (another process resumed it)",
                stored.name, stored.cursor, progress.cursor
            ),
        });
    }
    if progress.cursor > stored.total {
        return Err(StoreError::CampaignConflict {
            message: format!(
                "campaign {} has {} entries; progress {} is beyond its end",
                stored.name, stored.total, progress.cursor
            ),
        });
    }
    Ok(Campaign {
        cursor: progress.cursor,
        outcomes: progress.outcomes.clone(),
        reasons: progress.reasons.clone(),
        finished_at: progress.finished_at.or(stored.finished_at),
        updated_at: progress.at,
        ..stored.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["q4-okta", "a", "Campaign_2026.12", &"x".repeat(MAX_CAMPAIGN_NAME)] {
            assert!(check_campaign_name(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "-x", ".x", "a b", "a/b", "../x", "é", "a%2f", "run-0193", "RUN-x", &"x".repeat(MAX_CAMPAIGN_NAME + 1)]
        {
            assert!(check_campaign_name(bad).is_err(), "{bad:?}");
        }
    }
}
