//! The audit records every store writes for principal and token changes: one builder each,
//! so the stores cannot drift apart, and never a token or its hash.

use remediation_core::{PrincipalKind, Role, SettingsRecord};
use remediation_testkit::{approver, fixed_time};
use serde_json::json;

#[test]
fn principal_and_token_records_say_who_did_what_and_hold_no_secret() {
    let (actor, at) = (approver("root"), fixed_time());
    let expires = at + time::Duration::days(90);
    let cases = [
        (
            SettingsRecord::principal_created(&actor, at, "ci-bot", PrincipalKind::Service, Role::Requester),
            "principal_created",
            "principal `ci-bot`",
            json!(null),
            json!({"principal": "ci-bot", "kind": "service", "role": "requester"}),
        ),
        (
            SettingsRecord::principal_role_changed(&actor, at, "ci-bot", Role::Requester, Role::Approver, "on call"),
            "principal_role_changed",
            "on call",
            json!({"principal": "ci-bot", "role": "requester"}),
            json!({"principal": "ci-bot", "role": "approver"}),
        ),
        (
            SettingsRecord::principal_revoked(&actor, at, "ci-bot", 2, "left"),
            "principal_revoked",
            "left",
            json!({"principal": "ci-bot"}),
            json!({"principal": "ci-bot", "revoked_tokens": 2}),
        ),
        (
            SettingsRecord::token_created(&actor, at, "ci-bot", "deploy", expires),
            "token_created",
            "API token `deploy` of `ci-bot`",
            json!(null),
            json!({"principal": "ci-bot", "token": "deploy", "expires_at": "2026-04-01T00:00:00Z"}),
        ),
        (
            SettingsRecord::token_revoked(&actor, at, "ci-bot", "deploy"),
            "token_revoked",
            "API token `deploy` of `ci-bot`",
            json!(null),
            json!({"principal": "ci-bot", "token": "deploy"}),
        ),
    ];
    for (record, event, comment, previous, value) in cases {
        assert_eq!(record.setting_event, event);
        assert_eq!(record.actor, actor.name, "{event}");
        assert_eq!(record.at, at, "{event}");
        assert_eq!(record.comment.as_deref(), Some(comment), "{event}");
        assert_eq!(record.previous, previous, "{event}");
        assert_eq!(record.value, value, "{event}");
    }
}
