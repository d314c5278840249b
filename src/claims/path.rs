//! Claim paths: the one parser every part of Herald uses to name a claim.
//!
//! Upstream IdPs put claims at namespaced URLs (`https://example.com/groups`, as Auth0 requires for custom
//! claims) and inside nested objects (`address.country`, OIDC Core §5.1.1). A path is a list of object keys,
//! written either with dots, where `\.` is a literal dot and `\\` a literal backslash, or in a bracket form
//! borrowed from JSONPath (`["https://example.com/groups"]`, `address["x.y"]`, `a["b"].c`).
//!
//! The dotted, backslash-escaped form is canonical: it is what [`ClaimPath`]'s `Display` and `Serialize`
//! print, what origins in an [`AuthContext`](super::AuthContext) record and what admins see in lineage tables.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A parsed claim path: one or more non-empty object keys, outermost first.
///
/// Paths are parsed when the configuration is read and then used on every login, so each keeps its
/// canonical form and fingerprint once the first login asked for them; equality, order and hashing look
/// only at the keys.
#[derive(Clone)]
pub struct ClaimPath {
    segments: Vec<String>,
    derived: OnceLock<Derived>,
}

/// What a login needs of a path besides its keys, computed on first use.
#[derive(Clone)]
struct Derived {
    /// The canonical form, shared with every origin that records this path.
    canonical: Arc<str>,
    fingerprint: u64,
}

impl PartialEq for ClaimPath {
    fn eq(&self, other: &Self) -> bool {
        self.segments == other.segments
    }
}

impl Eq for ClaimPath {}

impl Hash for ClaimPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.segments.hash(state);
    }
}

impl PartialOrd for ClaimPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClaimPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.segments.cmp(&other.segments)
    }
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClaimPath").field(&self.segments).finish()
    }
}

/// Why a claim path did not parse, with the path and the 1-based column (in characters) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim path `{path}`: column {column}: {kind}")]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// 1-based column, counted in characters, of the offending character.
    pub column: usize,
    /// What is wrong there.
    pub kind: PathErrorKind,
}

/// The ways a claim path can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathErrorKind {
    /// Nothing was written at all.
    #[error("empty path")]
    EmptyPath,
    /// Two dots in a row, or a dot at either end.
    #[error("empty segment (use `\\.` for a literal dot)")]
    EmptySegment,
    /// A path that ends in the middle of an escape.
    #[error("trailing `\\` (use `\\\\` for a literal backslash)")]
    TrailingBackslash,
    /// A backslash followed by something other than `.` or `\`.
    #[error("unknown escape `\\{0}` (only `\\.` and `\\\\` are allowed)")]
    UnknownEscape(char),
    /// `[` without a closing `]`.
    #[error("unterminated bracket (expected `]`)")]
    UnterminatedBracket,
    /// `["` without a closing `"`.
    #[error("unterminated string (expected `\"`)")]
    UnterminatedString,
    /// Something other than a double-quoted string after `[`.
    #[error("expected `\"` after `[`, found `{0}`")]
    ExpectedQuote(char),
    /// Something other than `]` after a bracketed string.
    #[error("expected `]` after the quoted name, found `{0}`")]
    ExpectedCloseBracket(char),
    /// Something other than `.`, `[` or the end after `]`.
    #[error("expected `.` or `[` after `]`, found `{0}`")]
    ExpectedSeparator(char),
    /// A backslash inside a bracketed string followed by something other than `"` or `\`.
    #[error("unknown escape `\\{0}` in quoted name (only `\\\"` and `\\\\` are allowed)")]
    UnknownStringEscape(char),
}

/// Escapes one key for the dotted form: `\` becomes `\\` and `.` becomes `\.`.
///
/// A key containing `[` cannot be written in the dotted form, because `[` opens the bracket form there;
/// `ClaimPath`'s `Display` switches to brackets for such keys.
pub fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len() + 2);
    push_escaped(&mut out, segment);
    out
}

fn push_escaped(out: &mut String, segment: &str) {
    // Copies runs between special characters whole: most keys have none and go in one copy.
    let mut copied = 0;
    for (i, special) in segment.match_indices(['.', '\\']) {
        out.push_str(&segment[copied..i]);
        out.push('\\');
        out.push_str(special);
        copied = i + special.len();
    }
    out.push_str(&segment[copied..]);
}

fn push_bracketed(out: &mut String, segment: &str) {
    out.push_str("[\"");
    for c in segment.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push_str("\"]");
}

/// A cursor over the path's characters that knows its 1-based column.
struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// Column of the character `peek` returns.
    column: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c.is_some() {
            self.column += 1;
        }
        c
    }
}

impl ClaimPath {
    /// Parses a path in the dotted or bracket form (or a mix of both).
    pub fn parse(path: &str) -> Result<ClaimPath, PathError> {
        let fail = |column, kind| PathError {
            path: path.to_owned(),
            column,
            kind,
        };
        if path.is_empty() {
            return Err(fail(1, PathErrorKind::EmptyPath));
        }
        let mut cur = Cursor {
            chars: path.chars().peekable(),
            column: 1,
        };
        let mut segments = Vec::new();
        // A bracket may open a path or follow a segment, but `a.["b"]` is a dotted segment left empty.
        let mut bracket_allowed = true;
        loop {
            let start = cur.column;
            let segment = if bracket_allowed && cur.peek() == Some('[') {
                bracketed(&mut cur).map_err(|(col, kind)| fail(col, kind))?
            } else {
                dotted(&mut cur).map_err(|(col, kind)| fail(col, kind))?
            };
            if segment.is_empty() {
                return Err(fail(start, PathErrorKind::EmptySegment));
            }
            segments.push(segment);
            match cur.peek() {
                None => break,
                Some('.') => {
                    cur.bump();
                    bracket_allowed = false;
                }
                Some('[') => bracket_allowed = true,
                Some(other) => {
                    return Err(fail(cur.column, PathErrorKind::ExpectedSeparator(other)));
                }
            }
        }
        Ok(ClaimPath::new(segments))
    }

    /// Builds a path from keys that are already split; `None` if there are none or one is empty.
    pub fn from_segments(segments: Vec<String>) -> Option<ClaimPath> {
        if segments.is_empty() || segments.iter().any(String::is_empty) {
            return None;
        }
        Some(ClaimPath::new(segments))
    }

    /// Wraps keys already checked to be non-empty.
    fn new(segments: Vec<String>) -> ClaimPath {
        ClaimPath {
            segments,
            derived: OnceLock::new(),
        }
    }

    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            // Room for a few escapes, so namespaced claims such as `https://example\.com/x` fit at once.
            let mut canonical =
                String::with_capacity(self.segments.iter().map(|s| s.len() + 1).sum::<usize>() + 8);
            write_canonical(&self.segments, &mut canonical);
            Derived {
                canonical: canonical.into(),
                fingerprint: fingerprint(&self.segments),
            }
        })
    }

    /// The keys, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The outermost key: the top-level claim name in a token.
    pub fn first(&self) -> &str {
        &self.segments[0]
    }

    /// The prefix a wildcard attribute's claim matches (`https://example.com/` for
    /// `https://example\.com/*`), when its last key ends in `*`.
    pub fn wildcard_prefix(&self) -> Option<&str> {
        self.segments.last()?.strip_suffix('*')
    }

    /// Whether this is a wildcard mapping target (`ext.*`, or `*` for the top level).
    pub fn is_wildcard_target(&self) -> bool {
        self.segments.last().is_some_and(|s| s == "*")
    }

    /// Whether the path names a top-level claim rather than something nested inside one.
    pub fn is_top_level(&self) -> bool {
        self.segments.len() == 1
    }

    /// Whether `self` is `other` or lies inside it (`org.tenant` is within `org`).
    pub fn starts_with(&self, other: &ClaimPath) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// The value at this path, if every key on the way exists and every parent is an object.
    pub fn get<'a>(&self, root: &'a Map<String, Value>) -> Option<&'a Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut map = root;
        for key in parents {
            map = map.get(key)?.as_object()?;
        }
        map.get(last)
    }

    /// The value at this path, mutably.
    pub fn get_mut<'a>(&self, root: &'a mut Map<String, Value>) -> Option<&'a mut Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut map = root;
        for key in parents {
            map = map.get_mut(key)?.as_object_mut()?;
        }
        map.get_mut(last)
    }

    /// Writes `value` at this path, creating missing parents and replacing parents that are not objects.
    /// Returns the value it replaced, if any.
    pub fn set(&self, root: &mut Map<String, Value>, value: Value) -> Option<Value> {
        let (last, parents) = self
            .segments
            .split_last()
            .expect("claim paths are never empty");
        let mut map = root;
        for key in parents {
            // Looked up twice rather than through `entry`, which would allocate the key even when it exists.
            if !map.get(key).is_some_and(Value::is_object) {
                map.insert(key.clone(), Value::Object(Map::new()));
            }
            map = map
                .get_mut(key)
                .and_then(Value::as_object_mut)
                .expect("made an object just above");
        }
        // Most writes add a key, and `insert` finds and allocates it in one go.
        map.insert(last.clone(), value)
    }

    /// Removes the value at this path and any parent objects the removal leaves empty; returns the value.
    pub fn remove(&self, root: &mut Map<String, Value>) -> Option<Value> {
        remove_in(root, &self.segments)
    }

    /// A cheap 64-bit hash of the keys, so the login path can compare paths without comparing strings.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.derived().fingerprint
    }

    /// Appends the canonical form to `out` without going through `fmt` (used on the login path).
    pub(crate) fn write_canonical(&self, out: &mut String) {
        out.push_str(self.canonical_str());
    }

    /// The canonical form as a new string; same as `to_string()`, only cheaper.
    pub fn canonical(&self) -> String {
        self.canonical_str().to_owned()
    }

    /// The canonical form, borrowed.
    pub fn canonical_str(&self) -> &str {
        &self.derived().canonical
    }

    /// The canonical form, shared: cloning it does not copy the string.
    pub(crate) fn canonical_shared(&self) -> &Arc<str> {
        &self.derived().canonical
    }

    /// The bracket form, e.g. `["https://example.com/groups"]["x.y"]`; parses back to the same path.
    pub fn to_bracket_form(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            push_bracketed(&mut out, segment);
        }
        out
    }
}

/// FxHash's mixing step over 8-byte chunks of the keys; collisions only cost a full comparison.
fn fingerprint(segments: &[String]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = 0u64;
    let mut mix = |word: u64| hash = (hash.rotate_left(5) ^ word).wrapping_mul(K);
    for segment in segments {
        let mut chunks = segment.as_bytes().chunks_exact(8);
        for chunk in &mut chunks {
            mix(u64::from_le_bytes(chunk.try_into().expect("chunks of 8")));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        mix(u64::from_le_bytes(tail));
        // Separates ["ab", "c"] from ["a", "bc"].
        mix(segment.len() as u64);
    }
    hash
}

/// The canonical form: dotted and escaped, with brackets only for keys that contain `[`.
fn write_canonical(segments: &[String], out: &mut String) {
    for (i, segment) in segments.iter().enumerate() {
        if segment.contains('[') {
            push_bracketed(out, segment);
        } else {
            if i > 0 {
                out.push('.');
            }
            push_escaped(out, segment);
        }
    }
}

/// Reads one dotted key, stopping before `.`, `[` or the end.
fn dotted(cur: &mut Cursor<'_>) -> Result<String, (usize, PathErrorKind)> {
    let mut segment = String::new();
    while let Some(c) = cur.peek() {
        match c {
            '.' | '[' => break,
            '\\' => {
                let column = cur.column;
                cur.bump();
                match cur.bump() {
                    Some(escaped @ ('.' | '\\')) => segment.push(escaped),
                    Some(other) => return Err((column, PathErrorKind::UnknownEscape(other))),
                    None => return Err((column, PathErrorKind::TrailingBackslash)),
                }
            }
            _ => {
                segment.push(c);
                cur.bump();
            }
        }
    }
    Ok(segment)
}

/// Reads `["…"]`, the cursor being on `[`.
fn bracketed(cur: &mut Cursor<'_>) -> Result<String, (usize, PathErrorKind)> {
    let open = cur.column;
    cur.bump();
    match cur.peek() {
        Some('"') => {}
        Some(other) => return Err((cur.column, PathErrorKind::ExpectedQuote(other))),
        None => return Err((open, PathErrorKind::UnterminatedBracket)),
    }
    let quote = cur.column;
    cur.bump();
    let mut segment = String::new();
    loop {
        let column = cur.column;
        match cur.bump() {
            Some('"') => break,
            Some('\\') => match cur.bump() {
                Some(escaped @ ('"' | '\\')) => segment.push(escaped),
                Some(other) => return Err((column, PathErrorKind::UnknownStringEscape(other))),
                None => return Err((quote, PathErrorKind::UnterminatedString)),
            },
            Some(c) => segment.push(c),
            None => return Err((quote, PathErrorKind::UnterminatedString)),
        }
    }
    match cur.peek() {
        Some(']') => {
            cur.bump();
        }
        Some(other) => return Err((cur.column, PathErrorKind::ExpectedCloseBracket(other))),
        None => return Err((open, PathErrorKind::UnterminatedBracket)),
    }
    if segment.is_empty() {
        return Err((open, PathErrorKind::EmptySegment));
    }
    Ok(segment)
}

fn remove_in(map: &mut Map<String, Value>, segments: &[String]) -> Option<Value> {
    match segments {
        [] => None,
        [last] => map.shift_remove(last),
        [key, rest @ ..] => {
            let child = map.get_mut(key)?.as_object_mut()?;
            let removed = remove_in(child, rest)?;
            if child.is_empty() {
                map.shift_remove(key);
            }
            Some(removed)
        }
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical_str())
    }
}

impl FromStr for ClaimPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClaimPath::parse(s)
    }
}

impl Serialize for ClaimPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.canonical_str())
    }
}

impl<'de> Deserialize<'de> for ClaimPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathVisitor;

        impl serde::de::Visitor<'_> for PathVisitor {
            type Value = ClaimPath;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim path such as `email`, `address.country` or `https://example\\.com/groups`")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ClaimPath, E> {
                ClaimPath::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(PathVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn path(s: &str) -> ClaimPath {
        ClaimPath::parse(s).unwrap()
    }

    fn segs(p: &ClaimPath) -> Vec<&str> {
        p.segments().iter().map(String::as_str).collect()
    }

    fn error(s: &str) -> String {
        ClaimPath::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn escaped_dots_keep_a_namespaced_claim_in_one_segment() {
        assert_eq!(
            segs(&path(r"https://example\.com/groups")),
            ["https://example.com/groups"]
        );
    }

    #[test]
    fn unescaped_dots_nest() {
        assert_eq!(segs(&path("address.country")), ["address", "country"]);
        assert!(!path("address.country").is_top_level());
        assert_eq!(path("address.country").first(), "address");
    }

    #[test]
    fn double_backslash_is_a_literal_backslash() {
        assert_eq!(segs(&path(r"a\\b.c")), [r"a\b", "c"]);
    }

    #[test]
    fn bracket_form_means_the_same_as_the_escaped_form() {
        assert_eq!(
            path(r#"["https://example.com/groups"]"#),
            path(r"https://example\.com/groups")
        );
        assert_eq!(segs(&path(r#"address["x.y"]"#)), ["address", "x.y"]);
        assert_eq!(segs(&path(r#"a["b"].c"#)), ["a", "b", "c"]);
        assert_eq!(segs(&path(r#"a["b"]["c"]"#)), ["a", "b", "c"]);
        assert_eq!(segs(&path(r#"["q\"uote\\d"]"#)), [r#"q"uote\d"#]);
    }

    #[test]
    fn display_prints_the_canonical_backslash_form() {
        assert_eq!(
            path(r#"["https://example.com/groups"].x"#).to_string(),
            r"https://example\.com/groups.x"
        );
        assert_eq!(path(r#"a["b\\c"]"#).to_string(), r"a.b\\c");
    }

    #[test]
    fn keys_containing_a_bracket_print_in_bracket_form() {
        let p = ClaimPath::from_segments(vec!["a".into(), "x[0]".into(), "c".into()]).unwrap();
        assert_eq!(p.to_string(), r#"a["x[0]"].c"#);
        assert_eq!(path(&p.to_string()), p);
    }

    #[test]
    fn empty_segment_error_names_path_and_column() {
        assert_eq!(
            error("a..b"),
            "claim path `a..b`: column 3: empty segment (use `\\.` for a literal dot)"
        );
        assert!(error(".a").contains("column 1: empty segment"));
        assert!(error("a.").contains("column 3: empty segment"));
        assert!(error(r#"a.["b"]"#).contains("column 3: empty segment"));
        assert!(error(r#"[""]"#).contains("column 1: empty segment"));
    }

    #[test]
    fn malformed_escapes_and_brackets_are_errors_with_columns() {
        assert_eq!(error(""), "claim path ``: column 1: empty path");
        assert!(error(r"ab\").contains("column 3: trailing `\\`"));
        assert!(error(r"a\nb").contains("column 2: unknown escape `\\n`"));
        assert!(error(r#"a["b"#).contains("column 3: unterminated string"));
        assert!(error(r#"a["b""#).contains("column 2: unterminated bracket"));
        assert!(error("a[").contains("column 2: unterminated bracket"));
        assert!(error("a[b]").contains("column 3: expected `\"` after `[`"));
        assert!(error(r#"a["b"x"#).contains("column 6: expected `]`"));
        assert!(error(r#"a["b"]c"#).contains("column 7: expected `.` or `[` after `]`"));
        assert!(error(r#"["a\n"]"#).contains("column 4: unknown escape `\\n` in quoted name"));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert!(error("é..b").contains("column 3"));
    }

    #[test]
    fn from_segments_refuses_empty_input() {
        assert!(ClaimPath::from_segments(vec![]).is_none());
        assert!(ClaimPath::from_segments(vec!["a".into(), String::new()]).is_none());
    }

    #[test]
    fn get_follows_nested_objects_only() {
        let claims = json!({"address": {"country": "NZ"}, "flat": "x"});
        let claims = claims.as_object().unwrap();
        assert_eq!(path("address.country").get(claims), Some(&json!("NZ")));
        assert_eq!(path("flat.deeper").get(claims), None);
        assert_eq!(path("missing").get(claims), None);
    }

    #[test]
    fn set_creates_parents_and_replaces_non_objects() {
        let mut map = json!({"org": "flat"}).as_object().unwrap().clone();
        path("org.tenant").set(&mut map, json!("acme"));
        path("a.b.c").set(&mut map, json!(1));
        assert_eq!(
            Value::Object(map),
            json!({"org": {"tenant": "acme"}, "a": {"b": {"c": 1}}})
        );
    }

    #[test]
    fn remove_prunes_parents_left_empty() {
        let mut map = json!({"a": {"b": {"c": 1}}, "org": {"tenant": "x", "plan": "y"}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(path("a.b.c").remove(&mut map), Some(json!(1)));
        assert_eq!(path("org.tenant").remove(&mut map), Some(json!("x")));
        assert_eq!(path("nope.x").remove(&mut map), None);
        assert_eq!(Value::Object(map), json!({"org": {"plan": "y"}}));
    }

    #[test]
    fn serde_reads_a_string_and_writes_the_canonical_form() {
        let p: ClaimPath = serde_json::from_str(r#""[\"https://e.com/x\"]""#).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""https://e\\.com/x""#);
        let err = serde_json::from_str::<ClaimPath>(r#""a..b""#).unwrap_err();
        assert!(err.to_string().contains("column 3: empty segment"), "{err}");
    }

    #[test]
    fn escape_segment_escapes_dots_and_backslashes() {
        assert_eq!(escape_segment(r"a.b\c"), r"a\.b\\c");
    }

    fn segment_strategy() -> impl Strategy<Value = String> {
        // Bias towards the characters the grammar treats specially.
        prop::string::string_regex(r#"([a-z./\\\[\]"]|https://|é){1,8}"#).unwrap()
    }

    proptest! {
        #[test]
        fn any_segments_survive_display_and_parse(segments in prop::collection::vec(segment_strategy(), 1..5)) {
            let p = ClaimPath::from_segments(segments).unwrap();
            prop_assert_eq!(ClaimPath::parse(&p.to_string()).unwrap(), p);
        }

        #[test]
        fn any_segments_survive_the_bracket_form(segments in prop::collection::vec(any::<String>().prop_filter("non-empty", |s| !s.is_empty()), 1..5)) {
            let p = ClaimPath::from_segments(segments).unwrap();
            prop_assert_eq!(ClaimPath::parse(&p.to_bracket_form()).unwrap(), p.clone());
            prop_assert_eq!(ClaimPath::parse(&p.to_string()).unwrap(), p);
        }

        #[test]
        fn any_parsable_string_round_trips_through_display(s in r#"([a-z.\\\[\]"]){0,12}"#) {
            if let Ok(p) = ClaimPath::parse(&s) {
                prop_assert_eq!(ClaimPath::parse(&p.to_string()).unwrap(), p);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(s in any::<String>()) {
            let _ = ClaimPath::parse(&s);
        }
    }
}
