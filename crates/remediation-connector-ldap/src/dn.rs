//! Comparing distinguished names the way a server would, for protection and scope checks.
//!
//! The connector never builds a DN from parts: targets name DNs whole, and the server matches
//! them. This module only parses DNs it is given, to compare them.

use std::fmt;

/// Names and OIDs of the usual naming attributes, each with its canonical short name. Each of
/// these has a case-insensitive equality matching rule (`caseIgnoreMatch`, or
/// `caseIgnoreIA5Match` for `dc` and `mail`), so values compare lowercased with insignificant
/// spaces removed. `userid=alice` and `0.9.2342.19200300.100.1.1=alice` are `uid=alice`.
const ATTRIBUTE_ALIASES: &[(&str, &[&str])] = &[
    ("uid", &["userid", "0.9.2342.19200300.100.1.1"]),
    ("cn", &["commonname", "2.5.4.3"]),
    ("sn", &["surname", "2.5.4.4"]),
    ("serialnumber", &["2.5.4.5"]),
    ("c", &["countryname", "2.5.4.6"]),
    ("l", &["localityname", "2.5.4.7"]),
    ("st", &["stateorprovincename", "2.5.4.8"]),
    ("street", &["streetaddress", "2.5.4.9"]),
    ("o", &["organizationname", "2.5.4.10"]),
    ("ou", &["organizationalunitname", "2.5.4.11"]),
    ("title", &["2.5.4.12"]),
    ("givenname", &["gn", "2.5.4.42"]),
    ("dc", &["domaincomponent", "0.9.2342.19200300.100.1.25"]),
    ("mail", &["rfc822mailbox", "0.9.2342.19200300.100.1.3"]),
];

/// The canonical name of an attribute type: lowercased, a legacy `OID.` prefix dropped, and a
/// known alias or OID replaced by its short name.
fn canonical_type(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("oid.").unwrap_or(&lower);
    ATTRIBUTE_ALIASES
        .iter()
        .find(|(short, aliases)| *short == bare || aliases.contains(&bare))
        .map_or_else(|| bare.to_owned(), |(short, _)| (*short).to_owned())
}

/// A value compared the way the naming attributes' case-ignore rules do: lowercased, leading
/// and trailing spaces dropped, inner runs of whitespace one space.
fn canonical_value(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A DN's RDNs, each as `type=value` pairs with attribute types in their canonical short name
/// (`userid` and `0.9.2342.19200300.100.1.1` are `uid`), values lowercased with escapes
/// resolved and spaces normalised, and multi-valued RDNs sorted, so that
/// `UID=Alice, OU=People` equals `userid=alice,ou=people`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NormalDn(Vec<Vec<(String, String)>>);

impl NormalDn {
    /// Parses `dn`; `None` when it is not a DN (RFC 4514 string syntax, leniently).
    pub(crate) fn parse(dn: &str) -> Option<Self> {
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut attr = String::new();
        let mut value: Vec<u8> = Vec::new();
        let mut in_value = false;
        let bytes = dn.as_bytes();
        let mut i = 0;
        if dn.trim().is_empty() {
            return Some(Self(Vec::new()));
        }
        let finish_pair = |attr: &mut String, value: &mut Vec<u8>, rdn: &mut Vec<(String, String)>| -> Option<()> {
            let a = canonical_type(attr);
            if a.is_empty() {
                return None;
            }
            let v = String::from_utf8(std::mem::take(value)).ok()?;
            rdn.push((a, canonical_value(&v)));
            attr.clear();
            Some(())
        };
        while i < bytes.len() {
            let c = bytes[i];
            if !in_value {
                if c == b'=' {
                    in_value = true;
                } else if c == b',' || c == b'+' {
                    return None;
                } else {
                    attr.push(char::from(c));
                }
                i += 1;
                continue;
            }
            match c {
                b'\\' => {
                    let next = *bytes.get(i + 1)?;
                    if next.is_ascii_hexdigit() {
                        let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                        value.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 3;
                    } else {
                        value.push(next);
                        i += 2;
                    }
                    continue;
                }
                b',' | b';' | b'+' => {
                    finish_pair(&mut attr, &mut value, &mut rdn)?;
                    in_value = false;
                    if c != b'+' {
                        rdn.sort();
                        rdns.push(std::mem::take(&mut rdn));
                    }
                }
                _ => value.push(c),
            }
            i += 1;
        }
        if !in_value {
            return None;
        }
        finish_pair(&mut attr, &mut value, &mut rdn)?;
        rdn.sort();
        rdns.push(rdn);
        Some(Self(rdns))
    }

    /// Whether `self` is `base` or lies below it.
    pub(crate) fn is_within(&self, base: &NormalDn) -> bool {
        self.0.len() >= base.0.len() && self.0[self.0.len() - base.0.len()..] == base.0[..]
    }
}

/// The canonical string form (RFC 4514 escaping), used as the target's canonical id.
impl fmt::Display for NormalDn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, (attr, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{attr}=")?;
                let last = value.chars().count().saturating_sub(1);
                for (k, c) in value.chars().enumerate() {
                    let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
                        || (k == 0 && matches!(c, '#' | ' '))
                        || (k == last && c == ' ');
                    if c == '\0' {
                        f.write_str("\\00")?;
                    } else if special {
                        write!(f, "\\{c}")?;
                    } else {
                        write!(f, "{c}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[track_caller]
    fn same(a: &str, b: &str) {
        assert_eq!(NormalDn::parse(a).unwrap(), NormalDn::parse(b).unwrap(), "{a} vs {b}");
    }

    #[test]
    fn case_spacing_and_escapes_do_not_matter() {
        same("UID=Alice, OU=People,dc=Example,DC=org", "uid=alice,ou=people,dc=example,dc=org");
        same(r"cn=Doe\, John,dc=x", r"cn=doe\2c john,dc=x");
        same("cn=a+sn=b,dc=x", "sn=b+cn=a,dc=x");
        same(r"uid=\2a,dc=x", "uid=*,dc=x");
    }

    #[test]
    fn attribute_names_and_oids_of_one_type_are_one_type() {
        same("userid=breakglass,ou=people,dc=example,dc=org", "uid=breakglass,ou=people,dc=example,dc=org");
        same(
            "0.9.2342.19200300.100.1.1=breakglass,2.5.4.11=people,0.9.2342.19200300.100.1.25=example,dc=org",
            "uid=breakglass,ou=people,dc=example,dc=org",
        );
        same("OID.2.5.4.3=Admins,domainComponent=x", "cn=admins,dc=x");
        same("commonName=Admins,organizationalUnitName=g,dc=x", "cn=admins,ou=g,dc=x");
        assert_ne!(NormalDn::parse("uid=a,dc=x").unwrap(), NormalDn::parse("cn=a,dc=x").unwrap());
    }

    #[test]
    fn inner_whitespace_is_insignificant() {
        same("cn=John   Doe,dc=x", "cn=john doe,dc=x");
        same("cn=  John Doe  ,dc=x", "cn=john doe,dc=x");
    }

    #[test]
    fn the_canonical_form_parses_back_to_itself() {
        for dn in [
            "userid=BreakGlass, OU=People,dc=example,dc=org",
            r"cn=Doe\, John+sn=x,dc=x",
            r"cn=\#hash\ ,dc=x",
            r"cn=a\=b\;c\<d\>\22,dc=x",
        ] {
            let parsed = NormalDn::parse(dn).unwrap();
            let text = parsed.to_string();
            assert_eq!(NormalDn::parse(&text).unwrap(), parsed, "{dn} -> {text}");
        }
        assert_eq!(
            NormalDn::parse("0.9.2342.19200300.100.1.1=BreakGlass,ou=People,DC=example,dc=org").unwrap().to_string(),
            "uid=breakglass,ou=people,dc=example,dc=org"
        );
    }

    #[test]
    fn an_escaped_comma_is_not_a_separator() {
        let escaped = NormalDn::parse(r"cn=Doe\, John,dc=x").unwrap();
        let split = NormalDn::parse("cn=Doe,cn=John,dc=x").unwrap();
        assert_ne!(escaped, split);
        assert_eq!(escaped.0.len(), 2);
    }

    #[test]
    fn within_compares_whole_rdns() {
        let base = NormalDn::parse("dc=example,dc=org").unwrap();
        assert!(NormalDn::parse("uid=a,ou=people,dc=example,dc=org").unwrap().is_within(&base));
        assert!(NormalDn::parse("dc=example,dc=org").unwrap().is_within(&base));
        assert!(!NormalDn::parse("uid=a,dc=badexample,dc=org").unwrap().is_within(&base));
        assert!(!NormalDn::parse("uid=a,dc=org").unwrap().is_within(&base));
    }

    #[test]
    fn malformed_dns_are_refused() {
        for dn in ["uid", "uid=a,", ",dc=x", "=a", r"cn=a\", r"cn=a\zz\"] {
            assert!(NormalDn::parse(dn).is_none(), "{dn} parsed");
        }
    }
}
