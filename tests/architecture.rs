//! The house plan of ARCHITECTURE.md, checked on the sources: imports only go down the layers
//! drawn there, sibling modules import each other in no circle, and every C function of
//! `include/reid.h` is defined in `src/ffi/<object>.rs` for its name `reid_<object>_<verb>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The layers of ARCHITECTURE.md's ```layers block: module name → layer (0 = lowest).
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let block = text
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    let mut out = BTreeMap::new();
    for (layer, line) in block.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        for name in line.split_whitespace() {
            assert!(
                out.insert(name.to_string(), layer).is_none(),
                "{name} is listed twice in the layers"
            );
        }
    }
    out
}

/// Every source file of the library (not the CLI) with its module path.
fn library_files() -> Vec<(PathBuf, ModPath)> {
    fn walk(dir: &Path, prefix: &ModPath, out: &mut Vec<(PathBuf, ModPath)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("readable src")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if prefix.is_empty() && name == "bin" {
                    continue;
                }
                let mut sub = prefix.clone();
                sub.push(name);
                walk(&path, &sub, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut module = prefix.clone();
                if name != "mod" && name != "lib" {
                    module.push(name);
                }
                out.push((path, module));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &Vec::new(), &mut out);
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Semi,
    Comma,
    Star,
    Other,
}

/// Rust source as the few tokens the import analysis needs; comments, strings and character
/// literals are dropped.
fn tokens(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == '"' || next == '#') && raw_string_end(&chars, i).is_some() {
            i = raw_string_end(&chars, i).unwrap();
        } else if c == 'b' && next == '"' {
            i = string_end(&chars, i + 1);
        } else if c == '"' {
            i = string_end(&chars, i);
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Other);
        } else {
            out.push(match c {
                ':' if next == ':' => {
                    i += 1;
                    Token::PathSep
                }
                '{' => Token::Open,
                '}' => Token::Close,
                ';' => Token::Semi,
                ',' => Token::Comma,
                '*' => Token::Star,
                _ => Token::Other,
            });
            i += 1;
        }
    }
    out
}

/// The index after a `"…"` string starting at `i`.
fn string_end(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The index after a raw string `r#"…"#` starting at `i`, if one starts there.
fn raw_string_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if chars.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < chars.len() {
        if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(j)
}

/// The paths of one `use` tree starting at `pos` (after `use`), each with the prefix.
fn use_tree(tokens: &[Token], pos: &mut usize, prefix: &[String], out: &mut Vec<ModPath>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*pos) {
            Some(Token::PathSep) => *pos += 1,
            Some(Token::Ident(name)) if name == "as" => {
                *pos += 2;
                out.push(path);
                return;
            }
            Some(Token::Ident(name)) => {
                path.push(name.clone());
                *pos += 1;
            }
            Some(Token::Star) => {
                *pos += 1;
                out.push(path);
                return;
            }
            Some(Token::Open) => {
                *pos += 1;
                loop {
                    match tokens.get(*pos) {
                        Some(Token::Close) => {
                            *pos += 1;
                            return;
                        }
                        Some(Token::Comma) => *pos += 1,
                        None => return,
                        _ => use_tree(tokens, pos, &path, out),
                    }
                }
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Every crate path a file names (`use` trees, `crate::…`, `super::…`, `self::…`), resolved to
/// absolute module paths: (the module doing the naming, the absolute path named).
fn references(file_module: &ModPath, src: &str, modules: &BTreeSet<ModPath>) -> Vec<ModPath> {
    let tokens = tokens(src);
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut out = Vec::new();
    let mut i = 0;
    let current = |inline: &[(String, usize)]| {
        let mut m = file_module.clone();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    while i < tokens.len() {
        match &tokens[i] {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                while inline.last().is_some_and(|(_, d)| *d > depth) {
                    inline.pop();
                }
            }
            Token::Ident(kw) if kw == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
            }
            Token::Ident(kw) if kw == "use" => {
                let mut pos = i + 1;
                let mut paths = Vec::new();
                use_tree(&tokens, &mut pos, &[], &mut paths);
                let here = current(&inline);
                out.extend(paths.iter().filter_map(|p| resolve(&here, p, modules)));
                i = pos;
                continue;
            }
            Token::Ident(kw)
                if (kw == "crate" || kw == "super" || kw == "self")
                    && tokens.get(i + 1) == Some(&Token::PathSep)
                    && !matches!(tokens.get(i.wrapping_sub(1)), Some(Token::PathSep)) =>
            {
                let mut path = vec![kw.clone()];
                let mut j = i + 1;
                while tokens.get(j) == Some(&Token::PathSep) {
                    match tokens.get(j + 1) {
                        Some(Token::Ident(name)) => path.push(name.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                if let Some(p) = resolve(&current(&inline), &path, modules) {
                    out.push(p);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The absolute path `path` names from module `here`; `None` for other crates.
fn resolve(here: &ModPath, path: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let first = path.first()?;
    let mut base = match first.as_str() {
        "crate" => return Some(path[1..].to_vec()),
        "self" => here.clone(),
        "super" => {
            let mut base = here.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            return Some(base);
        }
        _ => {
            let mut child = here.clone();
            child.push(first.clone());
            if !modules.contains(&child) {
                return None;
            }
            here.clone()
        }
    };
    let skip = usize::from(first == "self");
    base.extend(path[skip..].iter().cloned());
    Some(base)
}

/// The module a path lands in: its longest prefix that is a module file.
fn module_of(path: &ModPath, modules: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

struct Analysis {
    /// (file, its module, module it uses)
    edges: Vec<(PathBuf, ModPath, ModPath)>,
}

fn analyse() -> Analysis {
    let files = library_files();
    let modules: BTreeSet<ModPath> = files.iter().map(|(_, m)| m.clone()).collect();
    let mut edges = Vec::new();
    for (path, module) in &files {
        if module.is_empty() {
            continue; // lib.rs: declarations and re-exports of the public API
        }
        let src = std::fs::read_to_string(path).expect("readable source");
        for named in references(module, &src, &modules) {
            let target = module_of(&named, &modules);
            if !target.is_empty() {
                edges.push((path.clone(), module.clone(), target));
            }
        }
    }
    Analysis { edges }
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_top_level_module_is_on_a_layer() {
    let layers = layers();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    let listed: BTreeSet<String> = layers.keys().cloned().collect();
    assert_eq!(
        declared, listed,
        "src/lib.rs's modules and ARCHITECTURE.md's layers must list the same modules"
    );
}

#[test]
fn imports_only_go_down_the_layers() {
    let layers = layers();
    let analysis = analyse();
    assert!(
        analysis.edges.len() > 200,
        "the analysis found only {} imports: the parser is broken",
        analysis.edges.len()
    );
    let mut wrong = BTreeSet::new();
    for (file, from, to) in &analysis.edges {
        let (a, b) = (&from[0], &to[0]);
        if a == b {
            continue;
        }
        let (la, lb) = (layers[a], layers[b]);
        if lb >= la {
            wrong.insert(format!(
                "{}: uses `{}` ({b}, layer {lb}) from {a} (layer {la})",
                rel(file),
                to.join("::")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not go down a layer:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn sibling_modules_import_each_other_in_no_circle() {
    let analysis = analyse();
    // parent module → (child → children it uses)
    let mut graphs: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (_, from, to) in &analysis.edges {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        if common >= 1 && common < from.len() && common < to.len() {
            graphs
                .entry(from[..common].to_vec())
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(to[common].clone());
        }
    }
    assert!(
        graphs.len() >= 4,
        "found sibling imports under only {} modules: the parser is broken",
        graphs.len()
    );
    let mut circles = Vec::new();
    for (parent, graph) in &graphs {
        if let Some(circle) = find_circle(graph) {
            circles.push(format!("{}: {}", parent.join("::"), circle.join(" → ")));
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other in a circle:\n{}",
        circles.join("\n")
    );
}

/// A circle of the directed graph, if it has one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_analysis_sees_an_upward_import_and_a_circle() {
    // The checks above must be able to fail: a made-up file of `models` that uses `train`,
    // and two siblings that use each other.
    let modules: BTreeSet<ModPath> = [
        vec!["models".to_string()],
        vec!["models".into(), "osnet".into()],
        vec!["train".into()],
        vec!["train".into(), "engine".into()],
        vec!["train".into(), "history".into()],
    ]
    .into_iter()
    .collect();
    let here = vec!["models".to_string(), "osnet".to_string()];
    let src = "use crate::train::{engine::{self, train}, history::EpochLog as Log};\n\
               // use crate::ffi::x; is a comment\n\
               fn f() { let s = \"crate::gallery::Gallery\"; super::super::train::engine::go(); }\n\
               #[cfg(test)] mod tests { use super::*; use super::super::layers; }";
    let named: Vec<ModPath> = references(&here, src, &modules)
        .iter()
        .map(|p| module_of(p, &modules))
        .collect();
    let engine = vec!["train".to_string(), "engine".to_string()];
    let history = vec!["train".to_string(), "history".to_string()];
    assert!(
        named.contains(&engine) && named.contains(&history),
        "{named:?}"
    );
    assert!(
        !named
            .iter()
            .any(|m| m.first().is_some_and(|f| f == "gallery" || f == "ffi"))
    );
    // `super` inside `mod tests` is the file's own module.
    assert!(named.contains(&here), "{named:?}");
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["c".to_string()].into()),
        ("c".to_string(), ["a".to_string()].into()),
    ]
    .into_iter()
    .collect();
    assert_eq!(find_circle(&graph).unwrap().len(), 4);
}

/// The C functions `include/reid.h` declares.
fn c_functions() -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/reid.h")).expect("reid.h");
    let mut names = BTreeSet::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    while let Some(at) = header[i..].find("reid_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if word_start && bytes.get(end) == Some(&b'(') {
            names.insert(header[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    names.into_iter().collect()
}

#[test]
fn every_c_function_is_in_the_ffi_file_of_its_object() {
    let functions = c_functions();
    assert!(
        functions.len() > 50,
        "{} functions in reid.h",
        functions.len()
    );
    let ffi = root().join("src/ffi");
    let mut wrong = Vec::new();
    for name in &functions {
        let words: Vec<&str> = name["reid_".len()..].split('_').collect();
        // reid_last_error_message is the status module's (the thread's last failure).
        let object = (1..=words.len())
            .rev()
            .map(|n| words[..n].join("_"))
            .find(|o| ffi.join(format!("{o}.rs")).exists())
            .or_else(|| (name == "reid_last_error_message").then(|| "status".to_string()));
        let Some(object) = object else {
            wrong.push(format!(
                "{name}: no src/ffi/<object>.rs for any prefix of its name"
            ));
            continue;
        };
        let file = ffi.join(format!("{object}.rs"));
        let src = std::fs::read_to_string(&file).unwrap();
        if !src.contains(&format!("fn {name}(")) {
            wrong.push(format!("{name}: not defined in {}", rel(&file)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Lines (1-based) that call `NAME.forward(` on a field NAME declared as a `Conv2d` in the same
/// file. A name also declared with another type in the file (a `ConvNorm` called `conv` beside
/// a `Conv2d` called `conv`) is ambiguous to a text scan and left out.
fn direct_conv_calls(src: &str) -> Vec<usize> {
    let fields: Vec<(&str, bool)> = src
        .lines()
        .filter_map(|line| {
            let (name, ty) = line.trim().strip_prefix("pub ")?.split_once(':')?;
            let ty = ty.trim().trim_end_matches(',');
            Some((name.trim(), ty == "Conv2d" || ty == "Option<Conv2d>"))
        })
        .collect();
    let convs: BTreeSet<&str> = fields
        .iter()
        .filter(|(name, _)| {
            fields
                .iter()
                .filter(|(n, _)| n == name)
                .all(|(_, conv)| *conv)
        })
        .map(|(name, _)| *name)
        .collect();
    let calls = |line: &str, name: &str| {
        line.match_indices(&format!("{name}.forward("))
            .any(|(at, _)| !line[..at].ends_with(|c: char| c == '_' || c.is_alphanumeric()))
    };
    src.lines()
        .enumerate()
        .filter(|(_, line)| convs.iter().any(|name| calls(line, name)))
        .map(|(i, _)| i + 1)
        .collect()
}

#[test]
fn every_zoo_convolution_goes_through_conv_forward() {
    // `layers::conv_forward` is where reid's CPU kernels take over; a direct `Conv2d::forward`
    // silently runs Burn's slower convolution instead.
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("src/models")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "layers.rs") {
            continue; // conv_forward itself
        }
        let src = std::fs::read_to_string(&path).unwrap();
        found.extend(
            direct_conv_calls(&src)
                .into_iter()
                .map(|line| format!("{}:{line}", rel(&path))),
        );
    }
    assert!(
        found.is_empty(),
        "call layers::conv_forward instead: {found:?}"
    );
    let sample = "pub struct A {\n    pub conv2: Conv2d,\n}\nfn f() { self.conv2.forward(x) }\n";
    assert_eq!(
        direct_conv_calls(sample),
        vec![4],
        "the scan finds a direct call"
    );
}
