//! Configuration: coded defaults, then a TOML file (`--config FILE`, else `./obmen.toml` when
//! present), then `OBMEN_*` environment variables.
//!
//! Every key can be set from the environment: the variable name is `OBMEN_` followed by the key
//! path in upper case with `__` between a section and its key, e.g. `OBMEN_LISTEN`,
//! `OBMEN_DATABASE_URL`, `OBMEN_EXCHANGE_USER`, `OBMEN_EXCHANGE__FILE_LIMIT`,
//! `OBMEN_LIMITS__MAX_BODY_BYTES`. Arrays and tables are given in TOML syntax
//! (`OBMEN_EXCHANGE__EXPORT_STATUSES='["N", "P"]'`). A few keys also have a fixed short name
//! (`OBMEN_PUSH_URL`, `OBMEN_HOOKS_EXPORT`, …, see [`FIXED_ENV`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use exchange::settings::ExchangeSettings;
use serde::{Deserialize, Serialize};

/// The commented example configuration with every default (`obmen config example`).
pub const EXAMPLE: &str = include_str!("../../../config/obmen.example.toml");

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "obmen.toml";

/// Keys that have no default (absent means "not set") but may come from the environment.
const OPTIONAL_KEYS: &[&[&str]] = &[
    &["exchange_password"],
    &["api_token"],
    &["webhook", "url"],
    &["webhook", "secret"],
    &["exchange", "currency"],
    &["push", "url"],
    &["push", "user"],
    &["push", "password"],
    &["hooks", "export"],
    &["hooks", "import"],
];

/// Fixed environment names of some keys (besides the generic `OBMEN_SECTION__KEY`): variable,
/// section, key.
pub const FIXED_ENV: &[(&str, &str, &str)] = &[
    ("OBMEN_PUSH_URL", "push", "url"),
    ("OBMEN_PUSH_USER", "push", "user"),
    ("OBMEN_PUSH_PASSWORD", "push", "password"),
    ("OBMEN_PUSH_FORMAT", "push", "format"),
    ("OBMEN_HOOKS_EXPORT", "hooks", "export"),
    ("OBMEN_HOOKS_IMPORT", "hooks", "import"),
];

/// A secret string: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The whole configuration of `obmen serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Database: a SQLite file path or `sqlite:` URL (created and migrated on start).
    pub database_url: String,
    /// The login 1C uses for the exchange.
    pub exchange_user: String,
    /// The exchange password; when unset, one is generated on first start and stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_password: Option<Secret>,
    /// Bearer token of the store API; when unset the API answers 401 to everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<Secret>,
    /// Name of the session cookie handed to 1C at `checkauth`.
    pub cookie_name: String,
    /// Hours an exchange session (cookie) stays valid.
    pub session_hours: u32,
    /// Size limits against hostile input.
    pub limits: Limits,
    /// Import and export pacing.
    pub pacing: Pacing,
    /// Lists 1C fetches with `mode=info`.
    pub info: InfoLists,
    /// Webhook to the store on status changes from 1C.
    pub webhook: Webhook,
    /// The sale exchange: what is exported and how, and the status mapping.
    pub exchange: ExchangeSettings,
    /// Real-time push of orders to a 1C HTTP service (on when `push.url` is set).
    pub push: crate::push::PushConfig,
    /// Export and import hook scripts.
    pub hooks: crate::hooks::HooksConfig,
}

/// Size limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted (one `mode=file` chunk or one API request), in bytes.
    pub max_body_bytes: u64,
    /// Largest file assembled from chunks, in bytes.
    pub max_upload_bytes: u64,
    /// Largest total unpacked size of one zip archive, in bytes.
    pub max_unzipped_bytes: u64,
    /// Most entries in one zip archive.
    pub max_zip_entries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 20,
            max_upload_bytes: 1 << 30,
            max_unzipped_bytes: 1 << 30,
            max_zip_entries: 1000,
        }
    }
}

/// Import and export pacing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pacing {
    /// Seconds one `mode=import` request may spend applying documents before it answers
    /// `progress` (1C then calls again and the import continues where it stopped).
    pub import_slice_seconds: u64,
    /// Most root items (documents or containers) one `mode=import` request applies; 0 = no
    /// limit besides the time.
    pub import_slice_items: u64,
    /// Orders read from the database per page while `mode=query` streams its answer (a few
    /// pages are in memory at once, so this bounds the peak memory of a large answer).
    pub query_page_size: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            import_slice_seconds: 20,
            import_slice_items: 0,
            query_page_size: 250,
        }
    }
}

/// The lookup lists of `mode=info` besides the statuses (which come from the status mapping).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfoLists {
    /// Payment systems.
    pub payment_systems: Vec<PaymentSystem>,
    /// Delivery services.
    pub delivery_services: Vec<DeliveryService>,
}

/// A payment system shown to 1C.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSystem {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind: `cash`, `cashless` or `acquiring`.
    #[serde(default)]
    pub kind: PaymentKind,
}

/// The kind of a payment system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentKind {
    /// Cash.
    #[default]
    Cash,
    /// Bank transfer.
    Cashless,
    /// Card acquiring.
    Acquiring,
}

/// A delivery service shown to 1C.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryService {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// Webhook settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhook {
    /// URL receiving a POST per status change from 1C; unset disables the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HMAC-SHA256 key for the `X-Obmen-Signature` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Milliseconds one POST may take before it counts as failed (and is retried).
    pub timeout_ms: u64,
    /// Delay before the second attempt, in milliseconds; doubles with every attempt.
    pub base_delay_ms: u64,
    /// Upper bound of the delay between attempts, in milliseconds.
    pub max_delay_ms: u64,
}

impl Default for Webhook {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            timeout_ms: 10_000,
            base_delay_ms: 1000,
            max_delay_ms: 600_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            database_url: "./obmen.db".to_owned(),
            exchange_user: "1c".to_owned(),
            exchange_password: None,
            api_token: None,
            cookie_name: "PHPSESSID".to_owned(),
            session_hours: 24,
            limits: Limits::default(),
            pacing: Pacing::default(),
            info: InfoLists::default(),
            webhook: Webhook::default(),
            exchange: ExchangeSettings::default(),
            push: crate::push::PushConfig::default(),
            hooks: crate::hooks::HooksConfig::default(),
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, the file (`path`, else `./obmen.toml` if present),
    /// then the environment. Returns the file actually read, if any. Relative hook paths are
    /// made relative to the file's directory.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(Self, Option<PathBuf>)> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.exists()),
        };
        let text = match &file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?,
            ),
            None => None,
        };
        let mut config =
            Self::from_sources(text.as_deref(), std::env::vars()).with_context(|| match &file {
                Some(p) => format!("invalid configuration (file {})", p.display()),
                None => "invalid configuration".to_owned(),
            })?;
        if let Some(dir) = file.as_deref().and_then(Path::parent) {
            config.hooks.resolve(dir);
        }
        Ok((config, file))
    }

    /// Builds the configuration from TOML text (if any) and environment variables.
    pub fn from_sources(
        toml_text: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let defaults = toml::Value::try_from(Self::default()).context("defaults")?;
        let mut merged = defaults.clone();
        if let Some(text) = toml_text {
            let file: toml::Value = toml::from_str(text)?;
            merge(&mut merged, file);
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("OBMEN_") else {
                continue;
            };
            let path: Vec<String> = match FIXED_ENV.iter().find(|(n, _, _)| *n == name) {
                Some((_, section, k)) => vec![(*section).to_owned(), (*k).to_owned()],
                None => key.split("__").map(str::to_ascii_lowercase).collect(),
            };
            apply_env(&mut merged, &defaults, &path, &value)
                .with_context(|| format!("environment variable {name}"))?;
        }
        let text = toml::to_string(&merged).context("re-serialising the configuration")?;
        let de = toml::Deserializer::new(&text);
        let config: Self =
            serde_path_to_error::deserialize(de).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(config)
    }

    /// Every problem of the configuration, empty when it is fine.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            ));
        }
        if self.database_url.trim().is_empty() {
            problems.push("database_url is empty".to_owned());
        }
        if self.exchange_user.trim().is_empty() {
            problems.push("exchange_user is empty".to_owned());
        }
        if self
            .exchange_password
            .as_ref()
            .is_some_and(|p| p.expose().is_empty())
        {
            problems.push("exchange_password is set but empty".to_owned());
        }
        if self
            .api_token
            .as_ref()
            .is_some_and(|p| p.expose().len() < 8)
        {
            problems.push("api_token must be at least 8 characters".to_owned());
        }
        if self.cookie_name.is_empty()
            || !self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(format!(
                "cookie_name {:?} must be letters, digits, '_' or '-'",
                self.cookie_name
            ));
        }
        if self.session_hours == 0 {
            problems.push("session_hours must be positive".to_owned());
        }
        let l = &self.limits;
        if l.max_body_bytes == 0 || l.max_upload_bytes == 0 || l.max_unzipped_bytes == 0 {
            problems.push("limits must be positive".to_owned());
        }
        if l.max_zip_entries == 0 {
            problems.push("limits.max_zip_entries must be positive".to_owned());
        }
        if self.exchange.file_limit > l.max_body_bytes {
            problems.push(format!(
                "exchange.file_limit ({}) exceeds limits.max_body_bytes ({})",
                self.exchange.file_limit, l.max_body_bytes
            ));
        }
        if self.pacing.query_page_size == 0 || self.pacing.import_slice_seconds == 0 {
            problems.push("pacing values must be positive".to_owned());
        }
        if let Some(url) = &self.webhook.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("webhook.url {url:?} must be an http(s) URL"));
            }
        }
        if self.webhook.timeout_ms == 0 || self.webhook.base_delay_ms == 0 {
            problems
                .push("webhook.timeout_ms and webhook.base_delay_ms must be positive".to_owned());
        }
        if self.webhook.base_delay_ms > self.webhook.max_delay_ms {
            problems.push("webhook.base_delay_ms must not exceed webhook.max_delay_ms".to_owned());
        }
        if let Err(e) = self.exchange.validate() {
            problems.push(format!("exchange: {e}"));
        }
        problems.extend(self.push.problems());
        problems.extend(self.hooks.problems());
        problems
    }
}

/// Deep-merges `overlay` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets `path` in `merged` from an environment value, typed after the default at that path.
/// Variables naming no known key are ignored (other tools share the `OBMEN_` prefix).
fn apply_env(
    merged: &mut toml::Value,
    defaults: &toml::Value,
    path: &[String],
    raw: &str,
) -> anyhow::Result<()> {
    let mut default = Some(defaults);
    for part in path {
        default = default.and_then(|d| d.get(part.as_str()));
    }
    let value = match default {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_owned()),
        Some(toml::Value::Boolean(_)) => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
            "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
            _ => anyhow::bail!("{raw:?} is not a boolean"),
        },
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{raw:?} is not an integer"))?,
        ),
        Some(_) => {
            let doc: toml::Table = toml::from_str(&format!("v = {raw}"))
                .map_err(|e| anyhow::anyhow!("not a TOML value: {e}"))?;
            doc.get("v")
                .cloned()
                .unwrap_or(toml::Value::String(raw.to_owned()))
        }
        None => {
            let known = OPTIONAL_KEYS
                .iter()
                .any(|k| k.len() == path.len() && k.iter().zip(path).all(|(a, b)| a == b));
            if !known {
                return Ok(());
            }
            toml::Value::String(raw.to_owned())
        }
    };
    let mut node = merged;
    for (i, part) in path.iter().enumerate() {
        let table = node
            .as_table_mut()
            .ok_or_else(|| anyhow::anyhow!("{} is not a section", path[..i].join(".")))?;
        if i + 1 == path.len() {
            table.insert(part.clone(), value);
            return Ok(());
        }
        node = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

/// `obmen config …` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a commented configuration file with every default.
    Example,
    /// Check the configuration (file and environment); exit 1 on any problem.
    Check(CheckArgs),
}

/// Arguments of `obmen config check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Configuration file (default: ./obmen.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs `obmen config …`.
pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Example => {
            print!("{EXAMPLE}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let (config, file) = match Config::load(args.config.as_deref()) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("configuration error: {e:#}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let mut problems = config.problems();
            if let Err(e) = crate::hooks::Hooks::load(&config.hooks) {
                problems.push(format!("{e:#}"));
            }
            let source = file.map_or_else(|| "defaults".to_owned(), |p| p.display().to_string());
            if problems.is_empty() {
                println!("configuration OK ({source} + environment)");
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    eprintln!("configuration error: {p}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn example_parses_to_the_defaults() {
        let parsed = Config::from_sources(Some(EXAMPLE), env(&[])).unwrap();
        assert_eq!(parsed, Config::default());
        assert!(parsed.problems().is_empty(), "{:?}", parsed.problems());
    }

    #[test]
    fn environment_overrides_file_and_defaults() {
        let file = "listen = \"0.0.0.0:1\"\n[exchange]\nzip = false\n";
        let c = Config::from_sources(
            Some(file),
            env(&[
                ("OBMEN_LISTEN", "127.0.0.1:9000"),
                ("OBMEN_EXCHANGE_PASSWORD", "123456"),
                ("OBMEN_EXCHANGE__FILE_LIMIT", "1000"),
                ("OBMEN_EXCHANGE__EXPORT_STATUSES", "[\"P\"]"),
                ("OBMEN_API_TOKEN", "secret-token"),
                ("OBMEN_SOMETHING_ELSE", "ignored"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000");
        assert!(!c.exchange.zip);
        assert_eq!(c.exchange.file_limit, 1000);
        assert_eq!(c.exchange.export_statuses, vec!["P".to_owned()]);
        assert_eq!(c.exchange_password.unwrap().expose(), "123456");
        assert_eq!(c.api_token.unwrap().expose(), "secret-token");
    }

    #[test]
    fn hook_paths_and_limits_come_from_file_and_environment() {
        let file = "[hooks]\nexport = \"hooks/export.rhai\"\ntimeout_ms = 50\n";
        let c = Config::from_sources(
            Some(file),
            env(&[
                ("OBMEN_HOOKS_IMPORT", "/srv/import.rhai"),
                ("OBMEN_HOOKS__MAX_OPERATIONS", "1000"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.hooks.export.as_deref(),
            Some(Path::new("hooks/export.rhai"))
        );
        assert_eq!(
            c.hooks.import.as_deref(),
            Some(Path::new("/srv/import.rhai"))
        );
        assert_eq!(c.hooks.max_operations, 1000);
        assert_eq!(c.hooks.timeout_ms, 50);
        let c = Config::from_sources(None, env(&[("OBMEN_HOOKS__EXPORT", "x.rhai")])).unwrap();
        assert_eq!(c.hooks.export.as_deref(), Some(Path::new("x.rhai")));
        let c = Config::from_sources(
            Some("[hooks]\nmax_operations = 0\ntimeout_ms = 0\n"),
            env(&[]),
        )
        .unwrap();
        assert!(c.problems().join("\n").contains("hooks.max_operations"));
    }

    #[test]
    fn errors_name_the_key() {
        let err = Config::from_sources(Some("[exchange]\nzip = \"maybe\"\n"), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exchange.zip"), "{err}");
        let err =
            Config::from_sources(None, env(&[("OBMEN_EXCHANGE__FILE_LIMIT", "big")])).unwrap_err();
        assert!(
            format!("{err:#}").contains("OBMEN_EXCHANGE__FILE_LIMIT"),
            "{err:#}"
        );
        let err = Config::from_sources(Some("lisen = \"x\"\n"), env(&[])).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn problems_report_bad_mapping_and_settings() {
        let text = "listen = \"nowhere\"\n[exchange]\nexport_statuses = [\"N\", \"ZZ\"]\n\
                    [[exchange.statuses.entries]]\nname_1c = \"Новый\"\ncode = \"N\"\n\
                    [[exchange.statuses.entries]]\nname_1c = \"новый\"\ncode = \"N1\"\n";
        let c = Config::from_sources(Some(text), env(&[])).unwrap();
        let p = c.problems().join("\n");
        assert!(p.contains("listen"), "{p}");
        assert!(p.contains("\"ZZ\""), "{p}");
        assert!(p.contains("mapped twice"), "{p}");
        assert!(p.contains("Latin"), "{p}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = Config {
            exchange_password: Some(Secret::new("hunter2")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
