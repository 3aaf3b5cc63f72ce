//! The plugins the sandbox is tested with, shared by the host's tests and the CLI's (which
//! include this file with `#[path]`): the crates of `plugins/testdata/`, built once per test
//! binary, and hostile components no compiler would emit, written in the component text
//! format: they export the `switchyard:policy@0.1.0` world (its types declared structurally),
//! but lie about sizes, alias strings, and spread memory over several core modules.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The plugins workspace's components, built once per test binary (a no-op when `tests/run`
/// built them).
pub fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let plugins = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|dir| dir.join("plugins/Cargo.toml").is_file())
            .expect("the checkout holds plugins/")
            .join("plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(plugins.join("Cargo.toml"))
            .output()
            .expect("run cargo");
        assert!(
            output.status.success(),
            "building the plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        plugins.join("target/wasm32-wasip2/release")
    })
}

/// The component of the plugins-workspace crate `crate_name`.
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path = built().join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// One hostile plugin; its name is the kebab-case of the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Two memories in two core modules, each grown to 20 MiB: within a per-memory cap of
    /// 32 MiB, over a per-evaluation one.
    TwoMemories,
    /// A deny with 1,000,000 empty reasons (8 MB of list, no text at all).
    EmptyFlood,
    /// A deny with 2,048 reasons that all point at one 1 MiB string.
    AliasedReasons,
    /// A deny whose reason holds a newline and terminal escapes: it would print a forged
    /// "policy naming: allow" line and clear the screen.
    ForgedLine,
    /// `describe` lists 30,000,000 steps.
    EndlessSteps,
    /// `describe` returns a 30 MiB settings schema.
    HugeSchema,
    /// `describe` lists no steps: bound to a namespace, it would never be asked.
    NoSteps,
}

impl Hostile {
    pub const ALL: [Hostile; 7] = [
        Hostile::TwoMemories,
        Hostile::EmptyFlood,
        Hostile::AliasedReasons,
        Hostile::ForgedLine,
        Hostile::EndlessSteps,
        Hostile::HugeSchema,
        Hostile::NoSteps,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hostile::TwoMemories => "two-memories",
            Hostile::EmptyFlood => "empty-flood",
            Hostile::AliasedReasons => "aliased-reasons",
            Hostile::ForgedLine => "forged-line",
            Hostile::EndlessSteps => "endless-steps",
            Hostile::HugeSchema => "huge-schema",
            Hostile::NoSteps => "no-steps",
        }
    }

    /// Whether it is refused when loaded (its `describe`), rather than when it evaluates.
    pub fn refused_at_load(self) -> bool {
        matches!(
            self,
            Hostile::EndlessSteps | Hostile::HugeSchema | Hostile::NoSteps
        )
    }

    /// The component, as bytes a host loads.
    pub fn component(self) -> Vec<u8> {
        wat::parse_str(self.text()).unwrap_or_else(|err| panic!("{}: {err}", self.name()))
    }

    /// Where big data lives in the main module's memory (below it: the descriptor, the
    /// decision, and the bump allocator the host lowers the context into).
    const BIG: u32 = 128 << 10;

    fn text(self) -> String {
        const MIB: u32 = 1 << 20;
        let (mut steps_ptr, mut steps_len) = (72, 5);
        let (mut schema_ptr, mut schema_len) = (64, 2);
        let mut data_end = Self::BIG;
        let evaluate = match self {
            Hostile::TwoMemories => format!(
                "(drop (memory.grow (i32.const {pages})))
                 (if (i32.eq (call $grow_big (i32.const {pages})) (i32.const -1))
                   (then unreachable))
                 {allow}",
                pages = 20 * MIB / 65536,
                allow = Self::ALLOW
            ),
            Hostile::EmptyFlood => {
                data_end += 8 * 1_000_000;
                Self::deny(Self::BIG, 1_000_000)
            }
            Hostile::AliasedReasons => {
                let list = Self::BIG + MIB;
                data_end = list + 2048 * 8;
                format!(
                    "(local $i i32)
                     (memory.fill (i32.const {big}) (i32.const 97) (i32.const {mib}))
                     (block $done (loop $next
                       (br_if $done (i32.eq (local.get $i) (i32.const 2048)))
                       (i32.store (i32.add (i32.const {list}) (i32.mul (local.get $i) (i32.const 8)))
                                  (i32.const {big}))
                       (i32.store (i32.add (i32.const {list_len}) (i32.mul (local.get $i) (i32.const 8)))
                                  (i32.const {mib}))
                       (local.set $i (i32.add (local.get $i) (i32.const 1)))
                       (br $next)))
                     {deny}",
                    big = Self::BIG,
                    mib = MIB,
                    list = list,
                    list_len = list + 4,
                    deny = Self::deny(list, 2048)
                )
            }
            Hostile::ForgedLine => {
                // One string at 160, its (ptr, len) at 152.
                format!(
                    "(i32.store (i32.const 152) (i32.const 160))
                     (i32.store (i32.const 156) (i32.const {len}))
                     {deny}",
                    len = Self::FORGED.len(),
                    deny = Self::deny(152, 1)
                )
            }
            Hostile::EndlessSteps => {
                (steps_ptr, steps_len) = (Self::BIG, 30_000_000);
                data_end += 30_000_000;
                Self::ALLOW.to_owned()
            }
            Hostile::HugeSchema => {
                (schema_ptr, schema_len) = (Self::BIG, 30 * MIB);
                data_end += 30 * MIB;
                Self::ALLOW.to_owned()
            }
            Hostile::NoSteps => {
                steps_len = 0;
                Self::ALLOW.to_owned()
            }
        };
        let pages = data_end.div_ceil(65536);
        let name = self.name();
        format!(
            r#"(component
  (core module $big
    (memory (export "memory") 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  (core instance $big (instantiate $big))
  (core module $main
    (import "big" "grow" (func $grow_big (param i32) (result i32)))
    (memory (export "memory") {pages})
    (global $bump (mut i32) (i32.const 4096))
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (local.get $p))
    (data (i32.const 16) "{name}")
    (data (i32.const 48) "0.1.0")
    (data (i32.const 64) "{{}}")
    (data (i32.const 72) "\00\01\02\03\04")
    (data (i32.const 160) "{forged}")
    (func (export "describe") (result i32)
      (i32.store (i32.const 80) (i32.const 16))
      (i32.store (i32.const 84) (i32.const {name_len}))
      (i32.store (i32.const 88) (i32.const 48))
      (i32.store (i32.const 92) (i32.const 5))
      (i32.store (i32.const 96) (i32.const {steps_ptr}))
      (i32.store (i32.const 100) (i32.const {steps_len}))
      (i32.store (i32.const 104) (i32.const {schema_ptr}))
      (i32.store (i32.const 108) (i32.const {schema_len}))
      (i32.const 80))
    (func (export "evaluate") (param i32) (result i32)
      {evaluate}))
  (core instance $main (instantiate $main (with "big" (instance $big))))
  {types}
  (func $describe (result $descriptor)
    (canon lift (core func $main "describe") (memory (core memory $main "memory"))
      (realloc (core func $main "cabi_realloc"))))
  (func $evaluate (param "context" $context) (result $decision)
    (canon lift (core func $main "evaluate") (memory (core memory $main "memory"))
      (realloc (core func $main "cabi_realloc"))))
  (export "describe" (func $describe))
  (export "evaluate" (func $evaluate)))"#,
            name_len = name.len(),
            forged = Self::FORGED_WAT,
            types = Self::TYPES,
        )
    }

    /// The decision record at 128: allow, no warnings.
    const ALLOW: &'static str = "(i32.store8 (i32.const 128) (i32.const 0))
       (i32.store (i32.const 140) (i32.const 0))
       (i32.store (i32.const 144) (i32.const 0))
       (i32.const 128)";

    /// The decision record at 128: deny with the list of `len` strings at `list`.
    fn deny(list: u32, len: u32) -> String {
        format!(
            "(i32.store8 (i32.const 128) (i32.const 1))
             (i32.store (i32.const 132) (i32.const {list}))
             (i32.store (i32.const 136) (i32.const {len}))
             (i32.store (i32.const 140) (i32.const 0))
             (i32.store (i32.const 144) (i32.const 0))
             (i32.const 128)"
        )
    }

    const FORGED: &'static str = "ok\npolicy naming 0.1.0: allow\u{1b}[2J";
    const FORGED_WAT: &'static str = "ok\\0apolicy naming 0.1.0: allow\\1b[2J";

    /// The contract's types, declared structurally and exported so the functions may use them.
    const TYPES: &'static str = r#"
  (type $step' (enum "snapshot" "create-database" "swap-pointer" "deploy-service" "cleanup"))
  (export $step "step" (type $step'))
  (type $snapshot-facts' (record (field "id" string) (field "source-db" string)
    (field "created-at" s64) (field "age-seconds" u64) (field "allocated-storage-gib" u32)
    (field "engine" string) (field "engine-version" string) (field "taken-by-this-execution" bool)))
  (export $snapshot-facts "snapshot-facts" (type $snapshot-facts'))
  (type $database-facts' (record (field "id" string) (field "instance-class" string)
    (field "allocated-storage-gib" u32) (field "engine" string) (field "engine-version" string)
    (field "region" string) (field "active" bool) (field "in-flight" bool) (field "final-snapshot" bool)))
  (export $database-facts "database-facts" (type $database-facts'))
  (type $service-facts' (record (field "cluster" string) (field "service" string)
    (field "container" string) (field "current-image" string) (field "new-image" string)))
  (export $service-facts "service-facts" (type $service-facts'))
  (type $context' (record (field "step" $step) (field "namespace" string) (field "customer" string)
    (field "project" string) (field "environment" string) (field "region" string) (field "now" s64)
    (field "execution-id" string) (field "source-namespace" (option string))
    (field "snapshot" (option $snapshot-facts)) (field "source-db" (option $database-facts))
    (field "target-db" (option $database-facts)) (field "current-pointer" (option string))
    (field "new-pointer" (option string)) (field "service" (option $service-facts))
    (field "current-version" (option string)) (field "target-version" (option string))
    (field "plan" (option string)) (field "settings" string)))
  (export $context "context" (type $context'))
  (type $verdict' (variant (case "allow") (case "deny" (list string))))
  (export $verdict "verdict" (type $verdict'))
  (type $decision' (record (field "verdict" $verdict) (field "warnings" (list string))))
  (export $decision "decision" (type $decision'))
  (type $descriptor' (record (field "name" string) (field "version" string)
    (field "steps" (list $step)) (field "settings-schema" string)))
  (export $descriptor "descriptor" (type $descriptor'))"#;
}
