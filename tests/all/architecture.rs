//! The shape docs/ARCHITECTURE.md promises, checked on the source: rooms depend one way (commands
//! → train/scale → engine/info → render/output), and no module imports a module that imports it
//! back — a child and its parent (`mod.rs`) included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every room (top-level module of `src/`) with its layer: a room may use rooms of its own layer
/// or below, never above.
const LAYERS: &[(&str, u8)] = &[
    ("cli", 5),
    ("commands", 4),
    ("bug_report", 3),
    ("diff", 3),
    ("fleet", 3),
    ("saved", 3),
    ("schema", 3),
    ("worker", 3),
    ("scale", 2),
    ("train", 2),
    ("engine", 1),
    ("info", 1),
    ("companion", 1),
    ("process", 0),
    ("progress", 0),
    ("redact", 0),
    ("render", 0),
    ("output", 0),
    ("readable", 0),
    ("stats", 0),
    ("error", 0),
    ("man", 0),
];

/// `src/train/device/cpu.rs` → `engine::device::cpu`; `mod.rs` names its folder.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The paths named by `use` items, with `{a, b::{c}}` groups expanded.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let prefix = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&prefix, &inner[start..], out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(join(prefix, path));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// Every `crate::…` and `super::…` path a file names (in `use` items and inline), and every
/// `use child::…` of its own submodules, made absolute. Comments and unit tests are left out: a
/// doc comment that names a module is not a use of it.
fn referenced_paths(module: &str, text: &str) -> Vec<String> {
    // Unit tests (`mod tests`, last in a file) are not part of the module's shape.
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let text: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect();
    let text = text.as_str();
    let mut raw = Vec::new();
    for item in text.split(';') {
        let item = item.trim_start();
        let item = item.strip_prefix("pub ").unwrap_or(item);
        if let Some(tree) = item.strip_prefix("use ") {
            expand("", tree, &mut raw);
        }
    }
    for start in ["crate::", "super::"] {
        for (i, _) in text.match_indices(start) {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            raw.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    let parent: Vec<&str> = module.split("::").collect();
    raw.into_iter()
        .filter_map(|path| {
            let mut parts: Vec<&str> = path.split("::").collect();
            let mut base: Vec<&str> = match parts.first() {
                Some(&"crate") => Vec::new(),
                Some(&"super") => parent[..parent.len().saturating_sub(1)].to_vec(),
                // `use child::…`: relative to this module (a path to anything else resolves to
                // no module of the crate, and is dropped later).
                Some(first) if !["std", "self"].contains(first) => {
                    let mut base = parent.clone();
                    base.push("");
                    base
                }
                _ => return None,
            };
            if base.last() == Some(&"") {
                base.pop();
            } else {
                parts.remove(0);
            }
            while parts.first() == Some(&"super") {
                base.pop();
                parts.remove(0);
            }
            base.extend(parts);
            Some(base.join("::"))
        })
        .collect()
}

/// The longest prefix of `path` that is a module of the crate.
fn owning_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// Module → the modules it names (itself and its own submodules left out).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(&crate::util::in_repo("src")).to_path_buf();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let files: Vec<(String, String)> = files
        .into_iter()
        .filter(|f| !f.starts_with(src.join("bin")) && !f.ends_with("main.rs"))
        .filter(|f| !f.ends_with("lib.rs"))
        .map(|f| {
            let module = module_of(f.strip_prefix(&src).unwrap());
            (module, std::fs::read_to_string(&f).unwrap())
        })
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    files
        .iter()
        .map(|(module, text)| {
            let used = referenced_paths(module, text)
                .iter()
                .filter_map(|path| owning_module(path, &modules))
                .filter(|used| used != module)
                .collect();
            (module.clone(), used)
        })
        .collect()
}

#[test]
fn rooms_depend_one_way() {
    let layer: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let room = |module: &str| module.split("::").next().unwrap().to_string();
    let mut wrong = Vec::new();
    for (module, used) in import_graph() {
        let from = layer
            .get(room(&module).as_str())
            .unwrap_or_else(|| panic!("{module} is in no layer: add its room to LAYERS"));
        for target in used {
            let to = layer[room(&target).as_str()];
            if to > *from {
                wrong.push(format!("{module} uses {target}, a room above it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_two_jobs_share_only_the_engine() {
    // `train` (train-compare) and `scale` are two jobs on `engine`: neither reaches into the other.
    let room = |module: &str| module.split("::").next().unwrap().to_string();
    let mut wrong = Vec::new();
    for (module, used) in import_graph() {
        for target in used {
            let (from, to) = (room(&module), room(&target));
            if (from == "train" && to == "scale") || (from == "scale" && to == "train") {
                wrong.push(format!("{module} uses {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = import_graph();
    // Depth-first search for a cycle, reporting the first one found.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if !done.insert(module.to_string()) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_checker_sees_imports() {
    let paths = referenced_paths(
        "train::verdict",
        "use super::results::{DeviceResult, TrainCompareReport};\nuse crate::readable::micros;\nfn f() { crate::info::cpu::probe(); }",
    );
    for expected in [
        "train::results::DeviceResult",
        "readable::micros",
        "info::cpu::probe",
    ] {
        assert!(paths.iter().any(|p| p == expected), "{expected}: {paths:?}");
    }
    // A parent's re-export of its child, and the child's use of its parent: both are edges, so
    // that a mod.rs ↔ child loop is a cycle like any other.
    let parent = referenced_paths("train", "pub use results::TrainCompareReport;\n// crate::x");
    assert_eq!(parent, ["train::results::TrainCompareReport"]);
    let child = referenced_paths("train::results", "use super::SyncPolicy;");
    assert!(child.iter().all(|p| p == "train::SyncPolicy"), "{child:?}");
}
