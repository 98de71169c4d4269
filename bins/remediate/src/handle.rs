//! Short handles wherever the command line takes an action id: `#1234` (quote it: `#` starts
//! a comment in shells) or `1234`, besides the full UUID.
//!
//! Arguments are parsed before the store is open, so a handle is parsed into a placeholder id
//! (a UUID of version 0, which no action id is: action ids are UUIDv7) and every placeholder in
//! the command is replaced by the action's id ([`crate::app::Ctx::resolve_handles`]) before the
//! command runs, locally through the store, with `--server` through the server.

use remediation_core::{ActionId, parse_handle};

/// The first 8 bytes of a placeholder: `handle` and two zero bytes (version nibble 0).
const PLACEHOLDER: u64 = 0x6861_6e64_6c65_0000;

/// `clap` value parser of an action id or handle.
pub(crate) fn parse_action(text: &str) -> Result<ActionId, String> {
    if let Ok(id) = text.parse::<ActionId>() {
        if handle_of(id).is_some() {
            return Err(format!("`{text}` is not an action id"));
        }
        return Ok(id);
    }
    match parse_handle(text) {
        Some(h) => Ok(ActionId(uuid::Uuid::from_u64_pair(PLACEHOLDER, h))),
        None => Err(format!("`{text}` is not an action id (a UUID) or handle (`#1234` or `1234`)")),
    }
}

/// The handle a placeholder stands for; `None` for a real id.
pub(crate) fn handle_of(id: ActionId) -> Option<u64> {
    let (high, low) = id.0.as_u64_pair();
    (high == PLACEHOLDER).then_some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_become_placeholders_and_ids_stay_ids() {
        let id = ActionId::new_at(time::OffsetDateTime::now_utc());
        assert_eq!(parse_action(&id.to_string()), Ok(id));
        assert_eq!(handle_of(id), None);
        let h = parse_action("#42").expect("handle");
        assert_eq!(handle_of(h), Some(42));
        assert_eq!(parse_action("42").map(handle_of), Ok(Some(42)));
        assert_ne!(h.0.get_version_num(), 7, "never an action's id");
        for bad in ["", "#", "0", "x", "#-1", "42 "] {
            assert!(parse_action(bad).is_err(), "{bad:?}");
        }
        assert!(parse_action(&h.to_string()).is_err(), "a placeholder typed as a UUID is not an id");
    }
}
