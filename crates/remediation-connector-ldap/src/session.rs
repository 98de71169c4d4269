//! One bound LDAP connection: reads, paged searches and modifications, with timeouts and
//! result codes turned into connector errors.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapResult, Mod, Scope, SearchEntry};
use remediation_core::ConnectorError;
use remediation_tls::rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{from_ldap, from_result};

/// A connection bound as the connector's service account.
pub(crate) struct Session {
    ldap: Ldap,
    timeout: Duration,
    page_size: i32,
}

impl Session {
    /// Connects to `url` (over TLS with `tls`, upgraded by StartTLS when `starttls`) and binds
    /// as `bind_dn`.
    pub(crate) async fn open(
        url: &str,
        tls: Option<&Arc<ClientConfig>>,
        starttls: bool,
        bind_dn: &str,
        password: &SecretString,
        timeout: Duration,
        page_size: i32,
    ) -> Result<Self, ConnectorError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(timeout).set_starttls(starttls);
        if let Some(tls) = tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
            .await
            .map_err(|e| from_ldap(&format!("cannot connect to {url}"), e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended with an error");
            }
        });
        let res = ldap
            .with_timeout(timeout)
            .simple_bind(bind_dn, password.expose_secret())
            .await
            .map_err(|e| from_ldap(&format!("bind as {bind_dn}"), e))?;
        if res.rc != 0 {
            return Err(from_result(&format!("bind as {bind_dn}"), &res));
        }
        Ok(Self { ldap, timeout, page_size })
    }

    /// Reads the entry `dn` with `attrs` (operational attributes must be named).
    pub(crate) async fn read(&mut self, dn: &str, attrs: &[&str]) -> Result<SearchEntry, ConnectorError> {
        let what = format!("read {dn}");
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .search(dn, Scope::Base, "(objectClass=*)", attrs.to_vec())
            .await
            .map_err(|e| from_ldap(&what, e))?;
        if res.1.rc != 0 {
            return Err(from_result(&what, &res.1));
        }
        res.0
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .ok_or_else(|| ConnectorError::not_found(format!("{what}: the server returned no entry")))
    }

    /// Whether the entry `dn` matches `filter` (which the caller has escaped).
    pub(crate) async fn matches(&mut self, dn: &str, filter: &str) -> Result<bool, ConnectorError> {
        let what = format!("match {dn} against {filter}");
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .search(dn, Scope::Base, filter, vec!["1.1"])
            .await
            .map_err(|e| from_ldap(&what, e))?;
        if res.1.rc != 0 {
            return Err(from_result(&what, &res.1));
        }
        Ok(!res.0.is_empty())
    }

    /// The DNs of every entry under `base` matching `filter`, read page by page with the
    /// simple paged results control (RFC 2696).
    pub(crate) async fn search_dns(&mut self, base: &str, filter: &str) -> Result<Vec<String>, ConnectorError> {
        let what = format!("search {base} for {filter}");
        let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(self.page_size))];
        // The timeout applies to each entry and page as it arrives, not to the whole read.
        let mut stream = self
            .ldap
            .with_timeout(self.timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, vec!["1.1"])
            .await
            .map_err(|e| from_ldap(&what, e))?;
        let mut dns = Vec::new();
        while let Some(entry) = stream.next().await.map_err(|e| from_ldap(&what, e))? {
            dns.push(SearchEntry::construct(entry).dn);
        }
        let res = stream.finish().await;
        if res.rc != 0 {
            return Err(from_result(&what, &res));
        }
        Ok(dns)
    }

    /// Applies `mods` to `dn` and returns the server's result, whatever its code: callers
    /// decide what 16, 20 and 65 mean for them. Only transport failures are errors here.
    pub(crate) async fn modify(&mut self, dn: &str, mods: Vec<Mod<&str>>) -> Result<LdapResult, ConnectorError> {
        let what = format!("modify {dn}");
        self.ldap.with_timeout(self.timeout).modify(dn, mods).await.map_err(|e| from_ldap(&what, e))
    }

    /// Unbinds; errors are irrelevant once the work is done.
    pub(crate) async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// A set of one value, as `Mod` wants it.
pub(crate) fn one(value: &str) -> HashSet<&str> {
    HashSet::from([value])
}
