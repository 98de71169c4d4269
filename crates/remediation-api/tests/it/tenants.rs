//! Tenants over HTTP: the authorisation matrix gains a tenant dimension. A token of one tenant
//! reaches nothing of another: every endpoint, every role, answers 404 (or 401 on the default
//! tenant's own routes, where the token is simply unknown), never data.

use axum::http::{Method, StatusCode};
use remediation_api::routes::{ROUTES, RequestBody, Route};
use remediation_config::ConnectorConfig;
use remediation_core::{Role, TenantId};
use serde_json::{Value, json};

use crate::support::{Env, error_code};

const ROLES: [Role; 4] = [Role::Viewer, Role::Requester, Role::Approver, Role::Admin];

/// An installation with tenant `acme` (its own principals, tokens and sandbox connector).
async fn two_tenants() -> Env {
    let mut env = Env::with(|c| {
        let mut acme = ConnectorConfig::sandbox("acme-sandbox", "sandbox-acme.json");
        acme.tenant = Some(TenantId::new("acme").unwrap());
        c.connectors.push(acme);
    });
    remediation_connector_sandbox::write_sample(env.dir.path().join("sandbox-acme.json")).unwrap();
    env.add_tenant("acme").await;
    env
}

fn revoke_in(connector: &str, group: &str) -> Value {
    json!({
        "connector": connector,
        "kind": {"type": "revoke"},
        "target": {"identity": "alice", "resource": group, "grant_type": "group_membership"},
        "reason": "left the team"
    })
}

/// A body for routes that take one (what the authorisation matrix sends).
fn body_for(route: &Route) -> Option<Value> {
    match route.operation_id {
        "create_action" => Some(revoke_in("sandbox", "admins")),
        "execute_action" => Some(json!({"dry_run": false})),
        "force_execute_action" | "reset_breaker" => Some(json!({"reason": "matrix"})),
        "intake_finding" => {
            Some(json!({"id": "F-1", "source": "scanner", "control_id": "C-1", "severity": "high", "title": "t",
            "target": {"identity": "bob", "resource": "admins", "grant_type": "group_membership"},
            "suggested_kind": {"type": "revoke"}}))
        }
        "patch_settings" => Some(json!({"patch": {"min_approvals": 1}, "reason": "matrix"})),
        "create_campaign" => Some(json!({"name": "matrix", "findings": []})),
        "set_kill_switch" => Some(json!({"on": true, "reason": "matrix"})),
        "replay_parked_events" => Some(json!({"sink": "events/none", "reason": "matrix"})),
        "link_identity" => Some(json!({"connector": "sandbox", "account": "alice", "reason": "matrix"})),
        "respond_to_identity" => Some(json!({"actions": ["revoke_sessions"], "reason": "matrix"})),
        "save_playbook" => Some(json!({"name": "matrix", "version": 1, "steps": [{"action": "revoke_sessions"}]})),
        "plan_playbook" | "start_playbook_run" => Some(json!({"identity": "alice@example.com", "reason": "matrix"})),
        "rollback_run" => Some(json!({"reason": "matrix"})),
        "create_tenant" => Some(json!({"name": "evil"})),
        "create_connection" => Some(json!({"id": "matrix", "type": "sandbox", "settings": {"path": "matrix.json"}})),
        "update_connection" => Some(json!({"scope": {"domains": ["example.com"]}})),
        _ => match route.request {
            RequestBody::None => None,
            _ => Some(json!({"note": "matrix"})),
        },
    }
}

/// Every authenticated endpoint, called with each role's token of `acme` on the default
/// tenant's routes and objects, and with each role's token of the default tenant on `acme`'s
/// routes: never a success, never another tenant's data; 404 on tenant routes.
#[tokio::test]
async fn a_token_of_one_tenant_reaches_nothing_of_another() {
    let env = two_tenants().await;
    // The default tenant's objects.
    let action = env.suggest("requester", "admins").await;
    let change = env.propose_auto("admin2").await;
    let mut failures = Vec::new();
    let mut cells = 0;
    for route in ROUTES.iter().filter(|r| r.role.is_some() && r.path.starts_with("/v1/")) {
        let param = if route.path.starts_with("/v1/pending-changes/") { &change } else { &action };
        let path = route.path.replace("{id}", param);
        let rest = path.strip_prefix("/v1/").unwrap_or_default();
        for role in ROLES {
            // acme's token on the default tenant's routes: unknown there.
            let acme = format!("acme-{role}");
            for (who, url, want) in [
                (acme.as_str(), path.clone(), 401),
                (acme.as_str(), format!("/v1/tenants/default/{rest}"), 404),
                (role_token(role), format!("/v1/tenants/acme/{rest}"), 404),
            ] {
                cells += 1;
                let (status, body) = env.call(Some(who), route.method.method(), &url, body_for(route)).await;
                if status.as_u16() != want {
                    failures
                        .push(format!("{} {url} as {who}: want {want}, got {status} {body}", route.method.as_str()));
                } else {
                    error_code(&body);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cells} cells wrong:\n{}", failures.len(), failures.join("\n"));
    // Nothing of the above changed the default tenant: its action waits as it was.
    let (status, body) = env.call(Some("viewer"), Method::GET, &format!("/v1/actions/{action}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["action"]["state"], "pending_approval");
}

/// Has acme's requester suggest revoking alice's `admins` membership through acme's own
/// sandbox; the created action's view.
async fn suggest_in_acme(env: &Env) -> Value {
    let (status, body) = env
        .call(
            Some("acme-requester"),
            Method::POST,
            "/v1/tenants/acme/actions",
            Some(revoke_in("acme-sandbox", "admins")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The default tenant's principal of `role`.
fn role_token(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Requester => "requester",
        Role::Approver => "approver",
        _ => "admin",
    }
}

/// Inside its own tenant a token works as at the top level, but another tenant's object ids
/// are unknown there: every route that names an object answers 404 to every role allowed to
/// call it, and a list holds only the tenant's own.
#[tokio::test]
async fn another_tenants_objects_are_not_found() {
    let env = two_tenants().await;
    let theirs = env.suggest("requester", "admins").await;
    let change = env.propose_auto("admin2").await;
    let body = suggest_in_acme(&env).await;
    let ours = body["action"]["id"].as_str().unwrap().to_owned();
    // Audit logs: each tenant's own records, each chain whole.
    let (_, log) = env.call(Some("acme-viewer"), Method::GET, "/v1/tenants/acme/audit", None).await;
    let text = log.to_string();
    assert!(text.contains(&ours) && !text.contains(&theirs), "acme's log holds only acme's actions");
    let (_, log) = env.call(Some("viewer"), Method::GET, "/v1/audit", None).await;
    let text = log.to_string();
    assert!(text.contains(&theirs) && !text.contains(&ours), "the default tenant's log holds only its own");
    let (_, verified) = env.call(Some("acme-viewer"), Method::GET, "/v1/tenants/acme/audit/verify", None).await;
    assert!(verified["first_break"].is_null() && verified["checkpoint"]["status"] == "matches", "{verified}");
    let mut failures = Vec::new();
    for route in ROUTES.iter().filter(|r| r.role.is_some() && r.path.contains("{id}")) {
        let param = if route.path.starts_with("/v1/pending-changes/") { &change } else { &theirs };
        let url = route.path.replace("{id}", param).replacen("/v1/", "/v1/tenants/acme/", 1);
        for role in ROLES {
            let who = format!("acme-{role}");
            let (status, body) = env.call(Some(&who), route.method.method(), &url, body_for(route)).await;
            let allowed = route.role.is_some_and(|least| role >= least);
            let ok = if allowed { status == 404 } else { matches!(status.as_u16(), 403 | 404) };
            if !ok {
                failures.push(format!("{} {url} as {who}: got {status} {body}", route.method.as_str()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Lists: each tenant sees its own.
    let (_, mine) = env.call(Some("acme-viewer"), Method::GET, "/v1/tenants/acme/actions", None).await;
    let ids: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [ours.as_str()]);
    let (_, top) = env.call(Some("viewer"), Method::GET, "/v1/actions", None).await;
    let ids: Vec<&str> = top["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [theirs.as_str()]);
    // The connector of the other tenant is unknown here.
    let (status, body) = env
        .call(Some("acme-requester"), Method::POST, "/v1/tenants/acme/actions", Some(revoke_in("sandbox", "ops")))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// Tenants are listed and created by an admin of the default tenant only; a tenant that does
/// not exist reads as one the token does not reach; without a token the answer is 401
/// whatever the tenant.
#[tokio::test]
async fn tenants_are_managed_from_the_default_tenant() {
    let env = two_tenants().await;
    let (status, body) = env.call(Some("admin"), Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "acme"]);
    let (status, _) = env.call(Some("approver"), Method::GET, "/v1/tenants", None).await;
    assert_eq!(status, 403);
    let (status, _) = env.call(Some("acme-admin"), Method::GET, "/v1/tenants/acme/tenants", None).await;
    assert_eq!(status, 400, "an admin of another tenant manages no tenants");
    let (status, body) =
        env.call(Some("admin"), Method::POST, "/v1/tenants", Some(json!({"name": "prod", "description": "p"}))).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = env.call(Some("admin"), Method::POST, "/v1/tenants", Some(json!({"name": "prod"}))).await;
    assert_eq!(status, 409);
    let (status, _) = env.call(Some("admin"), Method::POST, "/v1/tenants", Some(json!({"name": "../etc"}))).await;
    assert_eq!(status, 400);
    for url in ["/v1/tenants/nope/actions", "/v1/tenants/prod/actions", "/v1/tenants/..%2Fx/actions"] {
        let (status, body) = env.call(Some("admin"), Method::GET, url, None).await;
        assert_eq!(status, 404, "{url}: {body}");
        let (status, _) = env.call(None, Method::GET, url, None).await;
        assert_eq!(status, 401, "{url} without a token");
    }
}

/// The installation's kill switch, turned on by an admin of the default tenant, stops every
/// tenant (and cancels their waiting actions); a tenant's admin cannot turn it on or off.
#[tokio::test]
async fn the_installation_kill_switch_wins_over_each_tenant() {
    let env = two_tenants().await;
    suggest_in_acme(&env).await;
    let on = json!({"on": true, "installation": true, "reason": "incident"});
    let (status, _) =
        env.call(Some("acme-admin"), Method::POST, "/v1/tenants/acme/kill-switch", Some(on.clone())).await;
    assert_eq!(status, 400, "a tenant's admin does not hold the installation's switch");
    let (status, body) = env.call(Some("admin"), Method::POST, "/v1/kill-switch", Some(on)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["installation"], true);
    assert_eq!(body["cancelled"].as_array().unwrap().len(), 1, "acme's waiting action was cancelled");
    let (_, view) = env.call(Some("acme-viewer"), Method::GET, "/v1/tenants/acme/kill-switch", None).await;
    assert_eq!((view["on"].as_bool(), view["installation"].as_bool()), (Some(false), Some(true)));
    let (status, body) = env
        .call(
            Some("acme-requester"),
            Method::POST,
            "/v1/tenants/acme/actions",
            Some(revoke_in("acme-sandbox", "engineering")),
        )
        .await;
    assert_eq!(status, 403, "nothing new while the installation's switch is on: {body}");
    assert!(body.to_string().contains("installation's kill switch"), "{body}");
}

/// The console signs in to a tenant: its token there, its sessions there, its actions only;
/// a token of another tenant does not sign in to it, and signing out leaves no tenant cookie.
#[tokio::test]
async fn the_console_serves_the_tenant_signed_in_to() {
    use crate::ui::Browser;
    let env = two_tenants().await;
    let theirs = env.suggest("requester", "admins").await;
    let (_, body) = env
        .call(
            Some("acme-requester"),
            Method::POST,
            "/v1/tenants/acme/actions",
            Some(revoke_in("acme-sandbox", "admins")),
        )
        .await;
    let ours = body["action"]["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(env.app.clone());
    let login = b.get().await;
    let csrf = login.csrf();
    // The default tenant's token does not sign in to acme (and says no more than a bad token).
    let refused = b.post("/login", &[("csrf", &csrf), ("token", env.token("admin")), ("tenant", "acme")]).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("unknown or revoked token"));
    let csrf = b.get().await.csrf();
    let nowhere = b.post("/login", &[("csrf", &csrf), ("token", env.token("acme-admin")), ("tenant", "nope")]).await;
    assert_eq!(nowhere.status, 401, "a tenant that does not exist reads as a bad token");
    let csrf = b.get().await.csrf();
    let ok = b.post("/login", &[("csrf", &csrf), ("token", env.token("acme-approver")), ("tenant", "acme")]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(b.cookies.get("remediation_tenant").map(String::as_str), Some("acme"));
    let page = b.get().await;
    assert!(page.body.contains("in tenant <strong id=\"tenant\">acme</strong>"), "{}", page.body);
    let list = b.open("/ui/actions").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&ours) && !list.body.contains(&theirs), "acme's actions only");
    let other = b.open(&format!("/ui/actions/{theirs}")).await;
    assert_eq!(other.status, 404, "another tenant action is not found in acme console: {}", other.body);
    // Forging the cookie to another tenant finds no session there: the sign-in form.
    b.cookies.insert("remediation_tenant".into(), "default".into());
    assert!(b.get().await.body.contains("action=\"/login\""), "acme's session is not the default tenant's");
    b.cookies.insert("remediation_tenant".into(), "acme".into());
    let csrf = b.get().await.csrf();
    let out = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(!b.cookies.contains_key("remediation_tenant"), "signing out forgets the tenant");
}

/// An operator's token reaches the tenants it lists, with the principal's role in each, and
/// nothing else.
#[tokio::test]
async fn an_operators_token_reaches_its_tenants_with_the_role_held_there() {
    let mut env = two_tenants().await;
    let acme = env.state.installation().for_tenant(&TenantId::new("acme").unwrap()).await.unwrap();
    let root = remediation_core::Actor::new("local:test", Role::Admin);
    let now = acme.clock().now();
    acme.store()
        .create_principal("admin", remediation_core::PrincipalKind::Person, Role::Viewer, &root, now)
        .await
        .unwrap();
    env.add_token("admin", "ops");
    let base = env.state.installation().clone();
    assert!(base.store().set_token_tenants("ops", &[TenantId::new("acme").unwrap()], &root, now).await.unwrap());
    let (status, _) = env.call(Some("ops"), Method::GET, "/v1/tenants/acme/actions", None).await;
    assert_eq!(status, 200, "the operator's token reaches acme");
    let (status, body) = env.call(Some("ops"), Method::GET, "/v1/tenants/acme/kill-switch", None).await;
    assert_eq!(status, 200, "{body}");
    let patch = json!({"patch": {"min_approvals": 2}, "reason": "ops"});
    let (status, _) = env.call(Some("ops"), Method::PATCH, "/v1/tenants/acme/settings", Some(patch.clone())).await;
    assert_eq!(status, 403, "a viewer in acme, whatever it is at home");
    let (status, _) = env.call(Some("ops"), Method::PATCH, "/v1/settings", Some(patch)).await;
    assert_eq!(status, 200, "an admin at home");
    env.add_tenant("beta").await;
    let (status, _) = env.call(Some("ops"), Method::GET, "/v1/tenants/beta/actions", None).await;
    assert_eq!(status, 404, "a tenant it does not list");
}

/// A tenant's managed connections are its own: listed, shown and used in that tenant only,
/// and a connection id of one tenant is free in another.
#[tokio::test]
async fn managed_connections_belong_to_their_tenant() {
    let env = two_tenants().await;
    remediation_connector_sandbox::write_sample(env.dir.path().join("managed-acme.json")).unwrap();
    let created = json!({"id": "managed", "type": "sandbox", "settings": {"path": "managed-acme.json"},
                         "secrets": {"token": "acme-only"}});
    let (status, body) =
        env.call(Some("acme-admin"), Method::POST, "/v1/tenants/acme/connections", Some(created.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (_, listed) = env.call(Some("admin"), Method::GET, "/v1/connections", None).await;
    assert!(!listed.to_string().contains("\"managed\""), "not the default tenant's: {listed}");
    let (status, _) = env.call(Some("admin"), Method::GET, "/v1/connections/managed", None).await;
    assert_eq!(status, 404);
    let (status, _) = env.call(Some("admin"), Method::GET, "/v1/tenants/acme/connections/managed", None).await;
    assert_eq!(status, 404, "the default tenant's admin does not reach acme");
    // acme's engine uses it; the default tenant's does not know it.
    let (status, body) = env
        .call(Some("acme-requester"), Method::POST, "/v1/tenants/acme/actions", Some(revoke_in("managed", "admins")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) =
        env.call(Some("requester"), Method::POST, "/v1/actions", Some(revoke_in("managed", "admins"))).await;
    assert_eq!(status, 400);
    // The same id is free in the default tenant.
    let mut mine = created;
    mine["settings"]["path"] = json!("sandbox.json");
    let (status, body) = env.call(Some("admin"), Method::POST, "/v1/connections", Some(mine)).await;
    assert_eq!(status, 201, "{body}");
}
