use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use switchyard_core::policy::{
    Evaluation, PluginDescriptor, PluginFailure, PolicyContext, PolicyEngine,
};

use crate::error::PolicyError;
use crate::host::{LoadedPlugin, PluginHost};

/// Where an installation's plugins come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A directory of `<name>.cwasm` (precompiled for this machine) and/or `<name>.wasm`
    /// components: `plugins/dist` locally, `/opt/switchyard/plugins` from a Lambda layer.
    Directory(PathBuf),
}

/// The plugins of an installation, loaded once (a Lambda cold start, a CLI run) and evaluated
/// many times. A file that fails to load does not take the others down: the failure is kept
/// and reported, closed, by every step that needs that plugin.
pub struct PluginSet {
    host: PluginHost,
    source: String,
    plugins: BTreeMap<String, LoadedPlugin>,
    broken: BTreeMap<String, String>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet")
            .field("source", &self.source)
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PolicyError + '_ {
    move |source| PolicyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Cargo names artifacts after the crate with `_`; plugins are named with `-`.
fn plugin_name_of(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().replace('_', "-"))
        .unwrap_or_default()
}

impl PluginSet {
    pub fn empty(host: PluginHost) -> Self {
        PluginSet {
            host,
            source: "no plugin source".to_owned(),
            plugins: BTreeMap::new(),
            broken: BTreeMap::new(),
        }
    }

    pub async fn load(host: PluginHost, source: &PluginSource) -> Result<Self, PolicyError> {
        match source {
            PluginSource::Directory(dir) => Self::load_dir(host, dir).await,
        }
    }

    /// Loads every `.cwasm` and `.wasm` in `dir`. For a name with both, the precompiled one
    /// is used, and the component is the fallback when the precompiled one does not fit this
    /// engine (and this build can compile).
    ///
    /// Only a directory that cannot be listed is an error. Each file that cannot be read, is
    /// not a plugin, describes itself under another name than its file's (an impostor), or
    /// shares its name with another file is a broken entry with its reason; the rest load.
    pub async fn load_dir(host: PluginHost, dir: &Path) -> Result<Self, PolicyError> {
        let mut files: BTreeMap<String, Candidates> = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let kind = match path.extension().and_then(|e| e.to_str()) {
                Some("cwasm") => Kind::Precompiled,
                Some("wasm") => Kind::Component,
                _ => continue,
            };
            files
                .entry(plugin_name_of(&path))
                .or_default()
                .add(kind, path);
        }
        let mut set = PluginSet {
            source: dir.display().to_string(),
            ..Self::empty(host)
        };
        for (stem, candidates) in files {
            if let Some((first, second)) = candidates.clash() {
                let err = PolicyError::Duplicate {
                    name: stem.clone(),
                    first: first.display().to_string(),
                    second: second.display().to_string(),
                };
                tracing::error!(target: "switchyard::policy", plugin = %stem, "plugin not loaded: {err}");
                set.broken.insert(stem, format!("{err}: neither is loaded"));
                continue;
            }
            let mut outcome = None;
            for path in candidates.in_order() {
                let loaded = set.load_file(&stem, path).await;
                if let Err(err) = &loaded {
                    tracing::warn!(target: "switchyard::policy", file = %path.display(), "plugin not loaded: {err}");
                }
                let done = loaded.is_ok();
                outcome = Some(loaded);
                if done {
                    break;
                }
            }
            match outcome {
                Some(Ok(plugin)) => {
                    set.plugins.insert(stem, plugin);
                }
                Some(Err(err)) => {
                    set.broken.insert(stem, err.to_string());
                }
                None => {}
            }
        }
        Ok(set)
    }

    async fn load_file(&self, stem: &str, path: &Path) -> Result<LoadedPlugin, PolicyError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let plugin = self.host.load(&path.display().to_string(), &bytes).await?;
        if plugin.descriptor.name != stem {
            return Err(PolicyError::Impostor {
                origin: path.display().to_string(),
                file_name: stem.to_owned(),
                described: plugin.descriptor.name,
            });
        }
        Ok(plugin)
    }

    /// Adds a loaded plugin; two plugins may not share a name.
    pub fn insert(&mut self, plugin: LoadedPlugin) -> Result<(), PolicyError> {
        let name = plugin.descriptor.name.clone();
        if let Some(first) = self.plugins.get(&name) {
            return Err(PolicyError::Duplicate {
                name,
                first: first.origin.clone(),
                second: plugin.origin,
            });
        }
        self.broken.remove(&name);
        self.plugins.insert(name, plugin);
        Ok(())
    }

    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    pub fn descriptors(&self) -> impl Iterator<Item = &PluginDescriptor> {
        self.plugins.values().map(|p| &p.descriptor)
    }

    pub fn get(&self, name: &str) -> Option<&LoadedPlugin> {
        self.plugins.get(name)
    }

    /// Files that did not load, by plugin name, with why.
    pub fn broken(&self) -> &BTreeMap<String, String> {
        &self.broken
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Precompiled,
    Component,
}

/// The files that claim one plugin name.
#[derive(Default)]
struct Candidates {
    precompiled: Vec<PathBuf>,
    components: Vec<PathBuf>,
}

impl Candidates {
    fn add(&mut self, kind: Kind, path: PathBuf) {
        match kind {
            Kind::Precompiled => self.precompiled.push(path),
            Kind::Component => self.components.push(path),
        }
    }

    /// Two files of one kind for one name (`foo_bar.cwasm` and `foo-bar.cwasm`): which one is
    /// meant cannot be known, so neither is used.
    fn clash(&self) -> Option<(&Path, &Path)> {
        [&self.precompiled, &self.components]
            .into_iter()
            .find(|paths| paths.len() > 1)
            .map(|paths| (paths[0].as_path(), paths[1].as_path()))
    }

    fn in_order(&self) -> impl Iterator<Item = &Path> {
        self.precompiled
            .iter()
            .chain(&self.components)
            .map(PathBuf::as_path)
    }
}

#[async_trait::async_trait]
impl PolicyEngine for PluginSet {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        let Some(loaded) = self.plugins.get(plugin) else {
            return Err(match self.broken.get(plugin) {
                Some(detail) => PluginFailure::Unloadable {
                    plugin: plugin.to_owned(),
                    detail: detail.clone(),
                },
                None => PluginFailure::Missing {
                    plugin: plugin.to_owned(),
                    detail: format!("no plugin of that name in {}", self.source),
                },
            });
        };
        if !loaded.descriptor.steps.contains(&context.step) {
            return Ok(None);
        }
        self.host.evaluate(loaded, context).await.map(Some)
    }

    async fn declares_setting(&self, plugin: &str, property: &str) -> bool {
        self.plugins.get(plugin).is_some_and(|loaded| {
            switchyard_core::policy::schema_declares(&loaded.descriptor.settings_schema, property)
        })
    }
}
