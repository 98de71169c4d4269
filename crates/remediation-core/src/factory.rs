//! The one shape in which every connector crate offers itself to the catalog: a
//! [`ConnectorFactory`] names the connector's `type`, describes its settings (a JSON Schema),
//! checks them and builds the connector from them.
//!
//! A connector crate exports one `pub static FACTORY: Factory<ItsConfig>`; the catalog of the
//! binaries lists those statics, and nothing else in the workspace knows the crate's config
//! type. The settings arrive as the connector's `[[connectors]]` table (without `type` and the
//! keys common to every connector, with `id`) converted to JSON.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::{Capability, Clock, Connector};

/// Any error a connector's constructor returns.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What a factory may use besides the connector's own settings.
#[derive(Clone)]
pub struct BuildContext {
    /// The data directory; relative paths in settings (the sandbox's file) are relative to it.
    pub data_dir: PathBuf,
    /// The clock the engine uses (token expiry, log windows).
    pub clock: Arc<dyn Clock>,
    /// The hook crash tests install at named failpoints ([`crate::FailpointHook`]); a
    /// connector whose change takes several writes calls it between them, with names of
    /// its own (`aws_rotate_after_create_access_key`).
    pub failpoints: Option<crate::FailpointHook>,
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

/// Why a factory refused its settings or could not build its connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The settings do not fit the connector's config type.
    #[error("{message}")]
    Settings {
        /// The key at fault inside the connector's table (`["auth", "token"]`); empty for the
        /// table as a whole.
        key: Vec<String>,
        /// What is wrong, in serde's words (`missing field `org_url``).
        message: String,
    },
    /// The settings are well formed but the connector cannot be built (a missing secret, an
    /// unreadable key file, an invalid URL).
    #[error(transparent)]
    Failed(BoxError),
}

/// A connector type the catalog can build. Object safe; the catalog holds
/// `&'static dyn ConnectorFactory`.
pub trait ConnectorFactory: Send + Sync {
    /// The `type` written in `[[connectors]]` (`okta`, `aws_iam`).
    fn type_name(&self) -> &'static str;

    /// The provider's name for people (`Okta`, `Microsoft Entra ID`).
    fn title(&self) -> &'static str;

    /// What every connector of this type can do, for the documentation's capability matrix;
    /// `None` when it depends on the settings (the webhook connector).
    fn capabilities(&self) -> Option<Vec<Capability>>;

    /// The JSON Schema of the settings table (as a subschema of `generator`, whose
    /// definitions it may extend).
    fn config_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;

    /// Checks `settings` without building anything (no secret is read, nothing is contacted).
    fn check(&self, settings: &serde_json::Value) -> Result<(), BuildError>;

    /// Builds connector `id` from `settings`.
    fn build(
        &self,
        id: &str,
        settings: &serde_json::Value,
        context: &BuildContext,
    ) -> Result<Arc<dyn Connector>, BuildError>;
}

/// The function a [`Factory`] builds its connector with: connector id, settings, context.
pub type BuildFn<C> = fn(&str, C, &BuildContext) -> Result<Arc<dyn Connector>, BoxError>;

/// The [`ConnectorFactory`] of a connector whose settings deserialize into `C`; what each
/// connector crate exports as its `FACTORY`.
///
/// ```
/// use std::sync::Arc;
/// use remediation_core::factory::{ConnectorFactory, Factory};
///
/// /// The settings of a connector that needs none but its id.
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields)]
/// struct NothingConfig {
///     id: String,
/// }
///
/// static FACTORY: Factory<NothingConfig> = Factory::new("nothing", "Nothing", None, |_id, _config, _context| {
///     Err("this example builds nothing".into())
/// });
///
/// assert_eq!(FACTORY.type_name(), "nothing");
/// assert!(FACTORY.check(&serde_json::json!({"id": "n"})).is_ok());
/// assert!(FACTORY.check(&serde_json::json!({"id": "n", "colour": "red"})).is_err());
/// ```
pub struct Factory<C> {
    type_name: &'static str,
    title: &'static str,
    capabilities: Option<fn() -> Vec<Capability>>,
    build: BuildFn<C>,
    /// `C` has no `id` field: the factory takes `id` out of the settings before reading them.
    named: bool,
}

impl<C> Factory<C> {
    /// A factory for `type_name`, titled `title`, whose connectors declare `capabilities`
    /// (`None`: they depend on the settings) and are built by `build`.
    pub const fn new(
        type_name: &'static str,
        title: &'static str,
        capabilities: Option<fn() -> Vec<Capability>>,
        build: BuildFn<C>,
    ) -> Self {
        Self { type_name, title, capabilities, build, named: false }
    }

    /// As [`Factory::new`], for a config type `C` without an `id` field: the connector's `id`
    /// is taken out of the settings (and passed to `build`) before `C` reads the rest.
    pub const fn named(
        type_name: &'static str,
        title: &'static str,
        capabilities: Option<fn() -> Vec<Capability>>,
        build: BuildFn<C>,
    ) -> Self {
        Self { type_name, title, capabilities, build, named: true }
    }
}

impl<C: DeserializeOwned + JsonSchema> Factory<C> {
    fn parse(&self, settings: &serde_json::Value) -> Result<C, BuildError> {
        let mut settings = settings.clone();
        if self.named
            && let Some(map) = settings.as_object_mut()
        {
            map.remove("id");
        }
        serde_path_to_error::deserialize(&settings).map_err(|e| {
            let key = e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    _ => None,
                })
                .collect();
            BuildError::Settings { key, message: e.into_inner().to_string() }
        })
    }
}

impl<C: DeserializeOwned + JsonSchema> ConnectorFactory for Factory<C> {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn title(&self) -> &'static str {
        self.title
    }

    fn capabilities(&self) -> Option<Vec<Capability>> {
        self.capabilities.map(|f| f())
    }

    fn config_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let schema = generator.subschema_for::<C>();
        if !self.named {
            return schema;
        }
        // The settings type inlined, with the `id` the factory takes out before reading it.
        let mut body = match schema.get("$ref").and_then(serde_json::Value::as_str) {
            Some(reference) => generator
                .definitions()
                .get(reference.trim_start_matches("#/$defs/"))
                .cloned()
                .unwrap_or_else(|| schema.to_value()),
            None => schema.to_value(),
        };
        if let Some(object) = body.as_object_mut() {
            let id = serde_json::json!({"description": "Connector id used in actions.", "type": "string"});
            if let Some(properties) =
                object.entry("properties").or_insert_with(|| serde_json::json!({})).as_object_mut()
            {
                properties.insert("id".to_owned(), id);
            }
            if let Some(required) = object.entry("required").or_insert_with(|| serde_json::json!([])).as_array_mut() {
                required.insert(0, serde_json::Value::String("id".to_owned()));
            }
        }
        schemars::Schema::try_from(body).unwrap_or_else(|_| generator.subschema_for::<C>())
    }

    fn check(&self, settings: &serde_json::Value) -> Result<(), BuildError> {
        self.parse(settings).map(drop)
    }

    fn build(
        &self,
        id: &str,
        settings: &serde_json::Value,
        context: &BuildContext,
    ) -> Result<Arc<dyn Connector>, BuildError> {
        (self.build)(id, self.parse(settings)?, context).map_err(BuildError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code, reason = "read by serde only")]
        id: String,
        #[allow(dead_code, reason = "read by serde only")]
        auth: Auth,
    }

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Auth {
        #[allow(dead_code, reason = "read by serde only")]
        token: String,
    }

    static SAMPLE: Factory<Sample> = Factory::new("sample", "Sample", None, |_, _, _| Err("not built".into()));

    #[track_caller]
    fn check(settings: serde_json::Value, key: &[&str], fragment: &str) {
        match SAMPLE.check(&settings) {
            Err(BuildError::Settings { key: k, message }) => {
                assert_eq!(k, key, "{message}");
                assert!(message.contains(fragment), "{message}");
            }
            other => panic!("expected a settings error, got {other:?}"),
        }
    }

    #[test]
    fn settings_errors_name_the_key_inside_the_table() {
        check(serde_json::json!({"id": "s"}), &[], "missing field `auth`");
        check(serde_json::json!({"id": "s", "auth": {"token": 1}}), &["auth", "token"], "invalid type");
        check(serde_json::json!({"id": 1, "auth": {"token": "t"}}), &["id"], "invalid type");
        check(serde_json::json!({"id": "s", "auth": {"token": "t"}, "extra": 1}), &["extra"], "unknown field `extra`");
        assert!(SAMPLE.check(&serde_json::json!({"id": "s", "auth": {"token": "t"}})).is_ok());
    }

    #[test]
    fn a_build_failure_keeps_its_cause() {
        let context =
            BuildContext { data_dir: PathBuf::from("."), clock: Arc::new(crate::SystemClock), failpoints: None };
        let settings = serde_json::json!({"id": "s", "auth": {"token": "t"}});
        let Err(e) = SAMPLE.build("s", &settings, &context) else { panic!("built") };
        assert!(matches!(e, BuildError::Failed(_)) && e.to_string() == "not built", "{e}");
        assert!(format!("{context:?}").contains("data_dir"));
        assert_eq!((SAMPLE.type_name(), SAMPLE.title(), SAMPLE.capabilities()), ("sample", "Sample", None));
    }
}
