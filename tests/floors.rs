//! The floors of `src/`: which file may import which, enforced so that it cannot regress.
//!
//! Herald's code is meant to stand in floors. The cores (`store`, `claims`, `tokens`) are at the
//! bottom and know no HTTP; the handlers (`provider`, `upstream`, `consent`, `admin`) stand on
//! them; the router is composed once, at the top (`web`, `app`). A file may import from its own
//! floor or below, never from above, so no two files import each other, even through others:
//! a loop would tie a core to a handler, and then neither can change, be read or be tested alone.
//!
//! This test reads the files under `src/` as text (no compiler, std only), builds the import
//! graph between files and checks it:
//!
//! - no loop between files (strongly connected components, Tarjan);
//! - the upstream side never reaches into the provider side;
//! - configuration knows neither the admin API nor the consent pages;
//! - the cores mention neither `axum` nor `tower`;
//! - no file is longer than 600 lines before its unit tests.
//!
//! An import is every `use` (grouped, `pub use`, `as` renames, globs) and every inline path
//! `crate::…`, `super::…`, `self::…` or `child_module::…`, resolved to the file that *defines*
//! the name: a module that only re-exports a name (`pub use child::Name;`, `pub use child::*`)
//! is followed to the defining file, so a facade such as `claims/mod.rs` does not make false
//! loops. `mod x;` is not an import. Comments, string and char literals, and `#[cfg(test)]`
//! items (inline `mod tests { … }` and `mod tests;` files) are skipped: test code may reach
//! anywhere. The unit tests at the bottom prove on small sources that the checker can fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

const MAX_LINES: usize = 600;

// ------------------------------------------------------------------------------------------------
// Lexer: identifiers, `::` and punctuation; comments and literals are dropped or made opaque.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
    Lit,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn lex(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let at = |j: usize| c.get(j).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < c.len() {
        let ch = c[i];
        let start_line = line;
        let mut push = |tok: Tok| {
            out.push(Token {
                tok,
                line: start_line,
            })
        };
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1, &mut line);
            out.push(Token {
                tok: Tok::Lit,
                line: start_line,
            });
        } else if ch == '\'' {
            i = skip_char_or_lifetime(&c, i);
            out.push(Token {
                tok: Tok::Lit,
                line: start_line,
            });
        } else if is_ident_start(ch) {
            let start = i;
            while is_ident_char(at(i)) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_string = at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '"' | '#'));
            match word.as_str() {
                "b" | "c" if at(i) == '"' => {
                    i = skip_string(&c, i + 1, &mut line);
                    push(Tok::Lit);
                }
                "b" if at(i) == '\'' => {
                    i = skip_char_or_lifetime(&c, i);
                    push(Tok::Lit);
                }
                "r" | "br" | "cr" if raw_string => {
                    i = skip_raw_string(&c, i, &mut line);
                    push(Tok::Lit);
                }
                "r" if at(i) == '#' && is_ident_start(at(i + 1)) => {
                    let s = i + 1;
                    i += 1;
                    while is_ident_char(at(i)) {
                        i += 1;
                    }
                    push(Tok::Ident(c[s..i].iter().collect()));
                }
                _ => push(Tok::Ident(word)),
            }
        } else if ch.is_ascii_digit() {
            while is_ident_char(at(i)) {
                i += 1;
            }
            push(Tok::Lit);
        } else if ch == ':' && at(i + 1) == ':' {
            i += 2;
            push(Tok::PathSep);
        } else {
            i += 1;
            push(Tok::Punct(ch));
        }
    }
    out
}

/// From just after an opening `"` to just after the closing one.
fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => {
                if c.get(i + 1) == Some(&'\n') {
                    *line += 1;
                }
                i += 2;
            }
            '"' => return i + 1,
            ch => {
                if ch == '\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    i
}

/// From the `#`s or `"` after `r` to just after `"#…#`.
fn skip_raw_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while c.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        if c[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    i
}

/// From a `'` to just after a char literal (`'x'`, `'\n'`, `'\u{..}'`) or a lifetime (`'a`).
fn skip_char_or_lifetime(c: &[char], mut i: usize) -> usize {
    let at = |j: usize| c.get(j).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        i += 3;
        while i < c.len() && c[i] != '\'' {
            i += 1;
        }
        i + 1
    } else if at(i + 2) == '\'' {
        i + 3
    } else {
        i += 1;
        while is_ident_char(at(i)) {
            i += 1;
        }
        i
    }
}

// ------------------------------------------------------------------------------------------------
// `#[cfg(test)]` items are cut out of the token stream.

const ITEM_KEYWORDS: &[&str] = &[
    "mod",
    "fn",
    "use",
    "impl",
    "struct",
    "enum",
    "union",
    "const",
    "static",
    "trait",
    "type",
    "macro_rules",
    "extern",
    "async",
    "unsafe",
];

fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is_punct(t: Option<&Token>, p: char) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::Punct(q)) if *q == p)
}

fn is_cfg_test(t: &[Token], i: usize) -> bool {
    is_punct(t.get(i), '#')
        && is_punct(t.get(i + 1), '[')
        && ident(t.get(i + 2)) == Some("cfg")
        && is_punct(t.get(i + 3), '(')
        && ident(t.get(i + 4)) == Some("test")
        && is_punct(t.get(i + 5), ')')
        && is_punct(t.get(i + 6), ']')
}

/// Index just after the balanced group that opens at `i` (`(`, `[` or `{`).
fn skip_group(t: &[Token], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < t.len() {
        match t[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth <= 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// The tokens without `#[cfg(test)]` items, and the names of `#[cfg(test)] mod name;` files.
fn strip_test_items(t: Vec<Token>) -> (Vec<Token>, Vec<String>) {
    let mut kept = Vec::with_capacity(t.len());
    let mut test_files = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if !is_cfg_test(&t, i) {
            kept.push(t[i].clone());
            i += 1;
            continue;
        }
        let mut j = i + 7;
        while is_punct(t.get(j), '#') {
            j = skip_group(&t, j + 1);
        }
        if ident(t.get(j)) == Some("pub") {
            j += 1;
            if is_punct(t.get(j), '(') {
                j = skip_group(&t, j);
            }
        }
        if !ident(t.get(j)).is_some_and(|k| ITEM_KEYWORDS.contains(&k)) {
            i += 7; // on a statement or an expression: only the attribute goes
            continue;
        }
        if ident(t.get(j)) == Some("mod") && is_punct(t.get(j + 2), ';') {
            test_files.extend(ident(t.get(j + 1)).map(String::from));
        }
        while j < t.len() {
            match t[j].tok {
                Tok::Punct(';') => {
                    j += 1;
                    break;
                }
                Tok::Punct('{') => {
                    j = skip_group(&t, j);
                    break;
                }
                Tok::Punct('(' | '[') => j = skip_group(&t, j),
                _ => j += 1,
            }
        }
        i = j;
    }
    (kept, test_files)
}

/// A path as written: `crate::store::Store`, `::tower::Layer`.
fn show(segs: &[String]) -> String {
    let s = segs.join("::");
    match s.strip_prefix("::::") {
        Some(rest) => format!("::{rest}"),
        None => s,
    }
}

// ------------------------------------------------------------------------------------------------
// One file: its uses, inline paths and the names it defines at its top level.

/// One leaf of a `use` tree: `use a::{b::C as D, e::*}` gives `a::b::C` bound as `D` and a glob
/// `a::e`.
#[derive(Clone, Debug)]
struct UseItem {
    segs: Vec<String>,
    bind: Option<String>,
    glob: bool,
    line: usize,
    /// Inline modules (`mod rows { … }`) the `use` sits in, inside the file.
    scope: Vec<String>,
}

/// A path in code, such as `crate::store::StoreError::Unavailable`.
#[derive(Clone, Debug)]
struct PathRef {
    segs: Vec<String>,
    line: usize,
    scope: Vec<String>,
}

#[derive(Debug, Default)]
struct Parsed {
    uses: Vec<UseItem>,
    paths: Vec<PathRef>,
    defined: BTreeSet<String>,
}

const DEFINING: &[&str] = &[
    "fn", "struct", "enum", "union", "const", "static", "trait", "type", "mod",
];

fn parse(t: &[Token]) -> Parsed {
    let mut p = Parsed::default();
    let mut depth = 0usize;
    let mut mods: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let scope: Vec<String> = mods.iter().map(|(m, _)| m.clone()).collect();
        match &t[i].tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if mods.last().is_some_and(|(_, d)| *d == depth) {
                    mods.pop();
                }
            }
            Tok::Ident(w) if w == "use" && !is_punct(t.get(i + 1), '<') => {
                let mut j = use_tree(t, i + 1, Vec::new(), &scope, &mut p.uses);
                while j < t.len() && !is_punct(t.get(j), ';') {
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            Tok::Ident(w) if w == "mod" && ident(t.get(i + 1)).is_some() => {
                let name = ident(t.get(i + 1)).unwrap_or_default().to_string();
                if depth == 0 {
                    p.defined.insert(name.clone());
                }
                if is_punct(t.get(i + 2), '{') {
                    mods.push((name, depth));
                }
                i += 2;
                continue;
            }
            Tok::Ident(w) if w == "macro_rules" && is_punct(t.get(i + 1), '!') => {
                p.defined.extend(ident(t.get(i + 2)).map(String::from));
            }
            Tok::Ident(w) if depth == 0 && DEFINING.contains(&w.as_str()) => {
                if let Some(name) = ident(t.get(i + 1)) {
                    if !DEFINING.contains(&name) && name != "mut" {
                        p.defined.insert(name.to_string());
                    } else if name == "mut" {
                        p.defined.extend(ident(t.get(i + 2)).map(String::from));
                    }
                }
            }
            Tok::Ident(first)
                if t.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep)
                    && !is_punct(t.get(i.wrapping_sub(1)), '.')
                    && (!after_path_sep(t, i) || leading_path_sep(t, i)) =>
            {
                let mut segs = vec![first.clone()];
                if leading_path_sep(t, i) {
                    segs.insert(0, "::".to_string()); // `::tower::Layer`: another crate
                }
                let mut j = i + 1;
                let mut line = t[i].line;
                while t.get(j).is_some_and(|n| n.tok == Tok::PathSep) {
                    let Some(s) = ident(t.get(j + 1)) else { break };
                    segs.push(s.to_string());
                    line = t[j + 1].line;
                    j += 2;
                }
                p.paths.push(PathRef { segs, line, scope });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    p
}

fn after_path_sep(t: &[Token], i: usize) -> bool {
    i > 0 && t[i - 1].tok == Tok::PathSep
}

/// `::name` at the start of a path (not `a::name` nor `Vec::<T>::name`).
fn leading_path_sep(t: &[Token], i: usize) -> bool {
    let arrow = i > 2 && t[i - 3].tok == Tok::Punct('-');
    after_path_sep(t, i)
        && !(i > 1 && matches!(t[i - 2].tok, Tok::Ident(_)))
        && !(i > 1 && t[i - 2].tok == Tok::Punct('>') && !arrow)
}

/// Parses one use tree at `i` with the path `prefix` before it; returns the index after it.
fn use_tree(
    t: &[Token],
    mut i: usize,
    mut segs: Vec<String>,
    scope: &[String],
    out: &mut Vec<UseItem>,
) -> usize {
    if t.get(i).is_some_and(|x| x.tok == Tok::PathSep) {
        segs.push("::".to_string()); // `use ::name`: another crate
        i += 1;
    }
    loop {
        let Some(tok) = t.get(i) else { return i };
        match &tok.tok {
            Tok::Ident(s) => {
                segs.push(s.clone());
                let line = tok.line;
                i += 1;
                if t.get(i).is_some_and(|x| x.tok == Tok::PathSep) {
                    i += 1;
                    continue;
                }
                let mut alias = None;
                if ident(t.get(i)) == Some("as") {
                    alias = ident(t.get(i + 1)).map(String::from);
                    i += 2;
                }
                if segs.len() > 1 && segs.last().is_some_and(|s| s == "self") {
                    segs.pop();
                }
                let bind = alias.or_else(|| segs.last().cloned()).filter(|b| b != "_");
                out.push(UseItem {
                    segs,
                    bind,
                    glob: false,
                    line,
                    scope: scope.to_vec(),
                });
                return i;
            }
            Tok::Punct('*') => {
                let line = tok.line;
                out.push(UseItem {
                    segs,
                    bind: None,
                    glob: true,
                    line,
                    scope: scope.to_vec(),
                });
                return i + 1;
            }
            Tok::Punct('{') => {
                i += 1;
                loop {
                    match t.get(i).map(|x| &x.tok) {
                        None => return i,
                        Some(Tok::Punct('}')) => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        Some(_) => {
                            let next = use_tree(t, i, segs.clone(), scope, out);
                            i = if next == i { i + 1 } else { next };
                        }
                    }
                }
            }
            _ => return i,
        }
    }
}

/// A `.rs` file under `src/`, read as text.
struct Source {
    /// `src/config/settings.rs`.
    path: String,
    /// `["config", "settings"]`; empty for `lib.rs` and `main.rs`.
    module: Vec<String>,
    text: String,
    parsed: Parsed,
    /// Declared `#[cfg(test)] mod name;` by its parent: test code, not checked.
    is_test: bool,
    /// `name`s of this file's `#[cfg(test)] mod name;`.
    test_children: Vec<String>,
}

impl Source {
    fn new(path: &str, text: &str) -> Source {
        let rel = path.strip_prefix("src/").unwrap_or(path);
        let rel = rel.strip_suffix(".rs").unwrap_or(rel);
        let rel = rel.strip_suffix("/mod").unwrap_or(rel);
        let module = if rel == "lib" || rel == "main" {
            Vec::new()
        } else {
            rel.split('/').map(String::from).collect()
        };
        let (tokens, test_children) = strip_test_items(lex(text));
        Source {
            path: path.to_string(),
            module,
            text: text.to_string(),
            parsed: parse(&tokens),
            is_test: false,
            test_children,
        }
    }

    /// Lines before the first line that starts with `#[cfg(test)]`.
    fn lines_before_tests(&self) -> usize {
        self.text
            .lines()
            .position(|l| l.starts_with("#[cfg(test)]"))
            .unwrap_or_else(|| self.text.lines().count())
    }

    fn under(&self, dir: &str) -> bool {
        self.path.starts_with(dir)
    }
}

/// One import of a file: where it is written and which file defines what it names.
#[derive(Clone, Debug)]
struct Import {
    line: usize,
    written: String,
    target: usize,
}

/// All of `src/`: its files and which file is which module.
struct Crate {
    sources: Vec<Source>,
    modules: HashMap<Vec<String>, usize>,
}

impl Crate {
    fn from_files(files: &[(&str, &str)]) -> Crate {
        let mut sources: Vec<Source> = files.iter().map(|(p, t)| Source::new(p, t)).collect();
        sources.sort_by(|a, b| a.path.cmp(&b.path));
        let mut modules = HashMap::new();
        for (i, s) in sources.iter().enumerate() {
            // lib.rs wins the crate root over main.rs.
            if !(s.module.is_empty()
                && s.path.ends_with("main.rs")
                && modules.contains_key(&s.module))
            {
                modules.insert(s.module.clone(), i);
            }
        }
        let test_modules: Vec<Vec<String>> = sources
            .iter()
            .flat_map(|s| {
                s.test_children.iter().map(|c| {
                    let mut m = s.module.clone();
                    m.push(c.clone());
                    m
                })
            })
            .collect();
        for s in &mut sources {
            s.is_test = test_modules.iter().any(|m| s.module.starts_with(m));
        }
        Crate { sources, modules }
    }

    fn read(dir: &Path) -> Crate {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .map(|e| e.expect("a directory entry").path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&p)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
                    out.push((p.to_string_lossy().replace('\\', "/"), text));
                }
            }
        }
        let root = dir.parent().expect("src/ has a parent");
        let mut files = Vec::new();
        walk(dir, &mut files);
        let files: Vec<(String, String)> = files
            .into_iter()
            .map(|(p, t)| {
                let rel = Path::new(&p)
                    .strip_prefix(root)
                    .map(|r| r.to_string_lossy().into_owned());
                (rel.unwrap_or(p), t)
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        Crate::from_files(&borrowed)
    }

    fn src() -> Crate {
        Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
    }

    fn checked(&self) -> impl Iterator<Item = (usize, &Source)> {
        self.sources.iter().enumerate().filter(|(_, s)| !s.is_test)
    }

    /// The module path `segs` means in `file` (inside its inline modules `scope`), or `None`
    /// for a path into another crate or to a local item.
    fn absolute(
        &self,
        file: usize,
        scope: &[String],
        segs: &[String],
        depth: usize,
    ) -> Option<Vec<String>> {
        let mut here = self.sources[file].module.clone();
        here.extend(scope.iter().cloned());
        let first = segs.first()?.as_str();
        match first {
            "crate" | "herald" => Some(segs[1..].to_vec()),
            "self" | "super" => {
                let mut k = 0;
                while k < segs.len() && (segs[k] == "self" || segs[k] == "super") {
                    if segs[k] == "super" {
                        here.pop()?;
                    }
                    k += 1;
                }
                here.extend(segs[k..].iter().cloned());
                Some(here)
            }
            _ => {
                let mut child = here.clone();
                child.push(first.to_string());
                if self.modules.contains_key(&child) {
                    here.extend(segs.iter().cloned());
                    return Some(here);
                }
                // A name brought in by a `use` of this file: `use crate::store;` then `store::x`.
                if depth > 8 {
                    return None;
                }
                let u = self.sources[file]
                    .parsed
                    .uses
                    .iter()
                    .find(|u| u.bind.as_deref() == Some(first) && u.segs != [first])?;
                // Only a module: `Type::method` after `use crate::x::Type;` adds nothing to the
                // `use` itself.
                let mut abs = self.absolute(file, &u.scope, &u.segs, depth + 1)?;
                if !self.modules.contains_key(&abs) {
                    return None;
                }
                abs.extend(segs[1..].iter().cloned());
                Some(abs)
            }
        }
    }

    /// The file that defines what the absolute path `abs` names.
    fn defining_file(&self, abs: &[String], depth: usize) -> usize {
        let mut k = abs.len();
        while k > 0 && !self.modules.contains_key(&abs[..k]) {
            k -= 1;
        }
        let m = self.modules[&abs[..k]];
        if k == abs.len() {
            return m;
        }
        self.brought_in(m, &abs[k], &abs[k + 1..], depth)
            .unwrap_or(m)
    }

    /// Where `name`, used as a name of module file `m`, is defined; `None` if `m` neither
    /// defines nor imports it.
    fn brought_in(&self, m: usize, name: &str, rest: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let parsed = &self.sources[m].parsed;
        if parsed.defined.contains(name) {
            return Some(m);
        }
        if let Some(u) = parsed
            .uses
            .iter()
            .find(|u| u.scope.is_empty() && u.bind.as_deref() == Some(name))
        {
            let Some(mut abs) = self.absolute(m, &u.scope, &u.segs, 0) else {
                return Some(m); // re-exported from another crate
            };
            abs.extend(rest.iter().cloned());
            return Some(self.defining_file(&abs, depth + 1));
        }
        parsed
            .uses
            .iter()
            .filter(|u| u.glob && u.scope.is_empty())
            .find_map(|u| {
                let target = self.absolute(m, &u.scope, &u.segs, 0)?;
                let &t = self.modules.get(&target)?;
                if t == m {
                    return None;
                }
                self.brought_in(t, name, rest, depth + 1)
            })
    }

    /// Every import of `file` into another file of the crate.
    fn imports(&self, file: usize) -> Vec<Import> {
        let parsed = &self.sources[file].parsed;
        let mut out = Vec::new();
        let mut add = |line: usize, written: String, target: usize| {
            if target != file {
                out.push(Import {
                    line,
                    written,
                    target,
                });
            }
        };
        for u in &parsed.uses {
            let Some(abs) = self.absolute(file, &u.scope, &u.segs, 0) else {
                continue;
            };
            if u.glob {
                if let Some(&t) = self.modules.get(&abs) {
                    add(u.line, format!("{}::*", show(&u.segs)), t);
                }
            } else {
                add(u.line, show(&u.segs), self.defining_file(&abs, 0));
            }
        }
        for p in &parsed.paths {
            let Some(abs) = self.absolute(file, &p.scope, &p.segs, 0) else {
                continue;
            };
            add(p.line, show(&p.segs), self.defining_file(&abs, 0));
        }
        out
    }

    /// The import graph between the checked files.
    fn graph(&self) -> Graph {
        let mut edges: Vec<BTreeMap<usize, Names>> = vec![BTreeMap::new(); self.sources.len()];
        for (i, _) in self.checked() {
            for imp in self.imports(i) {
                if self.sources[imp.target].is_test {
                    continue;
                }
                let lines = edges[i]
                    .entry(imp.target)
                    .or_default()
                    .entry(imp.written)
                    .or_default();
                if !lines.contains(&imp.line) {
                    lines.push(imp.line);
                }
            }
        }
        Graph {
            files: self.sources.iter().map(|s| s.path.clone()).collect(),
            edges,
        }
    }

    /// Paths into `axum`, `tower`, `tower_http` or `tower_sessions` in `file`, with their lines.
    fn http_mentions(&self, file: usize) -> Vec<String> {
        const HTTP: &[&str] = &["axum", "tower", "tower_http", "tower_sessions"];
        let parsed = &self.sources[file].parsed;
        let uses = parsed.uses.iter().map(|u| (&u.segs, u.line));
        let paths = parsed.paths.iter().map(|p| (&p.segs, p.line));
        uses.chain(paths)
            .filter(|(segs, _)| {
                let first = if segs[0] == "::" {
                    segs.get(1)
                } else {
                    segs.first()
                };
                first.is_some_and(|f| HTTP.contains(&f.as_str()))
            })
            .map(|(segs, line)| format!("{} (line {line})", show(segs)))
            .collect()
    }
}

// ------------------------------------------------------------------------------------------------
// The graph and its loops.

/// The paths by which one file imports another, each with the lines it is written on.
type Names = BTreeMap<String, Vec<usize>>;

fn show_names(names: &Names) -> String {
    let shown: Vec<String> = names
        .iter()
        .map(|(name, lines)| match lines.as_slice() {
            [one] => format!("{name} (line {one})"),
            many => {
                let many: Vec<String> = many.iter().map(|l| l.to_string()).collect();
                format!("{name} (lines {})", many.join(", "))
            }
        })
        .collect();
    shown.join(", ")
}

struct Graph {
    files: Vec<String>,
    /// `edges[a][b]`: what file `a` imports from file `b`.
    edges: Vec<BTreeMap<usize, Names>>,
}

impl Graph {
    /// Each edge `from -> to` whose ends satisfy `pick`, one line each, with its names.
    fn describe(&self, pick: impl Fn(usize, usize) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        for (a, out) in self.edges.iter().enumerate() {
            for (&b, names) in out {
                if pick(a, b) {
                    lines.push(format!(
                        "  {} -> {}: {}",
                        self.files[a],
                        self.files[b],
                        show_names(names)
                    ));
                }
            }
        }
        lines
    }
}

/// The strongly connected components of more than one file (Tarjan), each sorted by path.
fn circles(graph: &Graph) -> Vec<Vec<usize>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in self.graph.edges[v].keys() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort_by(|a, b| self.graph.files[*a].cmp(&self.graph.files[*b]));
                    self.found.push(component);
                }
            }
        }
    }
    let n = graph.files.len();
    let mut t = Tarjan {
        graph,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.found.sort_by_key(|c| std::cmp::Reverse(c.len()));
    t.found
}

/// The failure message for `circles`: each circle's files and the edges inside it.
fn describe_circles(graph: &Graph, found: &[Vec<usize>]) -> String {
    let mut msg = String::new();
    for c in found {
        let members: BTreeSet<usize> = c.iter().copied().collect();
        msg.push_str(&format!(
            "a circle of {} files that all reach each other through their imports:\n",
            c.len()
        ));
        for &f in c {
            msg.push_str(&format!("    {}\n", graph.files[f]));
        }
        msg.push_str("  tied by these imports (cut some so that no file reaches back):\n");
        for line in graph.describe(|a, b| members.contains(&a) && members.contains(&b)) {
            msg.push_str(&line);
            msg.push('\n');
        }
    }
    msg
}

/// The failure message for imports from files under `from` into files under any of `into`.
fn forbidden_imports(krate: &Crate, graph: &Graph, from: &str, into: &[&str]) -> Vec<String> {
    graph.describe(|a, b| {
        krate.sources[a].under(from) && into.iter().any(|d| krate.sources[b].under(d))
    })
}

// ------------------------------------------------------------------------------------------------
// The floors of today's `src/`.

#[test]
fn no_two_files_in_src_import_each_other_in_a_loop() {
    let krate = Crate::src();
    let graph = krate.graph();
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "files in src/ import each other in a loop; the floors need cores at the bottom, \
         handlers above and the router composed once at the top.\n{}",
        describe_circles(&graph, &found)
    );
}

#[test]
fn the_upstream_side_never_reaches_into_the_provider_side() {
    let krate = Crate::src();
    let bad = forbidden_imports(&krate, &krate.graph(), "src/upstream/", &["src/provider/"]);
    assert!(
        bad.is_empty(),
        "src/upstream/ (Herald as a relying party) imports from src/provider/ (Herald as an \
         OpenID provider); move what both need below them:\n{}",
        bad.join("\n")
    );
}

#[test]
fn configuration_knows_no_admin_and_no_consent() {
    let krate = Crate::src();
    let bad = forbidden_imports(
        &krate,
        &krate.graph(),
        "src/config/",
        &["src/admin/", "src/consent/"],
    );
    assert!(
        bad.is_empty(),
        "src/config/ imports from src/admin/ or src/consent/, which stand above it; move the \
         names it needs into config (or below) and let admin and consent import them:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_cores_know_no_http() {
    let krate = Crate::src();
    let mut bad = Vec::new();
    for (i, s) in krate.checked() {
        if ["src/store/", "src/claims/", "src/tokens/"]
            .iter()
            .any(|d| s.under(d))
        {
            for m in krate.http_mentions(i) {
                bad.push(format!("  {}: {m}", s.path));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the cores (src/store/, src/claims/, src/tokens/) must know no HTTP, but mention \
         axum or tower:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_file_is_longer_than_600_lines_before_its_unit_tests() {
    let krate = Crate::src();
    let bad: Vec<String> = krate
        .checked()
        .map(|(_, s)| (s, s.lines_before_tests()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(s, n)| format!("  {}: {n} lines", s.path))
        .collect();
    assert!(
        bad.is_empty(),
        "files longer than {MAX_LINES} lines before their first #[cfg(test)]; split them:\n{}",
        bad.join("\n")
    );
}

// ------------------------------------------------------------------------------------------------
// The checker itself, on small sources: it can fail.

mod checker {
    use super::*;

    /// `from -> to` for every import between the files, as paths.
    fn edges(files: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        let krate = Crate::from_files(files);
        let graph = krate.graph();
        let mut out = BTreeSet::new();
        for (a, to) in graph.edges.iter().enumerate() {
            for b in to.keys() {
                out.insert((graph.files[a].clone(), graph.files[*b].clone()));
            }
        }
        out
    }

    fn e(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    fn from(files: &[(&str, &str)], file: &str) -> BTreeSet<String> {
        edges(files)
            .into_iter()
            .filter(|(a, _)| a == file)
            .map(|(_, b)| b)
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn grouped_uses_renames_and_pub_uses_are_imports() {
        let files = [
            ("src/lib.rs", "pub mod a; pub mod b; pub mod c; pub mod d;"),
            (
                "src/a.rs",
                "use crate::{b, c::{D, e::F as G}};\npub use crate::d::H as _;\nuse std::fmt;",
            ),
            ("src/b.rs", "pub fn b() {}"),
            ("src/c/mod.rs", "pub mod e;\npub struct D;"),
            ("src/c/e.rs", "pub struct F;"),
            ("src/d.rs", "pub struct H;"),
        ];
        assert_eq!(
            from(&files, "src/a.rs"),
            set(&["src/b.rs", "src/c/mod.rs", "src/c/e.rs", "src/d.rs"])
        );
    }

    #[test]
    fn super_super_self_and_child_modules_resolve_from_the_file() {
        let files = [
            ("src/lib.rs", "pub mod x;"),
            ("src/x/mod.rs", "pub mod y; pub mod w;\nuse y::z::Z;"),
            ("src/x/w.rs", "pub struct Thing;"),
            (
                "src/x/y/mod.rs",
                "pub mod z; pub mod v;\nfn f() { self::v::g(); }",
            ),
            ("src/x/y/v.rs", "pub fn g() {}"),
            ("src/x/y/z.rs", "use super::super::w::Thing;\npub struct Z;"),
        ];
        let got = edges(&files);
        assert!(got.contains(&e("src/x/y/z.rs", "src/x/w.rs")), "{got:?}");
        assert!(
            got.contains(&e("src/x/y/mod.rs", "src/x/y/v.rs")),
            "{got:?}"
        );
        assert!(got.contains(&e("src/x/mod.rs", "src/x/y/z.rs")), "{got:?}");
        assert_eq!(got.len(), 3, "mod declarations are not imports: {got:?}");
    }

    #[test]
    fn inline_crate_paths_and_used_modules_are_imports() {
        let files = [
            ("src/lib.rs", "pub mod store; pub mod web; pub mod a;"),
            (
                "src/store/mod.rs",
                "pub mod sql;\npub enum StoreError { Unavailable(String) }",
            ),
            ("src/store/sql.rs", "pub struct Pool;"),
            ("src/web.rs", "pub fn page() {}"),
            (
                "src/a.rs",
                "use crate::web;\nfn f(e: E) -> bool {\n    \
                 matches!(e, crate::store::StoreError::Unavailable(..))\n}\n\
                 fn g() { let _ = web::page(); }",
            ),
        ];
        assert_eq!(
            from(&files, "src/a.rs"),
            set(&["src/store/mod.rs", "src/web.rs"])
        );
        let files2 = [
            ("src/lib.rs", "pub mod store; pub mod a;"),
            ("src/store/mod.rs", "pub mod sql;"),
            ("src/store/sql.rs", "pub struct Pool;"),
            (
                "src/a.rs",
                "use crate::store;\nfn f(_: store::sql::Pool) {}",
            ),
        ];
        assert_eq!(
            from(&files2, "src/a.rs"),
            set(&["src/store/mod.rs", "src/store/sql.rs"])
        );
    }

    #[test]
    fn re_exports_are_followed_to_the_defining_file_so_facades_make_no_false_circle() {
        let files = [
            ("src/lib.rs", "pub mod claims; pub mod user;"),
            (
                "src/claims/mod.rs",
                "pub mod path; pub mod context; pub mod more;\n\
                 pub use context::{AuthContext, Origin};\npub use path::ClaimPath;\n\
                 pub use more::*;",
            ),
            (
                "src/claims/path.rs",
                "use super::Origin;\npub struct ClaimPath(Origin);",
            ),
            (
                "src/claims/context.rs",
                "pub struct AuthContext; pub enum Origin {}",
            ),
            ("src/claims/more.rs", "pub fn helper() {}"),
            (
                "src/user.rs",
                "use crate::claims::{ClaimPath, helper};\nfn f() { crate::claims::AuthContext; }",
            ),
        ];
        let got = edges(&files);
        assert!(
            got.contains(&e("src/claims/path.rs", "src/claims/context.rs")),
            "{got:?}"
        );
        assert!(
            !got.contains(&e("src/claims/path.rs", "src/claims/mod.rs")),
            "{got:?}"
        );
        assert_eq!(
            from(&files, "src/user.rs"),
            set(&[
                "src/claims/path.rs",
                "src/claims/more.rs",
                "src/claims/context.rs"
            ])
        );
        assert!(circles(&Crate::from_files(&files).graph()).is_empty());
    }

    #[test]
    fn comments_strings_and_chars_are_not_imports() {
        let files = [
            ("src/lib.rs", "pub mod a; pub mod b; pub mod c;"),
            (
                "src/a.rs",
                "// use crate::b;\n/* crate::b::X /* nested crate::b */ crate::b::Y */\n\
                 /// [`x`](crate::b::X)\n//! crate::b\n\
                 fn f<'a>(x: &'a str) {\n    let s = \"crate::b::X \\\" crate::b\";\n    \
                 let r = r#\"crate::b \"quoted\" use crate::b;\"#;\n    let q = '\"';\n    \
                 let t = b\"crate::b\";\n    let u = '\\'';\n    crate::c::f();\n}",
            ),
            ("src/b.rs", "pub struct X;"),
            ("src/c.rs", "pub fn f() {}"),
        ];
        assert_eq!(from(&files, "src/a.rs"), set(&["src/c.rs"]));
    }

    #[test]
    fn test_blocks_and_test_files_are_not_imports() {
        let files = [
            ("src/lib.rs", "pub mod a; pub mod b;"),
            (
                "src/a.rs",
                "pub fn a() {}\n\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n    \
                 fn t() { crate::b::f(); }\n}\n#[cfg(test)]\nmod more;\n",
            ),
            ("src/a/more.rs", "use crate::b::B;"),
            ("src/b.rs", "pub struct B;\npub fn f() { crate::a::a(); }"),
        ];
        assert!(from(&files, "src/a.rs").is_empty());
        assert!(from(&files, "src/a/more.rs").is_empty());
        let krate = Crate::from_files(&files);
        assert!(circles(&krate.graph()).is_empty());
        let a = krate.sources.iter().find(|s| s.path == "src/a.rs").unwrap();
        assert_eq!(a.lines_before_tests(), 2);
        assert!(
            krate
                .sources
                .iter()
                .any(|s| s.path == "src/a/more.rs" && s.is_test)
        );
    }

    #[test]
    fn a_two_file_cycle_is_found_and_named() {
        let files = [
            ("src/lib.rs", "pub mod a; pub mod b; pub mod c;"),
            ("src/a.rs", "use crate::b::X;\npub struct Y;"),
            ("src/b.rs", "pub struct X;\nfn f() { let _ = crate::a::Y; }"),
            ("src/c.rs", "use crate::a::Y; use self::Z; pub struct Z;"),
        ];
        let krate = Crate::from_files(&files);
        let graph = krate.graph();
        let found = circles(&graph);
        let named: Vec<Vec<&str>> = found
            .iter()
            .map(|c| c.iter().map(|&f| graph.files[f].as_str()).collect())
            .collect();
        assert_eq!(named, vec![vec!["src/a.rs", "src/b.rs"]]);
        let msg = describe_circles(&graph, &found);
        assert!(
            msg.contains("src/a.rs -> src/b.rs: crate::b::X (line 1)"),
            "{msg}"
        );
        assert!(
            msg.contains("src/b.rs -> src/a.rs: crate::a::Y (line 2)"),
            "{msg}"
        );
    }

    #[test]
    fn the_floor_checks_report_what_crosses() {
        let files = [
            (
                "src/lib.rs",
                "pub mod upstream; pub mod provider; pub mod store;",
            ),
            ("src/upstream.rs", "use crate::provider::Flow;"),
            ("src/provider.rs", "pub struct Flow;"),
            (
                "src/store.rs",
                "use axum::Router;\nfn f() -> ::tower::Layer { }",
            ),
        ];
        let krate = Crate::from_files(&files);
        let bad = forbidden_imports(&krate, &krate.graph(), "src/upstream", &["src/provider"]);
        assert_eq!(
            bad,
            vec!["  src/upstream.rs -> src/provider.rs: crate::provider::Flow (line 1)"]
        );
        let store = krate
            .sources
            .iter()
            .position(|s| s.path == "src/store.rs")
            .unwrap();
        assert_eq!(
            krate.http_mentions(store),
            vec!["axum::Router (line 1)", "::tower::Layer (line 2)"]
        );
    }
}
