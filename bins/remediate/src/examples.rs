//! Examples shown by every subcommand's `--help`, kept in one table so that none is missed (a
//! test walks the whole command tree).

use clap::CommandFactory as _;

use crate::Cli;

/// The examples of each subcommand, by its path below `remediate`.
const EXAMPLES: &[(&str, &str)] = &[
    ("init", "remediate init\n  remediate --data-dir /srv/remediation init --force"),
    (
        "suggest",
        "remediate --actor local:alice suggest --connector sandbox --kind revoke \\\n      --identity alice --resource admins --grant-type group_membership --reason \"no standing admin\"\n  remediate suggest --finding prowler.ocsf.json --dry-run",
    ),
    (
        "import",
        "remediate --actor local:alice import findings.jsonl --campaign q4-okta\n  cat prowler-ocsf.json | remediate import -\n  remediate import securityhub.json --format asff --output json",
    ),
    (
        "identities",
        "remediate identities show alice@example.com\n  remediate --actor local:root identities link alice@example.com --connector github --account alice-gh --reason \"verified by IT\"",
    ),
    (
        "identities show",
        "remediate identities show alice@example.com\n  remediate identities show alice@example.com --output json",
    ),
    (
        "identities link",
        "remediate --actor local:root identities link alice@example.com --connector github --account alice-gh --reason \"verified by IT\"\n  remediate --actor local:root identities link alice@example.com --connector github --remove --reason \"wrong account\"",
    ),
    (
        "respond",
        "remediate --actor local:rita respond alice@example.com --revoke-sessions --force-password-reset --reason \"token on a paste site\"\n  remediate --actor local:rita respond alice@example.com --revoke-sessions --suspend --reason \"account takeover\" --finding F-4711 --output json",
    ),
    (
        "playbook",
        "remediate playbook list\n  remediate playbook plan compromised-account --identity alice@example.com\n  remediate --actor local:alice playbook run compromised-account --identity alice@example.com --reason \"takeover\"",
    ),
    ("playbook list", "remediate playbook list\n  remediate playbook list --output json"),
    ("playbook show", "remediate playbook show compromised-account"),
    ("playbook save", "remediate --actor local:root playbook save playbooks/compromised-account.toml"),
    (
        "playbook plan",
        "remediate playbook plan compromised-account --identity alice@example.com\n  remediate playbook plan offboard-leaver --identity bob@example.com --output json",
    ),
    (
        "playbook run",
        "remediate --actor local:alice playbook run compromised-account --identity alice@example.com --reason \"takeover\" --plan-hash <HASH>",
    ),
    ("playbook runs", "remediate playbook runs\n  remediate playbook runs --output json"),
    ("playbook status", "remediate playbook status <RUN>"),
    ("playbook approve", "remediate --actor local:bob playbook approve <RUN> --plan-hash <HASH>"),
    ("playbook reject", "remediate --actor local:bob playbook reject <RUN> --note \"wrong person\""),
    ("playbook resume", "remediate --actor local:bob playbook resume <RUN>"),
    (
        "playbook rollback",
        "remediate --actor local:bob playbook rollback <RUN> --reason \"false alarm\"\n  remediate --actor local:dave playbook rollback <RUN> --reason \"confirmed false alarm\"",
    ),
    ("campaign", "remediate campaign list\n  remediate campaign show q4-okta\n  remediate campaign resume q4-okta"),
    ("campaign list", "remediate campaign list\n  remediate campaign list --output json"),
    ("campaign show", "remediate campaign show q4-okta\n  remediate campaign show q4-okta --output json"),
    ("campaign resume", "remediate campaign resume q4-okta"),
    (
        "list",
        "remediate list\n  remediate list --state pending_approval --limit 20\n  remediate list --campaign q4-okta --output json",
    ),
    ("show", "remediate show '#1234'\n  remediate show 1234\n  remediate show 0190b7e2-6f1c-7d35-9a57-3f0c6f1a2b3c"),
    (
        "approve",
        "remediate --actor local:bob approve <ID> --note \"checked with the team\"\n  remediate --actor local:bob approve '#12' '#13' '#14'\n  remediate --actor local:bob approve --campaign q4-okta --yes\n  remediate --actor local:bob approve --control CIS-1.22 --connector okta --yes",
    ),
    ("reject", "remediate --actor local:bob reject <ID> --note \"still needed for the migration\""),
    (
        "execute",
        "remediate --actor local:bob execute <ID> --dry-run\n  remediate --actor local:bob execute <ID>\n  remediate --actor local:bob execute --connector okta --yes",
    ),
    ("rollback", "remediate --actor local:bob rollback <ID> --note \"broke the nightly job\""),
    ("cancel", "remediate cancel <ID> --note \"duplicate\"\n  remediate cancel --control CIS-1.22 --state held --yes"),
    ("promote", "remediate --actor local:root promote <ID>"),
    ("force-execute", "remediate --actor local:root force-execute <ID> --reason \"incident 4711: contain now\""),
    (
        "release",
        "remediate --actor local:root release <ID>\n  remediate --actor local:root release --connector okta --yes",
    ),
    ("recover", "remediate recover"),
    ("plan", "remediate plan <ID>\n  remediate plan <ID> --output json"),
    ("settings", "remediate settings show\n  remediate settings set enabled true --reason \"go live\""),
    ("settings show", "remediate settings show --output json"),
    (
        "settings copy",
        "remediate settings copy --from test --to prod --reason \"a week in test\" --dry-run\n  remediate settings copy --from test --to prod --reason \"a week in test\" --yes",
    ),
    (
        "tenants",
        "remediate tenants create acme --description \"Acme's Okta\"\n  remediate tenants list\n  remediate --tenant acme list",
    ),
    ("tenants create", "remediate tenants create acme --description \"Acme's Okta\""),
    ("tenants list", "remediate tenants list --output json"),
    (
        "settings set",
        "remediate settings set kinds.revoke manual --reason \"revocations need a human\"\n  remediate settings set auto_promotion '{\"min_successes\": 20, \"min_days\": 60}' --reason \"stricter\"",
    ),
    (
        "controls",
        "remediate controls list\n  remediate controls show CIS-1.4\n  remediate controls set CIS-1.4 --status failing --reason \"scan of today\"",
    ),
    ("controls list", "remediate controls list\n  remediate controls list --output json"),
    (
        "controls show",
        "remediate controls show CIS-1.4\n  remediate --server https://remediation.example controls show CIS-1.4 --output json",
    ),
    (
        "controls set",
        "remediate controls set CIS-1.4 --mode manual --kinds revoke --grant-types group_membership --connectors okta --reason \"start manual\"\n  remediate controls set CIS-1.4 --mode auto --reason \"earned it\"\n  remediate controls set CIS-1.4 --mode auto --reason \"low risk\" --override-earned \"pilot approved by the CISO, CHG-1234\"\n  remediate controls set CIS-1.4 --disable \"under review\" --reason \"audit finding\"",
    ),
    ("kill-switch", "remediate kill-switch status\n  remediate kill-switch on --reason \"incident 4711\""),
    (
        "kill-switch on",
        "remediate kill-switch on --reason \"incident 4711\"\n  remediate kill-switch on --installation --reason \"every tenant stops\"",
    ),
    ("kill-switch off", "remediate kill-switch off --reason \"incident 4711 closed\""),
    ("kill-switch status", "remediate kill-switch status"),
    ("breaker", "remediate breaker status\n  remediate breaker reset --reason \"spike explained\""),
    ("breaker reset", "remediate breaker reset --reason \"spike explained\""),
    ("breaker status", "remediate breaker status"),
    ("limits", "remediate limits status"),
    ("limits status", "remediate limits status --output json"),
    ("held", "remediate held list"),
    ("held list", "remediate held list"),
    ("events", "remediate events status\n  remediate events flush --timeout 30"),
    ("events status", "remediate events status --output json"),
    ("events flush", "remediate events flush --timeout 30"),
    ("events replay", "remediate events replay --sink events/siem --reason \"receiver fixed\""),
    ("emergency-access", "remediate emergency-access status"),
    ("emergency-access verify", "remediate emergency-access verify --note \"logged in with the sealed account\""),
    ("emergency-access status", "remediate emergency-access status"),
    ("connectors", "remediate connectors\n  remediate connectors check"),
    (
        "connections",
        "remediate connections list\n  remediate --actor local:root connections add --type scim --id scim-eu \\\n      --settings '{\"base_url\": \"https://scim.example.eu/scim/v2\", \"token\": {\"sealed\": \"token\"}}' \\\n      --secret token=@/run/secrets/scim-eu-token --scope-domain example.eu",
    ),
    ("connections list", "remediate connections list\n  remediate connections list --output json"),
    ("connections show", "remediate connections show scim-eu\n  remediate connections show scim-eu --output json"),
    (
        "connections add",
        "remediate --actor local:root connections add --type scim --id scim-eu \\\n      --settings @scim-eu.json --secret token=@/run/secrets/scim-eu-token --scope-domain example.eu\n  printf %s \"$TOKEN\" | remediate --actor local:root connections add --type okta --id okta-us \\\n      --settings '{\"org_url\": \"https://acme.okta.com\", \"token\": {\"sealed\": \"token\"}}' --secret token=-",
    ),
    (
        "connections update",
        "remediate --actor local:root connections update scim-eu --secret token=@/run/secrets/new-token\n  remediate --actor local:root connections update scim-eu --scope-domain example.eu --scope-domain example.de",
    ),
    ("connections test", "remediate --actor local:root connections test scim-eu"),
    ("connections disable", "remediate --actor local:root connections disable scim-eu"),
    ("connections enable", "remediate --actor local:root connections enable scim-eu"),
    (
        "connections rm",
        "remediate --actor local:root connections rm scim-eu\n  remediate --actor local:root connections rm scim-eu --yes",
    ),
    ("keys", "remediate --actor local:root keys rotate"),
    (
        "keys rotate",
        "remediate --actor local:root keys rotate\n  remediate --actor local:root keys rotate --rewrap-only",
    ),
    ("connectors check", "remediate connectors check --output json"),
    ("report", "remediate report metrics --since 30d"),
    (
        "report metrics",
        "remediate report metrics --since 2026-11-01 --until 2026-12-01\n  remediate report metrics --since 7d --output json",
    ),
    ("audit", "remediate audit verify\n  remediate audit export --since 7d > audit.jsonl"),
    ("audit verify", "remediate audit verify"),
    (
        "audit export",
        "remediate audit export --since 2026-12-01 > audit.jsonl\n  remediate audit export --since 12h --out last-12h.jsonl\n  remediate audit export --since 2026-12-01T08:00:00Z",
    ),
    ("report", "remediate report compliance --from 2026-11-01 --to 2026-12-01 --format html --out november.html"),
    (
        "report compliance",
        "remediate report compliance --from 2026-11-01 --to 2026-12-01 --format html --out november.html\n  remediate report compliance --from 30d --to 0s --format csv > last-30-days.csv\n  remediate report compliance --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z",
    ),
    ("audit key", "remediate audit key --output json"),
    ("audit rotate-key", "remediate audit rotate-key"),
    ("audit tree-head", "remediate audit tree-head --output json"),
    ("audit archive", "remediate audit archive --before 2025-01-01 --out audit-2024.json"),
    ("audit prove", "remediate audit prove <ID> --output json"),
    ("audit consistency", "remediate audit consistency 120 --output json"),
    ("token", "remediate token create --principal ci-bot --name ci-bot-2026\n  remediate token list"),
    (
        "token create",
        "remediate token create --principal ci-bot --name ci-bot-2026 --expires 30d\n  remediate token create --principal ops --name ops --tenants acme,prod",
    ),
    ("token list", "remediate token list"),
    ("token revoke", "remediate token revoke ci-bot-2026"),
    ("principal", "remediate principal list\n  remediate principal create ci-bot --role requester --kind service"),
    ("principal create", "remediate principal create ci-bot --role requester --kind service"),
    ("principal list", "remediate principal list"),
    ("principal set-role", "remediate principal set-role bob approver --reason \"joined the on-call rota\""),
    ("principal revoke", "remediate principal revoke ci-bot --reason \"pipeline retired\""),
    ("pending", "remediate pending list\n  remediate pending confirm <CHANGE ID>"),
    ("pending list", "remediate pending list --all"),
    ("pending confirm", "remediate --actor local:dana pending confirm <CHANGE ID>"),
    ("pending cancel", "remediate pending cancel <CHANGE ID> --note \"proposed by mistake\""),
    ("demo", "remediate demo"),
    ("migrate", "remediate migrate"),
    ("store", "remediate store copy --from sqlite:old/remediation.db"),
    (
        "store copy",
        "remediate store copy --from sqlite:old/remediation.db\n  remediate store copy --from sqlite:remediation-data/remediation.db \\\n      --to 'postgres://remediation@db:5432/remediation?sslmode=verify-full' --to-password-env PGPASSWORD",
    ),
    (
        "completions",
        "remediate completions bash > /etc/bash_completion.d/remediate\n  remediate completions zsh > \"${fpath[1]}/_remediate\"\n  remediate completions fish > ~/.config/fish/completions/remediate.fish",
    ),
    ("man", "remediate man > remediate.1 && man ./remediate.1"),
];

/// The examples of the subcommand at `path` (`"audit export"`).
fn examples(path: &str) -> Option<&'static str> {
    EXAMPLES.iter().find(|(p, _)| *p == path).map(|(_, e)| *e)
}

/// The command line definition with each subcommand's examples in its `--help`.
pub(crate) fn command() -> clap::Command {
    with_examples(Cli::command(), "")
}

fn with_examples(mut cmd: clap::Command, path: &str) -> clap::Command {
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    for name in names {
        let sub_path = if path.is_empty() { name.clone() } else { format!("{path} {name}") };
        cmd = cmd.mut_subcommand(&name, |sub| {
            let sub = match examples(&sub_path) {
                Some(e) => sub.after_help(format!("Examples:\n  {e}")),
                None => sub,
            };
            with_examples(sub, &sub_path)
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            let path =
                if prefix.is_empty() { sub.get_name().to_owned() } else { format!("{prefix} {}", sub.get_name()) };
            paths(sub, &path, out);
            out.push(path);
        }
    }

    #[test]
    fn every_subcommand_has_an_example_and_every_example_a_subcommand() {
        let cmd = command();
        cmd.clone().debug_assert();
        let mut all = Vec::new();
        paths(&cmd, "", &mut all);
        let missing: Vec<&String> = all
            .iter()
            .filter(|p| p.as_str() != "help" && !p.ends_with(" help"))
            .filter(|p| examples(p).is_none())
            .collect();
        assert!(missing.is_empty(), "subcommands without examples: {missing:?}");
        let stale: Vec<&str> = EXAMPLES.iter().map(|(p, _)| *p).filter(|p| !all.iter().any(|a| a == p)).collect();
        assert!(stale.is_empty(), "examples of no subcommand: {stale:?}");
        for (path, text) in EXAMPLES {
            assert!(text.starts_with("remediate "), "{path}: {text}");
        }
    }

    /// Splits a shell line into words: double and single quotes group, nothing else.
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, '"' | '\'') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, ' ') => {
                    if any {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                _ => (cur, any) = (cur + &c.to_string(), true),
            }
        }
        if any {
            out.push(cur);
        }
        out
    }

    #[test]
    fn every_example_parses() {
        for (path, text) in EXAMPLES {
            for line in text.replace("\\\n", " ").lines() {
                let line = line.trim();
                let line = line.split(" > ").next().unwrap_or(line).split(" && ").next().unwrap_or(line);
                // What is piped in is another program's command line.
                let line = line.rsplit(" | ").next().unwrap_or(line);
                let line = line.replace("<ID>", "0190b7e2-6f1c-7d35-9a57-3f0c6f1a2b3c").replace("<CHANGE ID>", "c1");
                let args = words(&line);
                if let Err(e) = command().try_get_matches_from(&args) {
                    panic!("example of `{path}` does not parse: {line}\n{e}");
                }
            }
        }
    }
}
