//! The lifecycle checked against the design contract's table, written out here independently
//! of `lifecycle.rs`: every (state, event, role) triple, a property test against a reference
//! model, and the first state of a new action.

use proptest::prelude::*;
use remediation_core::{Event, Mode, Role, State, TransitionError, initial_state, transition};

const ROLES: [Role; 5] = [Role::Viewer, Role::Requester, Role::Approver, Role::Admin, Role::System];

// Who may cause each event, as `lifecycle.rs` implements it: roles are ordered
// viewer < requester < approver < admin; `system` only holds what is marked system.
/// Cancel: a person from requester up, or the system (a follow-up whose action was rolled back).
const CANCELLERS: &[Role] = &[Role::Requester, Role::Approver, Role::Admin, Role::System];
const APPROVER_UP: &[Role] = &[Role::Approver, Role::Admin];
const OPERATOR: &[Role] = &[Role::Approver, Role::Admin, Role::System];
const ADMIN: &[Role] = &[Role::Admin];
const SYSTEM: &[Role] = &[Role::System];

/// The design table, one row per legal (from, event): the roles allowed and the new state.
fn design_table() -> Vec<(State, Event, &'static [Role], State)> {
    use Event as E;
    use State as S;
    vec![
        (S::Suggested, E::Promote, ADMIN, S::PendingApproval),
        (S::Suggested, E::Cancel, CANCELLERS, S::Cancelled),
        (S::PendingApproval, E::Cancel, CANCELLERS, S::Cancelled),
        (S::Approved, E::Cancel, CANCELLERS, S::Cancelled),
        (S::Held, E::Cancel, CANCELLERS, S::Cancelled),
        (S::Suggested, E::KillSwitch, ADMIN, S::Cancelled),
        (S::PendingApproval, E::KillSwitch, ADMIN, S::Cancelled),
        (S::Approved, E::KillSwitch, ADMIN, S::Cancelled),
        (S::Held, E::KillSwitch, ADMIN, S::Cancelled),
        (S::PendingApproval, E::Approve { quorum_reached: true }, APPROVER_UP, S::Approved),
        // An approval short of quorum is recorded and leaves the action waiting.
        (S::PendingApproval, E::Approve { quorum_reached: false }, APPROVER_UP, S::PendingApproval),
        (S::PendingApproval, E::Reject, APPROVER_UP, S::Rejected),
        (S::PendingApproval, E::Expire, SYSTEM, S::Expired),
        (S::Approved, E::PlanChanged, SYSTEM, S::PendingApproval),
        (S::Approved, E::Hold, SYSTEM, S::Held),
        (S::Approved, E::BeginExecution, OPERATOR, S::Executing),
        (S::Held, E::ForceExecute, ADMIN, S::Executing),
        (S::Held, E::Release, ADMIN, S::Approved),
        (S::Executing, E::ExecutionSucceeded, SYSTEM, S::Completed),
        (S::Executing, E::ExecutionFailed, SYSTEM, S::Failed),
        (S::Executing, E::Requeue, SYSTEM, S::Approved),
        (S::Completed, E::Rollback, OPERATOR, S::RollingBack),
        // A person's rollback that needs approval waits; only a person requests one.
        (S::Completed, E::RequestRollback, APPROVER_UP, S::RollbackRequested),
        // One approval by another principal starts the rollback at once.
        (S::RollbackRequested, E::Approve { quorum_reached: true }, APPROVER_UP, S::RollingBack),
        (S::RollbackRequested, E::Reject, APPROVER_UP, S::Completed),
        // The window closed before anyone approved: the change stays.
        (S::RollbackRequested, E::Expire, SYSTEM, S::Completed),
        (S::Failed, E::Rollback, OPERATOR, S::RollingBack),
        (S::RollingBack, E::RollbackSucceeded, SYSTEM, S::RolledBack),
        (S::RollingBack, E::RollbackFailed, SYSTEM, S::Failed),
    ]
}

#[track_caller]
fn check(state: State, event: Event, role: Role, expected: Result<State, TransitionError>) {
    let got = transition(state, event, role);
    assert_eq!(got, expected, "transition({state}, {event:?}, {role})");
    if let Err(e) = got {
        let text = e.to_string();
        assert!(text.contains(state.as_str()), "error {text:?} does not name the current state {state}");
    }
}

#[test]
fn every_state_event_and_role_follows_the_design_table() {
    let table = design_table();
    for (i, (s, e, _, _)) in table.iter().enumerate() {
        assert!(!table[..i].iter().any(|(s2, e2, _, _)| s2 == s && e2 == e), "row ({s}, {e:?}) appears twice");
    }
    let mut legal = 0;
    for state in State::ALL {
        for event in Event::ALL {
            let row = table.iter().find(|(s, e, _, _)| *s == state && *e == event);
            for role in ROLES {
                let expected = match row {
                    Some((_, _, allowed, to)) if allowed.contains(&role) => Ok(*to),
                    Some(_) => Err(TransitionError::RoleNotAllowed { state, event, role }),
                    None => Err(TransitionError::Illegal { state, event }),
                };
                legal += usize::from(expected.is_ok());
                check(state, event, role, expected);
            }
        }
    }
    let expected_legal: usize = table.iter().map(|(_, _, roles, _)| roles.len()).sum();
    assert_eq!(legal, expected_legal);
}

#[test]
fn terminal_states_are_exactly_those_without_a_way_out() {
    let table = design_table();
    for state in State::ALL {
        let has_exit = table.iter().any(|(s, _, _, _)| *s == state);
        assert_eq!(state.is_terminal(), !has_exit, "{state}");
    }
}

#[test]
fn state_names_match_serde_and_parse_back() {
    for state in State::ALL {
        assert_eq!(serde_json::to_value(state).expect("serialise"), serde_json::json!(state.as_str()));
        assert_eq!(state.as_str().parse::<State>(), Ok(state));
    }
    assert!("running".parse::<State>().is_err());
}

#[track_caller]
fn check_initial(mode: Mode, dry_run: bool, auto_approved: bool, expected: State) {
    assert_eq!(
        initial_state(mode, dry_run, auto_approved),
        expected,
        "{mode}, dry_run {dry_run}, auto {auto_approved}"
    );
}

#[test]
fn a_new_action_starts_where_the_design_says() {
    use Mode::*;
    for auto in [false, true] {
        for mode in [Advisory, Manual, Auto] {
            check_initial(mode, true, auto, State::DryRun);
        }
        check_initial(Advisory, false, auto, State::Suggested);
        check_initial(Manual, false, auto, State::PendingApproval);
    }
    check_initial(Auto, false, true, State::Approved);
    check_initial(Auto, false, false, State::PendingApproval);
}

/// Why the reference model refuses a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Illegal,
    Role,
}

/// A second, independent reading of the design table.
fn model(state: State, event: Event, role: Role) -> Result<State, Refusal> {
    use Event as E;
    use State as S;
    let next = match event {
        E::Promote if state == S::Suggested => S::PendingApproval,
        E::Cancel | E::KillSwitch if matches!(state, S::Suggested | S::PendingApproval | S::Approved | S::Held) => {
            S::Cancelled
        }
        E::Approve { quorum_reached } if state == S::PendingApproval => {
            if quorum_reached {
                S::Approved
            } else {
                S::PendingApproval
            }
        }
        E::Approve { quorum_reached: true } if state == S::RollbackRequested => S::RollingBack,
        E::Reject if state == S::PendingApproval => S::Rejected,
        E::Expire if state == S::PendingApproval => S::Expired,
        E::Reject | E::Expire if state == S::RollbackRequested => S::Completed,
        E::RequestRollback if state == S::Completed => S::RollbackRequested,
        E::PlanChanged if state == S::Approved => S::PendingApproval,
        E::Hold if state == S::Approved => S::Held,
        E::BeginExecution if state == S::Approved => S::Executing,
        E::ForceExecute if state == S::Held => S::Executing,
        E::Release if state == S::Held => S::Approved,
        E::ExecutionSucceeded if state == S::Executing => S::Completed,
        E::ExecutionFailed if state == S::Executing => S::Failed,
        E::Requeue if state == S::Executing => S::Approved,
        E::Rollback if matches!(state, S::Completed | S::Failed) => S::RollingBack,
        E::RollbackSucceeded if state == S::RollingBack => S::RolledBack,
        E::RollbackFailed if state == S::RollingBack => S::Failed,
        _ => return Err(Refusal::Illegal),
    };
    let human = |least: Role| role != Role::System && role >= least;
    let allowed = match event {
        E::Cancel => role == Role::System || human(Role::Requester),
        E::Approve { .. } | E::Reject | E::RequestRollback => human(Role::Approver),
        E::Promote | E::KillSwitch | E::ForceExecute | E::Release => human(Role::Admin),
        E::BeginExecution | E::Rollback => role == Role::System || human(Role::Approver),
        E::Expire
        | E::PlanChanged
        | E::Hold
        | E::ExecutionSucceeded
        | E::ExecutionFailed
        | E::Requeue
        | E::RollbackSucceeded
        | E::RollbackFailed => role == Role::System,
    };
    if allowed { Ok(next) } else { Err(Refusal::Role) }
}

/// The legal (event, role) moves from `state`, per the model.
fn legal_moves(state: State) -> Vec<(Event, Role)> {
    Event::ALL
        .into_iter()
        .flat_map(|e| ROLES.into_iter().map(move |r| (e, r)))
        .filter(|(e, r)| model(state, *e, *r).is_ok())
        .collect()
}

/// One step of a random walk: any (event, role), or the n-th legal move (so walks go deep).
#[derive(Debug, Clone)]
enum Step {
    Any(usize, usize),
    Legal(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..Event::ALL.len(), 0..ROLES.len()).prop_map(|(e, r)| Step::Any(e, r)),
        any::<usize>().prop_map(Step::Legal),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Advisory), Just(Mode::Manual), Just(Mode::Auto)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_walks_agree_with_the_model(
        mode in mode(),
        dry_run in any::<bool>(),
        auto_approved in any::<bool>(),
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        let mut state = initial_state(mode, dry_run, auto_approved);
        for step in steps {
            let (event, role) = match step {
                Step::Any(e, r) => (Event::ALL[e], ROLES[r]),
                Step::Legal(n) => {
                    let moves = legal_moves(state);
                    if moves.is_empty() {
                        (Event::Rollback, Role::Admin)
                    } else {
                        moves[n % moves.len()]
                    }
                }
            };
            let got = transition(state, event, role);
            let want = model(state, event, role);
            match (&got, want) {
                (Ok(a), Ok(b)) => prop_assert_eq!(*a, b),
                (Err(TransitionError::Illegal { state: s, event: e }), Err(Refusal::Illegal)) => {
                    prop_assert_eq!((*s, *e), (state, event));
                }
                (Err(TransitionError::RoleNotAllowed { state: s, event: e, role: r }), Err(Refusal::Role)) => {
                    prop_assert_eq!((*s, *e, *r), (state, event, role));
                }
                _ => prop_assert!(false, "{state} --{event:?}/{role}--> implementation {got:?}, model {want:?}"),
            }
            let Ok(next) = got else { continue };
            prop_assert!(!state.is_terminal(), "terminal {state} moved to {next} on {event:?}");
            if next == State::Executing && state != State::Executing {
                prop_assert!(
                    (state == State::Approved && event == Event::BeginExecution)
                        || (state == State::Held && event == Event::ForceExecute && role == Role::Admin),
                    "executing reached from {state} on {event:?} by {role}"
                );
            }
            if next == State::RolledBack && state != State::RolledBack {
                prop_assert_eq!(state, State::RollingBack);
            }
            state = next;
        }
    }
}

/// Every refusal says, in plain words, where the action stands and what can be done instead.
#[test]
fn every_refusal_says_what_to_do_next() {
    for state in State::ALL {
        for event in Event::ALL {
            if let Err(e) = transition(state, event, Role::Admin) {
                let text = e.to_string();
                assert!(text.contains(state.as_str()), "{text}");
                if let TransitionError::Illegal { .. } = e {
                    assert!(text.contains(&format!("({state})")), "{text}");
                    assert!(text.contains(state.describe()), "{text}");
                    assert!(text.ends_with(state.what_next()), "{text}");
                }
            }
        }
    }
    assert_eq!(
        transition(State::PendingApproval, Event::BeginExecution, Role::Approver).map_err(|e| e.to_string()),
        Err("cannot execute an action that is waiting for approval (pending_approval); it must be approved first"
            .to_owned())
    );
}
