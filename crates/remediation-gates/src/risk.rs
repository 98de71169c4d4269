//! Blast radius and risk: how much an action can hurt if it is wrong.

use remediation_core::{Action, Capability, KindName, Reversibility, Risk};

/// The blast-radius score of an action of `kind` whose undo is `reversibility`:
/// reversibility (reversible 0, lossy 2, irreversible 3) plus the kind's reach (notify 0;
/// revoke, reduce, revoke sessions and force password reset 1, since each touches one grant
/// or one credential; suspend 2, since it takes away every access of the account).
///
/// | example | score | risk |
/// |---|---|---|
/// | revoke a group membership (reversible) | 1 | low |
/// | suspend an account (reversible) | 2 | medium |
/// | revoke an app assignment (lossy) | 3 | medium |
/// | revoke sessions (irreversible) | 4 | high |
pub fn blast_radius(kind: KindName, reversibility: Reversibility) -> u8 {
    let undo = match reversibility {
        Reversibility::Reversible => 0,
        Reversibility::Lossy => 2,
        Reversibility::Irreversible => 3,
    };
    let reach = match kind {
        KindName::Notify => 0,
        KindName::Revoke | KindName::Reduce | KindName::RevokeSessions | KindName::ForcePasswordReset => 1,
        KindName::Suspend => 2,
    };
    undo + reach
}

/// The risk of `action` under the connector's `capability` for it.
pub fn risk_of(action: &Action, capability: &Capability) -> Risk {
    Risk::from_score(blast_radius(action.kind.name(), capability.reversibility))
}
