//! The route table: every endpoint of the JSON API declared once, with its method, path,
//! least role, operation id, summary, request and response schemas, every status it answers
//! and its handler. The [`router`](crate::router), the [`openapi`](crate::openapi) document
//! and the authorisation tests are all derived from [`ROUTES`], so adding an endpoint is one
//! entry here.
//!
//! Statuses every route of a kind can answer are added by [`Route::answers`]: an
//! authenticated route also answers 401, 403 and 429; a route with a body or a query 400, one
//! with a body 413 and 415; every route 408 (the request outlasted the server's limit), 414
//! (the URI is longer than [`MAX_URI_BYTES`]) and 500.

use axum::routing::{MethodRouter, delete, get, patch, post};
use remediation_core::Role;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ErrorBody;
use crate::types as t;
use crate::{campaigns, connections as c, findings, handlers as h, incident as ir};

/// The longest request URI (path and query) the API reads; longer ones are answered 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Verb {
    /// The method in lower case, as OpenAPI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }

    /// The HTTP method.
    pub fn method(self) -> axum::http::Method {
        match self {
            Self::Get => axum::http::Method::GET,
            Self::Post => axum::http::Method::POST,
            Self::Patch => axum::http::Method::PATCH,
            Self::Delete => axum::http::Method::DELETE,
        }
    }
}

/// Writes the JSON Schema of one type into the generator's definitions and returns a
/// reference to it.
pub type SchemaOf = fn(&mut SchemaGenerator) -> Value;

/// The schema of `T` (a `$ref` when `T` is a named type).
pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

fn openmetrics(_: &mut SchemaGenerator) -> Value {
    json!({"type": "string"})
}

fn any_object(_: &mut SchemaGenerator) -> Value {
    json!({"type": "object"})
}

/// What the body of an answer is.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// The route's response schema ([`Route::response`]).
    Response,
    /// The error shape, [`ErrorBody`].
    Error,
    /// Another JSON schema.
    Json(SchemaOf),
}

/// One status a route answers, what it means and what its body is.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// What it means for this route.
    pub meaning: &'static str,
    /// Its body.
    pub body: Body,
}

const fn ok(status: u16, meaning: &'static str) -> Answer {
    Answer { status, meaning, body: Body::Response }
}

const fn err(status: u16, meaning: &'static str) -> Answer {
    Answer { status, meaning, body: Body::Error }
}

const fn other(status: u16, meaning: &'static str, schema: SchemaOf) -> Answer {
    Answer { status, meaning, body: Body::Json(schema) }
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum RequestBody {
    /// None is read.
    None,
    /// May be left out (an empty body).
    Optional(SchemaOf),
    /// Required.
    Required(SchemaOf),
}

/// One endpoint of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Its method.
    pub method: Verb,
    /// Its path, `{id}` for the path parameter.
    pub path: &'static str,
    /// The least role that may call it; `None` for an unauthenticated route.
    pub role: Option<Role>,
    /// The OpenAPI `operationId`.
    pub operation_id: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// Its request body.
    pub request: RequestBody,
    /// Its query string, as one object schema.
    pub query: Option<SchemaOf>,
    /// The schema of its success body.
    pub response: SchemaOf,
    /// The media type of its success body.
    pub media: &'static str,
    /// The statuses its handler answers, the success first (see [`Route::answers`] for all).
    pub own: &'static [Answer],
    handler: fn() -> MethodRouter<ApiState>,
}

const JSON: &str = "application/json";

impl Route {
    /// Whether the route takes many findings at once (`POST /v1/campaigns`, `POST
    /// /v1/findings`), whose bodies may be as large as `import_body_limit_bytes`.
    pub fn imports_findings(&self) -> bool {
        self.method == Verb::Post && matches!(self.path, "/v1/campaigns" | "/v1/findings")
    }

    /// The axum handler of the route.
    pub(crate) fn handler(&self) -> MethodRouter<ApiState> {
        (self.handler)()
    }

    /// The path parameter's schema, when the path has one.
    pub fn path_parameter(&self) -> Option<Value> {
        if !self.path.contains("{id}") {
            None
        } else if self.path.starts_with("/v1/actions/") {
            Some(json!({"type": "string", "format": "uuid"}))
        } else {
            Some(json!({"type": "string"}))
        }
    }

    /// Every status the route can answer, in ascending order: its own and those that follow
    /// from its kind (see the module documentation).
    pub fn answers(&self) -> Vec<Answer> {
        let mut all: Vec<Answer> = self.own.to_vec();
        let mut add = |a: Answer| {
            if !all.iter().any(|b| b.status == a.status) {
                all.push(a);
            }
        };
        let has_body = !matches!(self.request, RequestBody::None);
        if has_body || self.query.is_some() || self.path_parameter().is_some() {
            add(err(400, "invalid request: the body, query or path; `details.field` names the field"));
        }
        if self.role.is_some() {
            add(err(401, "no token, or an unknown, expired or revoked one"));
            add(err(403, "the role is not enough"));
            add(err(429, "too many requests from this principal; `Retry-After` says when to retry"));
        }
        if has_body {
            add(err(413, "the body is larger than the server accepts"));
            add(err(415, "the body is not JSON (`Content-Type: application/json`)"));
        }
        add(err(408, "the request outlasted the server's request timeout"));
        add(err(414, "the URI is longer than the server reads"));
        add(err(500, "internal error; the cause is in the server log"));
        all.sort_by_key(|a| a.status);
        all
    }

    /// The answer for `status`, if the route documents it.
    pub fn answer(&self, status: u16) -> Option<Answer> {
        self.answers().into_iter().find(|a| a.status == status)
    }

    /// The schema of `body`, written into `g`'s definitions.
    pub fn body_schema(&self, body: Body, g: &mut SchemaGenerator) -> Value {
        match body {
            Body::Response => (self.response)(g),
            Body::Error => schema::<ErrorBody>(g),
            Body::Json(s) => s(g),
        }
    }
}

const ACTION_404: Answer = err(404, "no such action");
const CAMPAIGN_404: Answer = err(404, "no such campaign");
const CONNECTION_404: Answer = err(404, "no such connection");
const CONNECTION_409: Answer = err(
    409,
    "refused: the id is taken, the connection changed since `revision`, or it is the configuration file's (read-only; `details.rule`)",
);
const ACTION_409: Answer =
    err(409, "not allowed in the action's current state (`details.current_state`), or refused by a safety rule");
const TARGET_404: Answer =
    err(404, "the provider has no such target (identity or resource); `details.field` is `target`");
const TARGET_422: Answer = err(
    422,
    "`invalid_target`: the provider cannot act on this target as given (a field it needs is missing, or the grant type is not one it has)",
);
const PROVIDER_502: Answer =
    err(502, "`provider_failure`: the provider failed; the action, when there is one, is in `details.action`");
const SUGGESTION_403: Answer =
    err(403, "the role is not enough, or remediation is disabled (`details.rule` is `enablement`)");
const CHANGE_404: Answer = err(404, "no such pending change");
const PLAYBOOK_404: Answer = err(404, "no such playbook, or no connection knows the person");
const RUN_404: Answer = err(404, "no such run");
const RUN_409: Answer = err(
    409,
    "refused: the run is not in a state that allows it, changed meanwhile, or its plan differs from `plan_hash` (`details.rule`)",
);
const RUN_403: Answer = err(403, "the role is not enough, or separation of duties (`details.rule`)");
const CHANGE_409: Answer = err(409, "no longer pending, or what it was based on changed (nothing applied)");
const PENDING_202: Answer = other(202, "waits for a second admin: the pending change", schema::<t::PendingReply>);

/// Every endpoint of the JSON API. The console (`/`, `/login`, `/logout`, `/ui/...`) is
/// HTML and has routes of its own.
pub const ROUTES: &[Route] = &[
    Route {
        method: Verb::Post,
        path: "/v1/actions",
        role: Some(Role::Requester),
        operation_id: "create_action",
        summary: "Suggest an action",
        request: RequestBody::Required(schema::<t::CreateAction>),
        query: None,
        response: schema::<t::SuggestionView>,
        media: JSON,
        own: &[
            ok(201, "the suggestion: the action, its plan and the gates' verdicts"),
            ok(202, "a gate dropped the action to manual: an outcome, not an error"),
            err(
                400,
                "invalid request (`details.field`), an unknown connector, a kind the connector cannot do, or `no_connector`: none named and no single healthy connector fits (`details.candidates`)",
            ),
            SUGGESTION_403,
            TARGET_404,
            err(409, "refused by a safety rule (`details.rule`)"),
            TARGET_422,
            PROVIDER_502,
        ],
        handler: || post(h::create_action),
    },
    Route {
        method: Verb::Get,
        path: "/v1/actions",
        role: Some(Role::Viewer),
        operation_id: "list_actions",
        summary: "List actions, oldest first, with filters and cursor pagination",
        request: RequestBody::None,
        query: Some(schema::<t::ActionQuery>),
        response: schema::<t::Page<remediation_core::Action>>,
        media: JSON,
        own: &[ok(200, "one page of actions")],
        handler: || get(h::list_actions),
    },
    Route {
        method: Verb::Get,
        path: "/v1/actions/{id}",
        role: Some(Role::Viewer),
        operation_id: "get_action",
        summary: "An action with its plan, snapshots and transitions",
        request: RequestBody::None,
        query: None,
        response: schema::<t::ActionView>,
        media: JSON,
        own: &[ok(200, "the action (`.action`) and everything recorded about it"), ACTION_404],
        handler: || get(h::get_action),
    },
    Route {
        method: Verb::Get,
        path: "/v1/actions/{id}/plan",
        role: Some(Role::Viewer),
        operation_id: "get_plan",
        summary: "An action's plan",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_core::Plan>,
        media: JSON,
        own: &[ok(200, "the plan"), err(404, "no such action, or it has no plan")],
        handler: || get(h::get_plan),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/approve",
        role: Some(Role::Approver),
        operation_id: "approve_action",
        summary: "Approve (never by the requester); on a `rollback_requested` action, approve the rollback (never by whoever requested it) and run it",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::ActionReply>,
        media: JSON,
        own: &[
            ok(200, "the action"),
            err(403, "the role is not enough, or separation of duties (`details.rule`)"),
            ACTION_404,
            ACTION_409,
            PROVIDER_502,
        ],
        handler: || post(h::approve),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/reject",
        role: Some(Role::Approver),
        operation_id: "reject_action",
        summary: "Reject",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::ActionReply>,
        media: JSON,
        own: &[ok(200, "the action"), ACTION_404, ACTION_409],
        handler: || post(h::reject),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/execute",
        role: Some(Role::Approver),
        operation_id: "execute_action",
        summary: "Execute; `dry_run` needs only the requester role",
        request: RequestBody::Optional(schema::<t::ExecuteBody>),
        query: None,
        response: schema::<t::OutcomeView>,
        media: JSON,
        own: &[
            ok(200, "completed, or the dry run's plan and verdicts"),
            ok(
                202,
                "held by a limit or the breaker, back to approval because the plan changed, or `requeued`: the provider throttled it with nothing written, so it is back in `approved` until `not_before` (limit slots released): an outcome, not an error",
            ),
            ACTION_404,
            ACTION_409,
            PROVIDER_502,
        ],
        handler: || post(h::execute),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/rollback",
        role: Some(Role::Approver),
        operation_id: "rollback_action",
        summary: "Roll back inside the window; on a `rollback_requested` action, approve it",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::OutcomeView>,
        media: JSON,
        own: &[
            ok(200, "rolled back"),
            ok(
                202,
                "the rollback waits for a different principal's approval (`rollback_requested`): an outcome, not an error",
            ),
            ACTION_404,
            err(
                409,
                "not allowed in the action's current state (`details.current_state`), past the window, or an irreversible change",
            ),
            PROVIDER_502,
        ],
        handler: || post(h::rollback),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/cancel",
        role: Some(Role::Requester),
        operation_id: "cancel_action",
        summary: "Cancel (the requester or an admin)",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::ActionReply>,
        media: JSON,
        own: &[ok(200, "the action"), err(403, "neither the action's requester nor an admin"), ACTION_404, ACTION_409],
        handler: || post(h::cancel),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/force-execute",
        role: Some(Role::Admin),
        operation_id: "force_execute_action",
        summary: "Execute a held action anyway, with a reason",
        request: RequestBody::Required(schema::<t::ReasonBody>),
        query: None,
        response: schema::<t::OutcomeView>,
        media: JSON,
        own: &[
            ok(200, "completed"),
            ok(
                202,
                "back to approval because the plan changed, or `requeued` (throttled, nothing written): an outcome, not an error",
            ),
            ACTION_404,
            ACTION_409,
            PROVIDER_502,
        ],
        handler: || post(h::force_execute),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/release",
        role: Some(Role::Admin),
        operation_id: "release_action",
        summary: "Release a held action back to approved",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::ActionReply>,
        media: JSON,
        own: &[ok(200, "the action"), ACTION_404, ACTION_409],
        handler: || post(h::release),
    },
    Route {
        method: Verb::Post,
        path: "/v1/actions/{id}/promote",
        role: Some(Role::Admin),
        operation_id: "promote_action",
        summary: "Turn advisory guidance into a request for approval",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::ActionReply>,
        media: JSON,
        own: &[ok(200, "the action"), ACTION_404, ACTION_409],
        handler: || post(h::promote),
    },
    Route {
        method: Verb::Post,
        path: "/v1/findings",
        role: Some(Role::Requester),
        operation_id: "intake_finding",
        summary: "Turn a finding, or each failing check of a scanner's document, into a suggestion, once per (control, target)",
        request: RequestBody::Required(schema::<t::FindingsBody>),
        query: Some(schema::<t::FindingsQuery>),
        response: schema::<t::SuggestionView>,
        media: JSON,
        own: &[
            other(
                200,
                "one finding: an action for the same control and target is open (`existing`), or the completed fix was read again (`fix_holds`, `did_not_hold`); a scanner's document: what became of each entry",
                schema::<t::FindingIntakeReply>,
            ),
            ok(201, "a new action (`created`, `redone`)"),
            ok(202, "a new action a gate dropped to manual: an outcome, not an error"),
            err(
                400,
                "invalid request (`details.field`; a document that is not recognised names `body` and says why), or `no_connector`: none named and no single healthy connector fits (`details.candidates`)",
            ),
            SUGGESTION_403,
            TARGET_404,
            err(409, "refused by a safety rule (`details.rule`)"),
            TARGET_422,
            PROVIDER_502,
        ],
        handler: || post(findings::intake),
    },
    Route {
        method: Verb::Post,
        path: "/v1/campaigns",
        role: Some(Role::Requester),
        operation_id: "create_campaign",
        summary: "Take many findings in as one named campaign (deduplicated as findings are) and answer where it stands",
        request: RequestBody::Required(schema::<campaigns::CampaignBody>),
        query: None,
        response: schema::<remediation_service::CampaignStatus>,
        media: JSON,
        own: &[
            ok(201, "the campaign, taken in: its outcomes, its actions by state, what waits"),
            err(
                400,
                "invalid request (`details.field`: a bad name, an unknown format, findings that are not recognised)",
            ),
            SUGGESTION_403,
            err(409, "a campaign of that name exists (resume it instead)"),
        ],
        handler: || post(campaigns::create),
    },
    Route {
        method: Verb::Get,
        path: "/v1/campaigns",
        role: Some(Role::Viewer),
        operation_id: "list_campaigns",
        summary: "Every campaign, newest first",
        request: RequestBody::None,
        query: None,
        response: schema::<campaigns::CampaignList>,
        media: JSON,
        own: &[ok(200, "the campaigns")],
        handler: || get(campaigns::list),
    },
    Route {
        method: Verb::Get,
        path: "/v1/campaigns/{id}",
        role: Some(Role::Viewer),
        operation_id: "get_campaign",
        summary: "Where a campaign stands: import progress, actions by state, throughput, ETA, waits",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::CampaignStatus>,
        media: JSON,
        own: &[ok(200, "the campaign"), CAMPAIGN_404],
        handler: || get(campaigns::show),
    },
    Route {
        method: Verb::Post,
        path: "/v1/campaigns/{id}/resume",
        role: Some(Role::Requester),
        operation_id: "resume_campaign",
        summary: "Take in what an interrupted campaign left, from where it stopped (nothing twice)",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::CampaignStatus>,
        media: JSON,
        own: &[
            ok(200, "the campaign, taken in to its end"),
            CAMPAIGN_404,
            err(409, "another process got further meanwhile"),
        ],
        handler: || post(campaigns::resume),
    },
    Route {
        method: Verb::Get,
        path: "/v1/audit",
        role: Some(Role::Viewer),
        operation_id: "list_audit",
        summary: "Audit records, by seq, with cursor pagination",
        request: RequestBody::None,
        query: Some(schema::<t::AuditQuery>),
        response: schema::<t::AuditPage>,
        media: JSON,
        own: &[ok(200, "one page of audit records")],
        handler: || get(h::audit),
    },
    Route {
        method: Verb::Get,
        path: "/v1/audit/verify",
        role: Some(Role::Viewer),
        operation_id: "verify_audit",
        summary: "Verify the audit chain and its checkpoint",
        request: RequestBody::None,
        query: None,
        response: schema::<t::AuditVerifyView>,
        media: JSON,
        own: &[ok(200, "the chain's report")],
        handler: || get(h::audit_verify),
    },
    Route {
        method: Verb::Get,
        path: "/v1/audit/tree-head",
        role: Some(Role::Viewer),
        operation_id: "get_audit_tree_head",
        summary: "The latest signed tree head of the verifiable audit log (size, Merkle root, Ed25519 signature)",
        request: RequestBody::None,
        query: None,
        response: schema::<t::TreeHeadView>,
        media: JSON,
        own: &[
            ok(200, "the latest signed tree head"),
            err(404, "no tree head is signed yet (no signing key configured)"),
        ],
        handler: || get(h::audit_tree_head),
    },
    Route {
        method: Verb::Get,
        path: "/v1/audit/keys",
        role: Some(Role::Viewer),
        operation_id: "list_audit_keys",
        summary: "Every public key that signed a tree head, current and retired",
        request: RequestBody::None,
        query: None,
        response: schema::<t::PublicKeysView>,
        media: JSON,
        own: &[ok(200, "the published key set")],
        handler: || get(h::audit_keys),
    },
    Route {
        method: Verb::Get,
        path: "/v1/audit/proof/inclusion",
        role: Some(Role::Viewer),
        operation_id: "prove_audit_inclusion",
        summary: "Inclusion proofs of an action's audit records (or of one seq) in a tree of the log",
        request: RequestBody::None,
        query: Some(schema::<t::InclusionQuery>),
        response: schema::<t::InclusionView>,
        media: JSON,
        own: &[
            ok(200, "each record with its proof, and the signed head of that size when the log holds one"),
            err(
                400,
                "invalid query: neither or both of `action_id` and `seq`, or `tree_size` beyond the log (`details.field`)",
            ),
            err(404, "no such record in the tree, or no tree head is signed yet"),
        ],
        handler: || get(h::audit_inclusion),
    },
    Route {
        method: Verb::Get,
        path: "/v1/audit/proof/consistency",
        role: Some(Role::Viewer),
        operation_id: "prove_audit_consistency",
        summary: "The proof that the log at a signed tree head extends the log of `old_size` records",
        request: RequestBody::None,
        query: Some(schema::<t::ConsistencyQuery>),
        response: schema::<t::ConsistencyView>,
        media: JSON,
        own: &[
            ok(200, "both signed heads the log holds and the consistency proof"),
            err(400, "invalid query (`details.field`)"),
            err(404, "no tree head of `new_size` records, or none signed yet"),
            err(409, "the log's head is smaller than `old_size`: records were cut off (`details.rule` = `audit_log`)"),
        ],
        handler: || get(h::audit_consistency),
    },
    Route {
        method: Verb::Get,
        path: "/v1/reports/compliance",
        role: Some(Role::Viewer),
        operation_id: "get_compliance_report",
        summary: "The compliance report of the period [from, to) from the audit log: JSON (this schema), or `format=csv` (text/csv) or `format=html` (text/html)",
        request: RequestBody::None,
        query: Some(schema::<t::ComplianceQuery>),
        response: schema::<t::ComplianceReport>,
        media: JSON,
        own: &[
            ok(
                200,
                "the report; with `format=csv` one CSV file (text/csv), with `format=html` one HTML page (text/html)",
            ),
            err(400, "invalid query: `from` or `to` is not an instant, or the period is empty (`details.field`)"),
        ],
        handler: || get(h::compliance_report),
    },
    Route {
        method: Verb::Get,
        path: "/v1/settings",
        role: Some(Role::Admin),
        operation_id: "get_settings",
        summary: "Policy settings in force and where they come from",
        request: RequestBody::None,
        query: None,
        response: schema::<t::SettingsView>,
        media: JSON,
        own: &[ok(200, "the settings")],
        handler: || get(h::get_settings),
    },
    Route {
        method: Verb::Patch,
        path: "/v1/settings",
        role: Some(Role::Admin),
        operation_id: "patch_settings",
        summary: "Change policy settings with a JSON merge patch (audited)",
        request: RequestBody::Required(schema::<t::SettingsPatch>),
        query: None,
        response: schema::<t::SettingsView>,
        media: JSON,
        own: &[
            ok(200, "applied: the settings in force"),
            PENDING_202,
            err(409, "the settings changed meanwhile, or a change is already waiting"),
        ],
        handler: || patch(h::patch_settings),
    },
    Route {
        method: Verb::Get,
        path: "/v1/controls",
        role: Some(Role::Viewer),
        operation_id: "list_controls",
        summary: "Every configured control: settings, scope, mode and track record (has it earned auto, and why not)",
        request: RequestBody::None,
        query: None,
        response: schema::<t::ControlsView>,
        media: JSON,
        own: &[ok(200, "the controls, by id")],
        handler: || get(h::controls),
    },
    Route {
        method: Verb::Get,
        path: "/v1/controls/{id}",
        role: Some(Role::Viewer),
        operation_id: "get_control",
        summary: "One configured control: settings, scope, mode and track record",
        request: RequestBody::None,
        query: None,
        response: schema::<t::ControlView>,
        media: JSON,
        own: &[ok(200, "the control"), err(404, "no such control is configured")],
        handler: || get(h::control),
    },
    Route {
        method: Verb::Get,
        path: "/v1/reports/metrics",
        role: Some(Role::Viewer),
        operation_id: "report_metrics",
        summary: "Remediation metrics of a period per control, kind and connector, counted from the audit log",
        request: RequestBody::None,
        query: Some(schema::<t::MetricsReportQuery>),
        response: schema::<t::MetricsReportView>,
        media: JSON,
        own: &[ok(200, "outcomes, rates and time to remediation per group")],
        handler: || get(h::report_metrics),
    },
    Route {
        method: Verb::Get,
        path: "/v1/limits",
        role: Some(Role::Viewer),
        operation_id: "get_limits",
        summary: "Blast-radius window usage and the breaker",
        request: RequestBody::None,
        query: None,
        response: schema::<t::LimitsView>,
        media: JSON,
        own: &[ok(200, "usage and limits")],
        handler: || get(h::limits),
    },
    Route {
        method: Verb::Get,
        path: "/v1/events",
        role: Some(Role::Viewer),
        operation_id: "get_events_status",
        summary: "Each event and audit sink's backlog, oldest undelivered record and parked records",
        request: RequestBody::None,
        query: None,
        response: schema::<t::EventsStatus>,
        media: JSON,
        own: &[ok(200, "every sink's standing")],
        handler: || get(h::events_status),
    },
    Route {
        method: Verb::Post,
        path: "/v1/events/replay",
        role: Some(Role::Admin),
        operation_id: "replay_parked_events",
        summary: "Deliver records a sink parked again, once the receiver is fixed",
        request: RequestBody::Required(schema::<t::ReplayBody>),
        query: None,
        response: schema::<t::ReplayView>,
        media: JSON,
        own: &[
            ok(200, "how many parked records will be delivered again"),
            err(404, "the sink has no such parked record"),
        ],
        handler: || post(h::replay_events),
    },
    Route {
        method: Verb::Post,
        path: "/v1/breaker/reset",
        role: Some(Role::Admin),
        operation_id: "reset_breaker",
        summary: "Reset the circuit breaker",
        request: RequestBody::Required(schema::<t::ReasonBody>),
        query: None,
        response: schema::<t::LimitsView>,
        media: JSON,
        own: &[ok(200, "usage and limits after the reset")],
        handler: || post(h::breaker_reset),
    },
    Route {
        method: Verb::Post,
        path: "/v1/kill-switch",
        role: Some(Role::Admin),
        operation_id: "set_kill_switch",
        summary: "Turn the kill switch on (cancels waiting actions) or off",
        request: RequestBody::Required(schema::<t::KillSwitchBody>),
        query: None,
        response: schema::<t::KillSwitchView>,
        media: JSON,
        own: &[
            ok(200, "applied: the switch and the actions it cancelled"),
            other(202, "turning it off waits for a second admin: the pending change", schema::<t::PendingReply>),
            err(409, "a change of the switch is already waiting"),
        ],
        handler: || post(h::kill_switch),
    },
    Route {
        method: Verb::Get,
        path: "/v1/kill-switch",
        role: Some(Role::Viewer),
        operation_id: "get_kill_switch",
        summary: "Whether the kill switch is on",
        request: RequestBody::None,
        query: None,
        response: schema::<t::KillSwitchView>,
        media: JSON,
        own: &[ok(200, "the switch")],
        handler: || get(h::kill_switch_status),
    },
    Route {
        method: Verb::Get,
        path: "/v1/tenants",
        role: Some(Role::Admin),
        operation_id: "list_tenants",
        summary: "Every tenant (an admin of the default tenant); each tenant's routes are under `/v1/tenants/{tenant}/`",
        request: RequestBody::None,
        query: None,
        response: schema::<Vec<remediation_core::Tenant>>,
        media: JSON,
        own: &[
            ok(200, "the tenants"),
            err(400, "asked in a tenant other than the default one"),
            err(403, "not an admin of the default tenant"),
        ],
        handler: || get(h::tenants),
    },
    Route {
        method: Verb::Post,
        path: "/v1/tenants",
        role: Some(Role::Admin),
        operation_id: "create_tenant",
        summary: "Create a tenant (an admin of the default tenant)",
        request: RequestBody::Required(schema::<t::CreateTenantBody>),
        query: None,
        response: schema::<remediation_core::Tenant>,
        media: JSON,
        own: &[
            ok(201, "created"),
            err(400, "an invalid name, or asked in a tenant other than the default one"),
            err(403, "not an admin of the default tenant"),
            err(409, "a tenant of that name exists"),
        ],
        handler: || post(h::create_tenant),
    },
    Route {
        method: Verb::Get,
        path: "/v1/connectors",
        role: Some(Role::Viewer),
        operation_id: "list_connectors",
        summary: "Connectors with capabilities and health (with `check=true`, admins only, live permission checks)",
        request: RequestBody::None,
        query: Some(schema::<t::ConnectorQuery>),
        response: schema::<Vec<t::ConnectorView>>,
        media: JSON,
        own: &[ok(200, "the connectors"), err(403, "the role is not enough (`check=true` needs admin)")],
        handler: || get(h::connectors),
    },
    Route {
        method: Verb::Get,
        path: "/v1/connections",
        role: Some(Role::Viewer),
        operation_id: "list_connections",
        summary: "Every connection: the configuration file's (read-only) and the managed ones, secrets never shown",
        request: RequestBody::None,
        query: None,
        response: schema::<c::ConnectionList>,
        media: JSON,
        own: &[ok(200, "the connections")],
        handler: || get(c::list),
    },
    Route {
        method: Verb::Post,
        path: "/v1/connections",
        role: Some(Role::Admin),
        operation_id: "create_connection",
        summary: "Create a managed connection; its secrets are write-only, sealed as they arrive",
        request: RequestBody::Required(schema::<c::NewConnectionBody>),
        query: None,
        response: schema::<remediation_service::connections::ConnectionView>,
        media: JSON,
        own: &[
            ok(201, "the connection, as stored (secret names only)"),
            err(400, "invalid request (`details.field`: the id, the settings, a secret's name)"),
            CONNECTION_409,
        ],
        handler: || post(c::create),
    },
    Route {
        method: Verb::Get,
        path: "/v1/connections/{id}",
        role: Some(Role::Viewer),
        operation_id: "get_connection",
        summary: "One connection: settings without secrets, secret names, scope, last check",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::connections::ConnectionView>,
        media: JSON,
        own: &[ok(200, "the connection"), CONNECTION_404],
        handler: || get(c::show),
    },
    Route {
        method: Verb::Patch,
        path: "/v1/connections/{id}",
        role: Some(Role::Admin),
        operation_id: "update_connection",
        summary: "Change a managed connection's settings, secrets (write-only, replacing all) or scope",
        request: RequestBody::Required(schema::<c::ConnectionPatch>),
        query: None,
        response: schema::<remediation_service::connections::ConnectionView>,
        media: JSON,
        own: &[ok(200, "the connection, changed"), CONNECTION_404, CONNECTION_409],
        handler: || patch(c::update),
    },
    Route {
        method: Verb::Delete,
        path: "/v1/connections/{id}",
        role: Some(Role::Admin),
        operation_id: "delete_connection",
        summary: "Remove a managed connection and its sealed secrets",
        request: RequestBody::None,
        query: None,
        response: schema::<c::ConnectionRemoved>,
        media: JSON,
        own: &[ok(200, "removed"), CONNECTION_404, CONNECTION_409],
        handler: || delete(c::remove),
    },
    Route {
        method: Verb::Post,
        path: "/v1/connections/{id}/test",
        role: Some(Role::Admin),
        operation_id: "test_connection",
        summary: "Run a connection's health and permission checks now and record them",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::connections::ConnectionTest>,
        media: JSON,
        own: &[ok(200, "what the checks found"), CONNECTION_404],
        handler: || post(c::test),
    },
    Route {
        method: Verb::Post,
        path: "/v1/connections/{id}/disable",
        role: Some(Role::Admin),
        operation_id: "disable_connection",
        summary: "Stop using a managed connection: not built, never selected",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::connections::ConnectionView>,
        media: JSON,
        own: &[ok(200, "the connection, disabled"), CONNECTION_404, CONNECTION_409],
        handler: || post(c::disable),
    },
    Route {
        method: Verb::Post,
        path: "/v1/connections/{id}/enable",
        role: Some(Role::Admin),
        operation_id: "enable_connection",
        summary: "Use a disabled managed connection again",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::connections::ConnectionView>,
        media: JSON,
        own: &[ok(200, "the connection, enabled"), CONNECTION_404, CONNECTION_409],
        handler: || post(c::enable),
    },
    Route {
        method: Verb::Get,
        path: "/v1/identities/{identity}",
        role: Some(Role::Viewer),
        operation_id: "get_identity",
        summary: "A person's accounts in every connection (by verified email or login, or an explicit link), with each connector's view",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::incident::IdentityView>,
        media: JSON,
        own: &[
            ok(200, "the accounts found, the connections that found none, and those that could not look"),
            err(400, "not an email or login (`details.field = \"identity\"`)"),
        ],
        handler: || get(ir::identity),
    },
    Route {
        method: Verb::Post,
        path: "/v1/identities/{identity}/links",
        role: Some(Role::Admin),
        operation_id: "link_identity",
        summary: "Link a person to an account of one connection explicitly (or remove the link); the account must exist",
        request: RequestBody::Required(schema::<ir::LinkBody>),
        query: None,
        response: schema::<remediation_service::incident::Links>,
        media: JSON,
        own: &[
            ok(200, "the person's links"),
            err(404, "no such connection or account"),
            err(502, "the provider failed"),
        ],
        handler: || post(ir::link),
    },
    Route {
        method: Verb::Post,
        path: "/v1/identities/{identity}/respond",
        role: Some(Role::Responder),
        operation_id: "respond_to_identity",
        summary: "Cut a person off everywhere now: each requested action on every connection that can; emergency kinds run at once (responder or admin)",
        request: RequestBody::Required(schema::<remediation_service::incident::RespondRequest>),
        query: None,
        response: schema::<remediation_service::incident::RespondResult>,
        media: JSON,
        own: &[
            ok(200, "every applicable step completed"),
            ok(207, "some steps did not complete (held, refused, waiting for approval, failed): see each step"),
            ok(502, "every applicable step failed at the provider"),
            err(
                403,
                "remediation is disabled or a kill switch is on, or the role is not responder or admin (`details.rule`)",
            ),
            err(400, "an unknown action, or no connection can do any requested action"),
            err(404, "no connection knows the person"),
        ],
        handler: || post(ir::respond),
    },
    Route {
        method: Verb::Get,
        path: "/v1/playbooks",
        role: Some(Role::Viewer),
        operation_id: "list_playbooks",
        summary: "Every playbook in force (built in, files, saved), with its source",
        request: RequestBody::None,
        query: None,
        response: schema::<ir::PlaybookList>,
        media: JSON,
        own: &[ok(200, "the playbooks")],
        handler: || get(ir::list_playbooks),
    },
    Route {
        method: Verb::Post,
        path: "/v1/playbooks",
        role: Some(Role::Admin),
        operation_id: "save_playbook",
        summary: "Save a playbook (a higher version than the one in force)",
        request: RequestBody::Required(schema::<remediation_service::playbooks::Playbook>),
        query: None,
        response: schema::<remediation_service::playbooks::PlaybookEntry>,
        media: JSON,
        own: &[ok(201, "the playbook, saved"), err(409, "changed meanwhile; read it again")],
        handler: || post(ir::save_playbook),
    },
    Route {
        method: Verb::Get,
        path: "/v1/playbooks/{name}",
        role: Some(Role::Viewer),
        operation_id: "get_playbook",
        summary: "One playbook and its source",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::playbooks::PlaybookEntry>,
        media: JSON,
        own: &[ok(200, "the playbook"), PLAYBOOK_404],
        handler: || get(ir::show_playbook),
    },
    Route {
        method: Verb::Post,
        path: "/v1/playbooks/{name}/plan",
        role: Some(Role::Requester),
        operation_id: "plan_playbook",
        summary: "The whole plan of a playbook for a person: every step's change and one plan hash; writes nothing",
        request: RequestBody::Required(schema::<ir::RunBody>),
        query: None,
        response: schema::<remediation_service::playbooks::RunPlan>,
        media: JSON,
        own: &[
            ok(200, "the plan"),
            PLAYBOOK_404,
            err(409, "a gate refused a step (`details.rule`)"),
            err(502, "a provider failed"),
        ],
        handler: || post(ir::plan),
    },
    Route {
        method: Verb::Post,
        path: "/v1/playbooks/{name}/runs",
        role: Some(Role::Requester),
        operation_id: "start_playbook_run",
        summary: "Ask for a run of a playbook for a person: planned now, waiting for one approval of the whole plan",
        request: RequestBody::Required(schema::<ir::RunBody>),
        query: None,
        response: schema::<remediation_service::playbooks::Run>,
        media: JSON,
        own: &[ok(201, "the run, waiting for approval"), PLAYBOOK_404, RUN_409, err(502, "a provider failed")],
        handler: || post(ir::start_run),
    },
    Route {
        method: Verb::Get,
        path: "/v1/runs",
        role: Some(Role::Viewer),
        operation_id: "list_runs",
        summary: "Every playbook run, newest first",
        request: RequestBody::None,
        query: None,
        response: schema::<ir::RunList>,
        media: JSON,
        own: &[ok(200, "the runs")],
        handler: || get(ir::list_runs),
    },
    Route {
        method: Verb::Get,
        path: "/v1/runs/{id}",
        role: Some(Role::Viewer),
        operation_id: "get_run",
        summary: "One run: its steps, their actions and outcomes, and what happened",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::playbooks::Run>,
        media: JSON,
        own: &[ok(200, "the run"), RUN_404],
        handler: || get(ir::show_run),
    },
    Route {
        method: Verb::Post,
        path: "/v1/runs/{id}/approve",
        role: Some(Role::Approver),
        operation_id: "approve_run",
        summary: "Approve a run's whole plan (not its requester); at quorum it runs at once",
        request: RequestBody::Optional(schema::<ir::RunApprovalBody>),
        query: None,
        response: schema::<remediation_service::playbooks::Run>,
        media: JSON,
        own: &[ok(200, "the run, as it stopped"), RUN_403, RUN_404, RUN_409],
        handler: || post(ir::approve_run),
    },
    Route {
        method: Verb::Post,
        path: "/v1/runs/{id}/reject",
        role: Some(Role::Approver),
        operation_id: "reject_run",
        summary: "Reject a run waiting for approval",
        request: RequestBody::Optional(schema::<ir::RunApprovalBody>),
        query: None,
        response: schema::<remediation_service::playbooks::Run>,
        media: JSON,
        own: &[ok(200, "the run, rejected"), RUN_404, RUN_409],
        handler: || post(ir::reject_run),
    },
    Route {
        method: Verb::Post,
        path: "/v1/runs/{id}/resume",
        role: Some(Role::Approver),
        operation_id: "resume_run",
        summary: "Continue a paused run whose held step was released or forced, or one a stopped process left running",
        request: RequestBody::None,
        query: None,
        response: schema::<remediation_service::playbooks::Run>,
        media: JSON,
        own: &[ok(200, "the run, as it stopped"), RUN_404, RUN_409],
        handler: || post(ir::resume_run),
    },
    Route {
        method: Verb::Post,
        path: "/v1/runs/{id}/rollback",
        role: Some(Role::Approver),
        operation_id: "rollback_run",
        summary: "Roll back a completed run: asked by one principal, approved and carried out by another, reversible steps in reverse order",
        request: RequestBody::Required(schema::<ir::RunRollbackBody>),
        query: None,
        response: schema::<remediation_service::playbooks::Run>,
        media: JSON,
        own: &[ok(200, "the run: rollback requested, or rolled back"), RUN_403, RUN_404, RUN_409],
        handler: || post(ir::rollback_run),
    },
    Route {
        method: Verb::Get,
        path: "/v1/pending-changes",
        role: Some(Role::Viewer),
        operation_id: "list_pending_changes",
        summary: "Changes waiting for a second admin (all of them with `all=true`)",
        request: RequestBody::None,
        query: Some(schema::<t::PendingQuery>),
        response: schema::<Vec<remediation_core::PendingChange>>,
        media: JSON,
        own: &[ok(200, "the changes")],
        handler: || get(h::pending_changes),
    },
    Route {
        method: Verb::Post,
        path: "/v1/pending-changes/{id}/confirm",
        role: Some(Role::Admin),
        operation_id: "confirm_pending_change",
        summary: "Confirm and apply a pending change (an admin other than its proposer, before it expires)",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::PendingReply>,
        media: JSON,
        own: &[
            ok(200, "the change, applied"),
            err(403, "the role is not enough, or the proposer confirming its own change (`details.rule`)"),
            CHANGE_404,
            CHANGE_409,
        ],
        handler: || post(h::confirm_change),
    },
    Route {
        method: Verb::Post,
        path: "/v1/pending-changes/{id}/cancel",
        role: Some(Role::Admin),
        operation_id: "cancel_pending_change",
        summary: "Withdraw a pending change",
        request: RequestBody::Optional(schema::<t::NoteBody>),
        query: None,
        response: schema::<t::PendingReply>,
        media: JSON,
        own: &[ok(200, "the change, withdrawn"), CHANGE_404, CHANGE_409],
        handler: || post(h::cancel_change),
    },
    Route {
        method: Verb::Get,
        path: "/healthz",
        role: None,
        operation_id: "healthz",
        summary: "Liveness",
        request: RequestBody::None,
        query: None,
        response: schema::<t::HealthView>,
        media: JSON,
        own: &[ok(200, "alive")],
        handler: || get(h::healthz),
    },
    Route {
        method: Verb::Get,
        path: "/readyz",
        role: None,
        operation_id: "readyz",
        summary: "Readiness",
        request: RequestBody::None,
        query: None,
        response: schema::<t::HealthView>,
        media: JSON,
        own: &[ok(200, "ready"), ok(503, "shutting down, or the store is unavailable (`status` says which)")],
        handler: || get(h::readyz),
    },
    Route {
        method: Verb::Get,
        path: "/metrics",
        role: Some(Role::Viewer),
        operation_id: "metrics",
        summary: "Prometheus metrics (OpenMetrics text)",
        request: RequestBody::None,
        query: None,
        response: openmetrics,
        media: "application/openmetrics-text",
        own: &[ok(200, "the metrics")],
        handler: || get(h::metrics),
    },
    Route {
        method: Verb::Get,
        path: "/openapi.json",
        role: None,
        operation_id: "openapi",
        summary: "This document",
        request: RequestBody::None,
        query: None,
        response: any_object,
        media: JSON,
        own: &[ok(200, "the OpenAPI document")],
        handler: || get(h::openapi_json),
    },
];

/// The route whose method and path template match `method` and `path` (a concrete path, no
/// query), if any.
pub fn find(method: &axum::http::Method, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.method.method() == *method && template_matches(r.path, path))
}

/// True when `path` is an instance of `template` (`{...}` matches one non-empty segment).
pub fn template_matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if ts.starts_with('{') && ts.ends_with('}') && !ps.is_empty() => {}
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_declared_once_with_a_unique_operation_id() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "{} {} declared twice", a.method.as_str(), a.path);
                assert_ne!(a.operation_id, b.operation_id);
            }
        }
    }

    #[test]
    fn every_route_documents_its_success_first_and_its_common_errors() {
        for r in ROUTES {
            let first = r.own.first().map(|a| a.status);
            assert!(first.is_some_and(|s| (200..300).contains(&s)), "{} {}", r.method.as_str(), r.path);
            let statuses: Vec<u16> = r.answers().iter().map(|a| a.status).collect();
            for s in [408, 414, 500] {
                assert!(statuses.contains(&s), "{} {} lacks {s}", r.method.as_str(), r.path);
            }
            if r.role.is_some() {
                assert!(statuses.contains(&401) && statuses.contains(&403) && statuses.contains(&429));
            }
        }
    }

    #[test]
    fn templates_match_one_segment_per_parameter() {
        assert!(template_matches("/v1/actions/{id}", "/v1/actions/abc"));
        assert!(!template_matches("/v1/actions/{id}", "/v1/actions/"));
        assert!(!template_matches("/v1/actions/{id}", "/v1/actions/abc/plan"));
        assert!(template_matches("/v1/actions", "/v1/actions"));
    }
}
