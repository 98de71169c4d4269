//! The connector catalog: the one list of connector types the binaries know. Each entry is the
//! `FACTORY` its connector crate exports; a connector left out of the build (a disabled
//! `connector-*` feature) is missing from the list and so an unknown `type`.
//!
//! Adding a connector is one crate that exports a [`remediation_core::factory::Factory`] and
//! one line in [`BUILTIN`] (plus its feature); the configuration loader, the runtime, the
//! JSON Schema of the configuration and the README's capability matrix all read this list.

use std::sync::Arc;

use remediation_config::{Config, ConnectorConfig};
use remediation_core::Connector;
use remediation_core::factory::{BuildContext, BuildError, ConnectorFactory};
use serde_json::{Map, Value, json};

use crate::RuntimeError;

/// Every connector type of this build, in the order the documentation lists them.
pub const BUILTIN: &[&dyn ConnectorFactory] = &[
    &remediation_connector_sandbox::FACTORY,
    #[cfg(feature = "connector-okta")]
    &remediation_connector_okta::FACTORY,
    #[cfg(feature = "connector-entra")]
    &remediation_connector_entra::FACTORY,
    #[cfg(feature = "connector-google")]
    &remediation_connector_google::FACTORY,
    #[cfg(feature = "connector-github")]
    &remediation_connector_github::FACTORY,
    #[cfg(feature = "connector-scim")]
    &remediation_connector_scim::FACTORY,
    #[cfg(feature = "connector-ldap")]
    &remediation_connector_ldap::FACTORY,
    #[cfg(feature = "connector-postgres")]
    &remediation_connector_postgres::FACTORY,
    #[cfg(feature = "connector-aws-iam")]
    &remediation_connector_aws_iam::FACTORY,
    #[cfg(feature = "connector-aws")]
    &remediation_connector_aws::FACTORY,
    #[cfg(feature = "connector-webhook")]
    &remediation_connector_webhook::FACTORY,
    #[cfg(feature = "connector-notify")]
    &remediation_notify::FACTORY,
];

/// A list of connector factories: [`Catalog::builtin`], plus any an embedder or a test adds
/// with [`Catalog::with`].
#[derive(Clone)]
pub struct Catalog {
    factories: Vec<&'static dyn ConnectorFactory>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::builtin()
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.factories.iter().map(|f| f.type_name())).finish()
    }
}

impl Catalog {
    /// The connector types of this build ([`BUILTIN`]).
    pub fn builtin() -> Self {
        Self { factories: BUILTIN.to_vec() }
    }

    /// Adds `factory`; it replaces a factory of the same `type`.
    pub fn with(mut self, factory: &'static dyn ConnectorFactory) -> Self {
        self.factories.retain(|f| f.type_name() != factory.type_name());
        self.factories.push(factory);
        self
    }

    /// The factories, in order.
    pub fn factories(&self) -> &[&'static dyn ConnectorFactory] {
        &self.factories
    }

    /// The factory of `type_name`.
    pub fn get(&self, type_name: &str) -> Option<&'static dyn ConnectorFactory> {
        self.factories.iter().copied().find(|f| f.type_name() == type_name)
    }

    /// Builds every configured connector. Fails on the first that cannot be built (an
    /// unknown type, settings that do not fit, a missing secret, an unreadable key file),
    /// naming it.
    pub fn build_all(
        &self,
        configs: &[ConnectorConfig],
        context: &BuildContext,
    ) -> Result<Vec<Arc<dyn Connector>>, RuntimeError> {
        configs.iter().map(|c| self.build(c, context)).collect()
    }

    /// Builds connector `id` of type `type_name` from `settings` (a managed connection's,
    /// without `id`), naming it in the error.
    pub fn build_settings(
        &self,
        type_name: &str,
        id: &str,
        settings: &Value,
        context: &BuildContext,
    ) -> Result<Arc<dyn Connector>, RuntimeError> {
        let mut with_id = settings.clone();
        if let Some(map) = with_id.as_object_mut() {
            map.insert("id".to_owned(), Value::String(id.to_owned()));
        }
        let Some(factory) = self.get(type_name) else {
            return Err(RuntimeError::UnknownConnectorType {
                id: id.to_owned(),
                kind: type_name.to_owned(),
                known: self.factories.iter().map(|f| f.type_name()).collect::<Vec<_>>().join(", "),
            });
        };
        factory.build(id, &with_id, context).map_err(|e| RuntimeError::Connector {
            id: id.to_owned(),
            kind: factory.type_name(),
            source: match e {
                BuildError::Failed(source) => source,
                other => Box::new(other),
            },
        })
    }

    fn build(&self, config: &ConnectorConfig, context: &BuildContext) -> Result<Arc<dyn Connector>, RuntimeError> {
        let Some(factory) = self.get(config.type_name()) else {
            return Err(RuntimeError::UnknownConnectorType {
                id: config.id().to_owned(),
                kind: config.type_name().to_owned(),
                known: self.factories.iter().map(|f| f.type_name()).collect::<Vec<_>>().join(", "),
            });
        };
        factory.build(config.id(), &config.factory_settings(), context).map_err(|e| RuntimeError::Connector {
            id: config.id().to_owned(),
            kind: factory.type_name(),
            source: match e {
                BuildError::Failed(source) => source,
                other => Box::new(other),
            },
        })
    }

    /// The JSON Schema of the configuration file, with each connector type's settings (as
    /// its factory describes them) as one alternative of `[[connectors]]`.
    pub fn config_schema(&self) -> schemars::Schema {
        let mut generator = schemars::SchemaGenerator::default();
        let mut variants = Vec::new();
        for factory in &self.factories {
            let schema = factory.config_schema(&mut generator);
            // The factory's settings, inlined, with the keys the configuration adds.
            let mut body = match schema.get("$ref").and_then(Value::as_str) {
                Some(reference) => {
                    let name = reference.trim_start_matches("#/$defs/");
                    generator.definitions().get(name).cloned().unwrap_or_else(|| schema.to_value())
                }
                None => schema.to_value(),
            };
            if let Some(object) = body.as_object_mut() {
                let properties = object.entry("properties").or_insert_with(|| Value::Object(Map::new()));
                if let Some(properties) = properties.as_object_mut() {
                    properties.insert(
                        "type".to_owned(),
                        json!({"description": format!("{} (`{}`).", factory.title(), factory.type_name()), "type": "string", "const": factory.type_name()}),
                    );
                    properties.insert("check_ttl_secs".to_owned(), common_schema("check_ttl_secs"));
                    // A connector with a `scope` setting of its own (Entra's token scope, a
                    // string) takes either; the selection scope is always a table.
                    let scope = match properties.remove("scope") {
                        Some(own) => json!({"anyOf": [own, scope_schema()]}),
                        None => scope_schema(),
                    };
                    properties.insert("scope".to_owned(), scope);
                }
                let required = object.entry("required").or_insert_with(|| Value::Array(Vec::new()));
                if let Some(required) = required.as_array_mut() {
                    required.insert(0, Value::String("type".to_owned()));
                }
            }
            variants.push(body);
        }
        let mut root = generator.root_schema_for::<Config>();
        if let Some(defs) = root.get_mut("$defs").and_then(Value::as_object_mut) {
            defs.insert(
                "ConnectorConfig".to_owned(),
                json!({
                    "description": "One configured connector, tagged by `type`: the connector types of this build, each with its provider's settings.",
                    "oneOf": variants,
                }),
            );
        }
        // A settings type inlined above stays a definition only while something else uses it
        // (removing one may leave another unused).
        loop {
            let text = root.as_value().to_string();
            let Some(defs) = root.get_mut("$defs").and_then(Value::as_object_mut) else { break };
            let unused: Vec<String> =
                defs.keys().filter(|name| !text.contains(&format!("\"#/$defs/{name}\""))).cloned().collect();
            if unused.is_empty() {
                break;
            }
            for name in unused {
                defs.remove(&name);
            }
        }
        root
    }
}

/// The schema of a connector's selection scope table (`scope = { domains, accounts }`).
fn scope_schema() -> Value {
    let mut generator =
        schemars::generate::SchemaSettings::default().with(|s| s.inline_subschemas = true).into_generator();
    let mut schema = generator.root_schema_for::<remediation_core::store::ConnectionScope>().to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        object.insert(
            "description".to_owned(),
            json!(
                "The targets this connector is meant for: among several healthy connectors that can do an \
                   action, one whose scope names the target's email domain or AWS account is chosen; empty \
                   matches everything."
            ),
        );
    }
    schema
}

/// The schema of `key`, a key every connector shares, as the configuration's own type
/// describes it (its definitions inlined).
fn common_schema(key: &str) -> Value {
    let mut generator =
        schemars::generate::SchemaSettings::default().with(|s| s.inline_subschemas = true).into_generator();
    let config = generator.root_schema_for::<ConnectorConfig>();
    config.get("properties").and_then(|p| p.get(key)).cloned().unwrap_or_else(|| json!({}))
}
