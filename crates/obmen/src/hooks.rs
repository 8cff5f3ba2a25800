//! The `[hooks]` section: the export and import scripts (`exchange::hook`) compiled at start-up
//! and run by `mode=query` and push (export) and by the importer (import). See docs/hooks.md.
//!
//! A hook that fails or runs out of operations or time never changes what is sent or applied:
//! the order is left out of the answer (and stays due), the push attempt fails, the incoming
//! document is not applied. The message always starts with `hook <file> line <n>: …`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use commerceml::Document;
use exchange::domain::Order;
use exchange::hook::{Hook, HookError, HookLimits};
use serde::{Deserialize, Serialize};

/// The `[hooks]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Script called for every exported order (`mode=query` and push); relative to the
    /// directory of the config file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<PathBuf>,
    /// Script called for every incoming 1C document before it is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<PathBuf>,
    /// Script operations allowed per call (0 = no limit).
    pub max_operations: u64,
    /// Milliseconds allowed per call (0 = no limit).
    pub timeout_ms: u64,
}

impl Default for HooksConfig {
    fn default() -> Self {
        let limits = HookLimits::default();
        Self {
            export: None,
            import: None,
            max_operations: limits.max_operations,
            timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl HooksConfig {
    /// The limits every call runs under.
    pub fn limits(&self) -> HookLimits {
        HookLimits {
            max_operations: self.max_operations,
            timeout: Duration::from_millis(self.timeout_ms),
        }
    }

    /// Problems of the section (scripts are checked by [`Hooks::load`]), empty when fine.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_operations == 0 && self.timeout_ms == 0 {
            problems.push(
                "hooks.max_operations and hooks.timeout_ms are both 0: a looping hook would \
                 never be stopped"
                    .to_owned(),
            );
        }
        for (key, path) in [("export", &self.export), ("import", &self.import)] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                problems.push(format!("hooks.{key} is set but empty"));
            }
        }
        problems
    }

    /// Makes relative script paths relative to `dir` (the config file's directory).
    pub fn resolve(&mut self, dir: &Path) {
        for path in [&mut self.export, &mut self.import].into_iter().flatten() {
            if path.is_relative() && !path.as_os_str().is_empty() {
                *path = dir.join(&*path);
            }
        }
    }
}

/// The compiled hooks; either may be absent.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// The export hook.
    pub export: Option<Arc<Hook>>,
    /// The import hook.
    pub import: Option<Arc<Hook>>,
}

impl Hooks {
    /// Reads and compiles the configured scripts. An error names the file and, for a script
    /// that does not compile, the line.
    pub fn load(config: &HooksConfig) -> anyhow::Result<Self> {
        let limits = config.limits();
        let compile = |kind: &str, path: &Option<PathBuf>| -> anyhow::Result<Option<Arc<Hook>>> {
            let Some(path) = path else { return Ok(None) };
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the {kind} hook {}", path.display()))?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            let hook = Hook::compile(&name, &source, limits).map_err(|e| {
                anyhow::anyhow!("the {kind} hook {} does not compile: {e}", path.display())
            })?;
            Ok(Some(Arc::new(hook)))
        };
        Ok(Self {
            export: compile("export", &config.export)?,
            import: compile("import", &config.import)?,
        })
    }

    /// Runs the export hook, if any, on an order's document; on error `doc` is unchanged.
    pub fn export(&self, order: &Order, doc: &mut Document) -> Result<(), HookError> {
        match &self.export {
            Some(hook) => hook.on_export(order, doc),
            None => Ok(()),
        }
    }

    /// Runs the import hook, if any, on an incoming document: the document to apply, or the
    /// journal and reply message saying why it is not applied.
    pub fn import<'d>(&self, doc: &'d Document) -> Result<Cow<'d, Document>, String> {
        let Some(hook) = &self.import else {
            return Ok(Cow::Borrowed(doc));
        };
        let mut changed = doc.clone();
        match hook.on_import(&mut changed) {
            Ok(()) => Ok(Cow::Owned(changed)),
            Err(e) => {
                let shown = doc.number.as_deref().or(doc.id.as_deref()).unwrap_or("?");
                tracing::warn!(document = %shown, error = %e, "import hook failed");
                Err(import_message(&e, shown))
            }
        }
    }
}

/// The journal message of an order the export hook kept out of a `query` answer.
pub fn export_message(e: &HookError, number: &str) -> String {
    format!("{e} (order {number} not exported; it stays due)")
}

/// The journal and reply message of a document the import hook kept from being applied.
pub fn import_message(e: &HookError, number: &str) -> String {
    format!("{e} (document {number} not applied)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_config_file() {
        let mut c = HooksConfig {
            export: Some("hooks/export.rhai".into()),
            import: Some("/abs/import.rhai".into()),
            ..HooksConfig::default()
        };
        c.resolve(Path::new("/etc/obmen"));
        assert_eq!(c.export.unwrap(), Path::new("/etc/obmen/hooks/export.rhai"));
        assert_eq!(c.import.unwrap(), Path::new("/abs/import.rhai"));
    }

    #[test]
    fn a_script_that_does_not_compile_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.rhai");
        std::fs::write(&path, "let a = 1;\nlet b = ;\n").unwrap();
        let err = Hooks::load(&HooksConfig {
            export: Some(path.clone()),
            ..HooksConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("hook export.rhai line 2:"), "{err}");
        let err = Hooks::load(&HooksConfig {
            import: Some(dir.path().join("missing.rhai")),
            ..HooksConfig::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("missing.rhai"), "{err:#}");
    }
}
