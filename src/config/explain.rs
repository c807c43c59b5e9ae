//! Where each setting came from, and its value fit to print: `crossprov config check` lists
//! them all, `serve` logs the ones that differ from the defaults.

use std::collections::BTreeMap;
use std::fmt;

use config::{Source, Value, ValueKind};
use secrecy::ExposeSecret;

use super::{Overrides, DEFAULTS, ENV_PREFIX};

/// Settings never printed as they are. The URLs keep everything but their password (a
/// unit test holds this list to the `SecretString` fields of `Settings`).
const SECRET_URLS: &[&str] = &["database.url", "mail.smtp_url"];
const SECRETS: &[&str] = &["mail.smtp_password", "evidence.s3_secret_access_key"];

/// What stands in for a secret.
const REDACTED: &str = "[REDACTED]";

/// The layer a setting's value came from; each later one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(String),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(path) => write!(f, "file {path}"),
            Self::Env(var) => write!(f, "env {var}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// One setting as it will be used: its key, its value as JSON (secrets redacted), its origin.
#[derive(Debug, Clone)]
pub struct Shown {
    pub key: String,
    pub value: String,
    pub origin: Origin,
    /// The value equals the built-in default (whatever layer restated it).
    pub is_default: bool,
}

/// Every setting, sorted by key.
#[derive(Debug, Clone, Default)]
pub struct Explained(Vec<Shown>);

impl Explained {
    /// `file`: the settings file as given (the `config` crate names it relative to the
    /// working directory).
    pub(super) fn new(
        built: &config::Config,
        overrides: &Overrides,
        file: Option<&std::path::Path>,
    ) -> Result<Self, config::ConfigError> {
        let defaults = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()?;
        let mut default_values = BTreeMap::new();
        flatten(String::new(), defaults.collect()?, &mut default_values);
        let mut values = BTreeMap::new();
        flatten(String::new(), built.collect()?, &mut values);
        let mut shown = Vec::with_capacity(values.len());
        for (key, value) in values {
            let origin = origin(&key, &value, overrides, file);
            let json = as_json(&value);
            let is_default = default_values.get(&key).map(as_json).as_ref() == Some(&json);
            shown.push(Shown {
                value: printable(&key, &json),
                key,
                origin,
                is_default,
            });
        }
        Ok(Self(shown))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Shown> {
        self.0.iter()
    }

    /// `key=value` for every setting that differs from its default, separated by spaces.
    pub fn non_default_line(&self) -> String {
        self.iter()
            .filter(|s| !s.is_default)
            .map(|s| format!("{}={}", s.key, s.value))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Leaves by dotted key; an empty table is a leaf of its own (`sla.provinces = {}`).
fn flatten(prefix: String, table: config::Map<String, Value>, out: &mut BTreeMap<String, Value>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value.kind {
            ValueKind::Table(inner) if !inner.is_empty() => flatten(key, inner, out),
            _ => {
                out.insert(key, value);
            }
        }
    }
}

fn origin(
    key: &str,
    value: &Value,
    overrides: &Overrides,
    file: Option<&std::path::Path>,
) -> Origin {
    let flag = match key {
        "server.listen" if overrides.listen.is_some() => Some("--listen"),
        "database.url" if overrides.database_url.is_some() => Some("--database-url"),
        _ => None,
    };
    if let Some(flag) = flag {
        return Origin::Flag(flag);
    }
    match value.origin() {
        None => Origin::Default,
        // The `config` crate's name for its environment source.
        Some("the environment") => Origin::Env(env_var(key)),
        Some(other) => {
            Origin::File(file.map_or_else(|| other.to_owned(), |f| f.display().to_string()))
        }
    }
}

/// The variable that sets `key`: `database.url` is `CROSSPROV_DATABASE__URL`.
fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}_{}", key.replace('.', "__").to_uppercase())
}

fn as_json(value: &Value) -> serde_json::Value {
    value
        .clone()
        .try_deserialize::<serde_json::Value>()
        .unwrap_or(serde_json::Value::Null)
}

fn printable(key: &str, value: &serde_json::Value) -> String {
    match value.as_str() {
        Some(url) if SECRET_URLS.contains(&key) => serde_json::json!(redacted_url(url)).to_string(),
        Some(secret) if SECRETS.contains(&key) && !secret.is_empty() => {
            serde_json::json!(REDACTED).to_string()
        }
        _ => value.to_string(),
    }
}

/// A URL without its password (`postgres://crossprov:[REDACTED]@db/crossprov`), also one
/// given as a `password=` query parameter; anything else unchanged.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}={REDACTED}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl super::Settings {
    /// The database URL the settings name, without its password: fit for a log line.
    pub fn shown_database_url(&self) -> String {
        redacted_url(self.database_url().expose_secret())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Settings;

    #[test]
    fn a_url_loses_only_its_password() {
        for (given, shown) in [
            (
                "postgres://crossprov:hunter2@db:5432/crossprov",
                "postgres://crossprov:[REDACTED]@db:5432/crossprov",
            ),
            (
                "postgres://db/crossprov?user=x&password=hunter2",
                "postgres://db/crossprov?user=x&password=[REDACTED]",
            ),
            (
                "smtp://mailer:p@ss@mail:587",
                "smtp://mailer:[REDACTED]@mail:587",
            ),
            ("smtp://mail:25", "smtp://mail:25"),
            (
                "sqlite:///var/lib/crossprov/crossprov.db",
                "sqlite:///var/lib/crossprov/crossprov.db",
            ),
            ("data/crossprov.db", "data/crossprov.db"),
        ] {
            assert_eq!(redacted_url(given), shown);
        }
    }

    /// Every string setting set to a marker: exactly the ones `Settings`' Debug hides (its
    /// `SecretString`s) must be the ones this module redacts.
    #[test]
    fn the_redacted_keys_are_the_secret_fields() {
        let defaults = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .unwrap();
        let mut leaves = BTreeMap::new();
        flatten(String::new(), defaults.collect().unwrap(), &mut leaves);
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        let mut marked = Vec::new();
        for (key, value) in &leaves {
            if !matches!(value.kind, ValueKind::String(_)) {
                continue;
            }
            let marker = format!("marker-{}", marked.len());
            let trial = builder
                .clone()
                .set_override(key.as_str(), marker.as_str())
                .unwrap();
            // Enums refuse a marker: they are no secret.
            if trial
                .build_cloned()
                .unwrap()
                .try_deserialize::<Settings>()
                .is_ok()
            {
                builder = trial;
                marked.push((key.clone(), marker));
            }
        }
        let settings: Settings = builder.build().unwrap().try_deserialize().unwrap();
        let debug = format!("{settings:?}");
        let hidden: Vec<&str> = marked
            .iter()
            .filter(|(_, marker)| !debug.contains(&format!("\"{marker}\"")))
            .map(|(key, _)| key.as_str())
            .collect();
        let mut redacted: Vec<&str> = SECRET_URLS.iter().chain(SECRETS).copied().collect();
        redacted.sort();
        assert_eq!(hidden, redacted);
    }
}
