//! Comparing distinguished names the way a server would, for protection and scope checks.
//!
//! The connector never builds a DN from parts: targets name DNs whole, and the server matches
//! them. This module only parses DNs it is given, to compare them.

/// A DN's RDNs, each as lowercased `type=value` pairs with escapes resolved and
/// multi-valued RDNs sorted, so that `UID=Alice, OU=People` equals `uid=alice,ou=people`.
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
            let a = attr.trim().to_ascii_lowercase();
            if a.is_empty() {
                return None;
            }
            let v = String::from_utf8(std::mem::take(value)).ok()?;
            rdn.push((a, v.trim().to_lowercase()));
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
