//! Blast radius and risk: how much an action can hurt if it is wrong.

use remediation_core::{Action, Capability, KindName, Plan, Reversibility, Risk};

/// The blast-radius score of an action of `kind` whose undo is `reversibility`, before its
/// reach is known: reversibility (reversible 0, lossy 2, irreversible 3) plus the kind's reach
/// (notify 0; revoke, reduce, revoke sessions, force password reset and enforce 1, since each
/// touches one grant, one credential or one setting of one resource, whose dependants the
/// connector counts as its reach; suspend 2, since it takes away every access of the account).
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
        KindName::Revoke
        | KindName::Reduce
        | KindName::RevokeSessions
        | KindName::ForcePasswordReset
        | KindName::Enforce
        | KindName::Rotate => 1,
        KindName::Suspend => 2,
    };
    undo + reach
}

/// Points a change earns for how far it reaches: `reach` is the number of grants, groups,
/// applications or dependants it touches, as the connector counted them in the before-state.
/// Up to 3 adds nothing (what the kind's own score assumes); 4 to 9 adds 1; 10 to 49 adds 2;
/// 50 or more adds 3. So a reversible suspension of an account holding ten or more groups
/// and applications scores 4, and needs a human.
pub fn reach_points(reach: Option<u32>) -> u8 {
    match reach.unwrap_or(0) {
        0..=3 => 0,
        4..=9 => 1,
        10..=49 => 2,
        _ => 3,
    }
}

/// The blast-radius score of an action of `kind`, undone with `reversibility`, reaching
/// `reach` grants or dependants: [`blast_radius`] plus [`reach_points`].
pub fn blast_radius_reaching(kind: KindName, reversibility: Reversibility, reach: Option<u32>) -> u8 {
    blast_radius(kind, reversibility).saturating_add(reach_points(reach))
}

/// The risk of `action` under the connector's `capability` for it, with the reach `plan`
/// recorded.
pub fn risk_of(action: &Action, capability: &Capability, plan: &Plan) -> Risk {
    Risk::from_score(blast_radius_reaching(action.kind.name(), capability.reversibility, plan.reach))
}
