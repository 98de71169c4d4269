//! Leases: who may act on an action (or run a single-leader job) and until when, with an epoch
//! that fences out a holder that lost it.
//!
//! A lease is granted in the same transaction as the state change that needs it (the move to
//! `executing` or `rolling_back`), expires by the *store's* clock, and carries an epoch that
//! grows by one with every grant. Every later state change of the action names the epoch it
//! holds ([`super::StateChange::fence`]); a change naming an older epoch is refused with
//! [`super::StoreError::StaleLease`] and writes nothing, so a holder that was frozen past its
//! expiry and taken over can never overwrite what its successor did.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{ActionDetail, StoreError};
use crate::ActionId;

/// What a worker asks for when it takes a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Who holds it: a worker id unique to the process and worker (`host:pid:worker`).
    pub holder: String,
    /// How long it lasts from the store's clock at the grant (or renewal).
    pub ttl: Duration,
}

/// A granted lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Who holds it.
    pub holder: String,
    /// Grows by one with every grant on the same action or name: the fencing token.
    pub epoch: u64,
    /// When it lapses unless renewed, by the store's clock.
    pub expires_at: OffsetDateTime,
}

impl Lease {
    /// The lease a grant of `request` at `now` over a previous `epoch` yields.
    pub fn granted(request: &LeaseRequest, previous_epoch: u64, now: OffsetDateTime) -> Self {
        Self {
            holder: request.holder.clone(),
            epoch: previous_epoch.saturating_add(1),
            expires_at: expiry(now, request.ttl),
        }
    }

    /// Whether this lease still holds at `now` (it lapses at `expires_at`).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}

/// `now + ttl`, saturating at the largest representable instant.
pub fn expiry(now: OffsetDateTime, ttl: Duration) -> OffsetDateTime {
    time::Duration::try_from(ttl).ok().and_then(|d| now.checked_add(d)).unwrap_or(now)
}

/// Leases on actions in `executing` and `rolling_back`, beside [`super::ActionStore`].
///
/// Grants happen inside [`super::ActionStore::begin_execution`] and
/// [`super::ActionStore::apply`] when the change carries [`super::StateChange::lease`]; a
/// change to any state other than `executing` and `rolling_back` ends the lease (the epoch is
/// kept, so the next grant is higher still).
#[async_trait]
pub trait ActionLeases: Send + Sync {
    /// The action's current lease; `None` when nobody holds one (expired leases are returned
    /// as they are: judge them with [`Lease::is_live`] against the store's clock).
    async fn lease(&self, id: ActionId) -> Result<Option<Lease>, StoreError>;

    /// Extends `lease` by `ttl` from the store's clock, in one step: only when the stored
    /// lease has the same holder and epoch and has not expired by the store's clock;
    /// otherwise [`StoreError::LeaseLost`] and nothing is written. A holder that sees
    /// `LeaseLost` makes no further provider write for the action.
    async fn renew_lease(&self, id: ActionId, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError>;

    /// Takes over, in one step each, up to `limit` actions in `executing` or `rolling_back`
    /// whose lease expired by the store's clock (or that have none, as actions stored before
    /// leases existed): each gets a lease for `request` with the next epoch. Returns each
    /// action with its new lease; the caller settles them by the crash rule, fencing every
    /// change with the new epoch. Two concurrent callers never take over the same action.
    async fn take_over_expired(
        &self,
        request: &LeaseRequest,
        limit: usize,
    ) -> Result<Vec<(ActionDetail, Lease)>, StoreError>;
}

/// Named leases for single-leader jobs (an audit sequencer, an event relay), on the same
/// design as action leases: granted to one holder at a time, by the store's clock, with an
/// epoch that grows with every grant.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Grants `name` to `request.holder` when nobody holds it or its lease expired by the
    /// store's clock (or the caller already holds it: then it is re-granted with a new epoch).
    /// `None` when another holder's lease is live; nothing is written then.
    async fn acquire_lease(&self, name: &str, request: &LeaseRequest) -> Result<Option<Lease>, StoreError>;

    /// Extends `lease` on `name` by `ttl`: only when it is still the stored lease (holder and
    /// epoch) and has not expired by the store's clock; otherwise [`StoreError::LeaseLost`].
    async fn renew_named_lease(&self, name: &str, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError>;

    /// Gives `name` up so another holder may take it at once; does nothing (and succeeds) when
    /// `lease` is no longer the stored one.
    async fn release_lease(&self, name: &str, lease: &Lease) -> Result<(), StoreError>;
}
