//! Just enough of `Cargo.toml` and of `docs/architecture.md` for the tidy rules: the dependency
//! tables of a manifest and the dependency-edges table of the architecture doc.

use std::collections::{BTreeMap, BTreeSet};

/// Which table a dependency is listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `[dependencies]` (or a target-specific `[target.….dependencies]`).
    Normal,
    /// `[dev-dependencies]`.
    Dev,
    /// `[build-dependencies]`.
    Build,
}

/// One entry of a dependency table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    /// The key: the name the code uses (with `-`, as Cargo spells it).
    pub key: String,
    /// The package's real name: `package = "…"` when renamed, else the key.
    pub package: String,
    /// The table it is listed in.
    pub kind: Kind,
    /// `optional = true`.
    pub optional: bool,
    /// Its 1-based line in the manifest.
    pub line: usize,
}

/// The parts of a manifest the tidy rules read.
#[derive(Debug, Default)]
pub struct Manifest {
    /// `[package] name`.
    pub name: String,
    /// Every dependency entry, in order.
    pub deps: Vec<Dep>,
    /// `[package.metadata.cargo-machete] ignored = […]`: dependencies used without being named
    /// in code (say, only to turn a feature on).
    pub unused_allowed: Vec<String>,
    /// Whether the manifest says `[lints] workspace = true`.
    pub workspace_lints: bool,
}

impl Manifest {
    /// The entries of one table.
    pub fn deps_of(&self, kind: Kind) -> impl Iterator<Item = &Dep> {
        self.deps.iter().filter(move |d| d.kind == kind)
    }
}

/// A line without its `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The quoted strings in `text`.
fn strings(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The value of `key = "…"` inside an inline table or a table body.
fn string_field(text: &str, key: &str) -> Option<String> {
    let at = text.find(key)?;
    let rest = text[at + key.len()..].trim_start().strip_prefix('=')?;
    strings(rest).into_iter().next()
}

fn bool_field(text: &str, key: &str) -> bool {
    let compact: String = text.split_whitespace().collect();
    compact.contains(&format!("{key}=true"))
}

/// Parses the dependency tables, the package name, the lints table and cargo-machete's
/// `ignored` list. Inline tables and arrays may span lines.
pub fn parse(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut table = String::new();
    // A statement spanning lines: its first line number and its text so far.
    let mut pending: Option<(usize, String)> = None;
    for (number, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let (line_no, statement) = match pending.take() {
            Some((n, mut s)) => {
                s.push(' ');
                s.push_str(line);
                (n, s)
            }
            None => (number + 1, line.to_string()),
        };
        let opens = statement.matches(['[', '{']).count();
        let closes = statement.matches([']', '}']).count();
        let trimmed = statement.trim();
        if !trimmed.starts_with('[') && opens > closes {
            pending = Some((line_no, statement));
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('[') {
            table = trimmed
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string();
            // `[dependencies.foo]`: a dependency written as a table of its own.
            if let Some((kind, Some(key))) = dep_table(&table) {
                manifest.deps.push(Dep {
                    key: key.clone(),
                    package: key,
                    kind,
                    optional: false,
                    line: line_no,
                });
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            continue;
        };
        let key = key.trim();
        match dep_table(&table) {
            Some((kind, None)) => {
                let name = key
                    .split('.')
                    .next()
                    .unwrap_or(key)
                    .trim_matches('"')
                    .to_string();
                manifest.deps.push(Dep {
                    package: string_field(value, "package").unwrap_or_else(|| name.clone()),
                    key: name,
                    kind,
                    optional: bool_field(value, "optional"),
                    line: line_no,
                });
            }
            Some((_, Some(_))) => {
                if let Some(dep) = manifest.deps.last_mut() {
                    match key {
                        "package" => dep.package = strings(value).concat(),
                        "optional" => dep.optional = value.trim() == "true",
                        _ => {}
                    }
                }
            }
            None => match (table.as_str(), key) {
                ("package", "name") => manifest.name = strings(value).concat(),
                ("lints", "workspace") => manifest.workspace_lints = value.trim() == "true",
                ("package.metadata.cargo-machete", "ignored") => {
                    manifest.unused_allowed = strings(value);
                }
                _ => {}
            },
        }
    }
    manifest
}

/// Whether a table header names a dependency table: its kind, and the dependency's key when the
/// header is `[dependencies.foo]`.
fn dep_table(table: &str) -> Option<(Kind, Option<String>)> {
    let table = table.split_once("'.").map_or(table, |(_, rest)| rest);
    let table = table
        .strip_prefix("target.")
        .map_or(table, |t| t.split_once('.').map_or(t, |(_, rest)| rest));
    let (head, key) = match table.split_once('.') {
        Some((head, key)) => (head, Some(key.trim_matches('"').to_string())),
        None => (table, None),
    };
    let kind = match head {
        "dependencies" => Kind::Normal,
        "dev-dependencies" | "dev_dependencies" => Kind::Dev,
        "build-dependencies" | "build_dependencies" => Kind::Build,
        _ => return None,
    };
    Some((kind, key))
}

/// One row of the dependency-edges table.
#[derive(Debug, PartialEq, Eq)]
pub struct EdgeRow {
    /// The row's 1-based line in the doc.
    pub line: usize,
    /// The workspace crates the row's crate depends on.
    pub deps: BTreeSet<String>,
}

/// The `| crate | depends on |` table under the `### Dependency edges` heading, by crate.
/// Errors name what is wrong with the table itself.
pub fn edges_table(doc: &str) -> Result<BTreeMap<String, EdgeRow>, String> {
    let mut lines = doc.lines().enumerate();
    lines
        .by_ref()
        .find(|(_, l)| l.trim() == "### Dependency edges")
        .ok_or("no `### Dependency edges` section")?;
    let mut rows = BTreeMap::new();
    let mut seen_table = false;
    for (number, line) in lines {
        let line = line.trim();
        if line.starts_with('#') {
            break;
        }
        if !line.starts_with('|') {
            if seen_table {
                break;
            }
            continue;
        }
        seen_table = true;
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [name, deps] = cells[..] else {
            return Err(format!(
                "line {}: a row needs two cells: {line}",
                number + 1
            ));
        };
        if name == "crate" || name.starts_with("---") {
            continue;
        }
        let unquote = |s: &str| s.trim().trim_matches('`').to_string();
        let deps = deps
            .split(',')
            .map(unquote)
            .filter(|d| !d.is_empty())
            .collect();
        let row = EdgeRow {
            line: number + 1,
            deps,
        };
        if rows.insert(unquote(name), row).is_some() {
            return Err(format!("line {}: a second row for {name}", number + 1));
        }
    }
    if rows.is_empty() {
        return Err("the `### Dependency edges` section has no table rows".into());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[package]
name = "demo" # the name
version.workspace = true

[lints]
workspace = true

[dependencies]
rumour-swim.workspace = true
serde = { workspace = true, features = [
    "derive",
] }
wire = { package = "rumour-wire", path = "../rumour-wire" }
extra = { version = "1", optional = true }

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[dependencies.bytes]
workspace = true
optional = true

[dev-dependencies]
proptest.workspace = true

[package.metadata.cargo-machete]
ignored = ["extra"]
"#;

    #[test]
    fn the_manifest_parser_reads_every_dependency_form() {
        let m = parse(MANIFEST);
        assert_eq!(m.name, "demo");
        assert!(m.workspace_lints);
        let normal: Vec<(&str, &str, bool)> = m
            .deps_of(Kind::Normal)
            .map(|d| (d.key.as_str(), d.package.as_str(), d.optional))
            .collect();
        assert_eq!(
            normal,
            vec![
                ("rumour-swim", "rumour-swim", false),
                ("serde", "serde", false),
                ("wire", "rumour-wire", false),
                ("extra", "extra", true),
                ("libc", "libc", false),
                ("bytes", "bytes", true),
            ]
        );
        let dev: Vec<&str> = m.deps_of(Kind::Dev).map(|d| d.key.as_str()).collect();
        assert_eq!(dev, vec!["proptest"]);
        assert_eq!(m.unused_allowed, vec!["extra".to_string()]);
        assert_eq!(m.deps[1].line, 11);
    }

    #[test]
    fn the_edges_table_is_read_row_by_row() {
        let doc = "# x\n### Dependency edges\n\nProse.\n\n| crate | depends on |\n| --- | --- |\n| `a` | |\n| `b` | `a`, `c` |\n\n## Next\n| `z` | |\n";
        let rows = edges_table(doc).expect("a well-formed table");
        assert_eq!(rows.len(), 2);
        assert!(rows["a"].deps.is_empty());
        assert_eq!(
            rows["b"].deps,
            BTreeSet::from(["a".to_string(), "c".to_string()])
        );
        assert_eq!(rows["b"].line, 9);
        assert!(edges_table("no table here").is_err());
    }
}
