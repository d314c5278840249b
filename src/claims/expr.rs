//! CEL expressions (issue 18): computed mappings (`expr`), their conditions (`when`) and
//! client access policies, compiled once when the configuration is loaded.
//!
//! Compiling checks more than the syntax: every name an expression reads must be one of the
//! variables its place offers (a mapping sees `id_token`, `userinfo`, `access_token` and
//! `context`), and every function it calls must exist, so `idtoken.email` or `lower(x)` is a
//! configuration error with its position, not a login that fails later. CEL has no loops, so an
//! evaluation ends; its result is capped at [`MAX_RESULT_BYTES`] of JSON.
//!
//! The standard library is extended with CEL's string and list extensions: `lowerAscii()`,
//! `upperAscii()`, `trim()`, `replace(a, b)`, `split(sep)`, `join(sep)`, `substring(i, j)`,
//! `matches(re)`, `flatten()`, `distinct()` and the rest.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The variables a mapping's `expr` and `when` read.
pub const MAPPING_VARIABLES: [&str; 4] = ["id_token", "userinfo", "access_token", "context"];

/// The most JSON one evaluation may produce.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;

/// The longest expression accepted: CEL's parser and evaluator recurse, and an expression long
/// enough (thousands of terms) would exhaust a thread's stack.
pub const MAX_SOURCE_CHARS: usize = 1024;

/// The deepest expression tree accepted, for the same reason.
pub const MAX_DEPTH: usize = 48;

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    // Both only declare functions under names the standard library leaves free.
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::lists);
    Arc::new(env)
});

/// A compiled CEL expression and the text it was written as.
#[derive(Clone)]
pub struct Expression {
    source: Arc<str>,
    program: Arc<cel::Program>,
}

/// Why an expression does not compile, with where (1-based line and column in the expression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ExprError {}

impl Expression {
    /// Compiles `source`, which may read only `variables`.
    pub fn compile(source: &str, variables: &[&str]) -> Result<Self, ExprError> {
        if source.chars().count() > MAX_SOURCE_CHARS {
            return Err(ExprError {
                line: 1,
                column: MAX_SOURCE_CHARS + 1,
                message: format!(
                    "the expression is longer than {MAX_SOURCE_CHARS} characters; split the work \
                     into several mappings (a later one reads `context`)"
                ),
            });
        }
        // Nesting the parser would recurse through is refused before it runs.
        let nesting = source
            .chars()
            .scan(0i64, |depth, c| {
                match c {
                    '(' | '[' | '{' => *depth += 1,
                    ')' | ']' | '}' => *depth -= 1,
                    _ => {}
                }
                Some(*depth)
            })
            .max()
            .unwrap_or(0);
        if nesting > MAX_DEPTH as i64 {
            return Err(ExprError {
                line: 1,
                column: 1,
                message: format!("the expression nests deeper than {MAX_DEPTH} levels"),
            });
        }
        let program = ENV.compile(source).map_err(|errors| {
            let first = errors.errors.first();
            ExprError {
                line: first.map_or(1, |e| e.pos.0.max(1) as usize),
                column: first.map_or(1, |e| e.pos.1.max(0) as usize + 1),
                message: first.map_or_else(|| "not a CEL expression".to_owned(), |e| e.msg.clone()),
            }
        })?;
        let at = |id: u64| {
            let offset = program
                .source_info()
                .offset_for(id)
                .map_or(0, |(start, _)| start as usize);
            position(source, offset)
        };
        if depth(program.expression()) > MAX_DEPTH {
            return Err(ExprError {
                line: 1,
                column: 1,
                message: format!(
                    "the expression nests deeper than {MAX_DEPTH} levels (a long chain of \
                     operators or fields counts as nesting)"
                ),
            });
        }
        let mut free = Vec::new();
        free_names(program.expression(), &mut Vec::new(), &mut free);
        if let Some((id, name)) = free.iter().find(|(_, n)| !variables.contains(&n.as_str())) {
            let (line, column) = at(*id);
            return Err(ExprError {
                line,
                column,
                message: format!(
                    "unknown name `{name}`; the expression can read {}",
                    variables
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let mut calls = Vec::new();
        function_calls(program.expression(), &mut calls);
        let mut seen = HashSet::new();
        for (id, name) in calls {
            if seen.insert(name.clone()) && !function_exists(&name) {
                // CEL places a call at its `(`; point at the name instead.
                let (line, column) = at(id);
                let column = column.saturating_sub(name.chars().count()).max(1);
                return Err(ExprError {
                    line,
                    column,
                    message: format!("unknown function `{name}`"),
                });
            }
        }
        Ok(Self {
            source: source.into(),
            program: Arc::new(program),
        })
    }

    /// The text the expression was written as.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The same text, shared (origins hold it).
    pub fn source_shared(&self) -> &Arc<str> {
        &self.source
    }

    /// Evaluates the expression in `scope`, as JSON. `null` is a value here; callers decide
    /// what it means.
    pub fn evaluate(&self, scope: &Scope) -> Result<Value, String> {
        let value = self
            .program
            .execute(&scope.context)
            .map_err(|e| describe_error(&e))?;
        let json = value
            .json()
            .map_err(|_| "the result is not a JSON value (a type or a function)".to_owned())?;
        let size = serde_json::to_vec(&json).map_or(usize::MAX, |v| v.len());
        if size > MAX_RESULT_BYTES {
            return Err(format!(
                "the result is {size} bytes of JSON, more than the {MAX_RESULT_BYTES} allowed"
            ));
        }
        Ok(json)
    }

    /// Evaluates a condition: `true` or `false`, anything else is an error.
    pub fn holds(&self, scope: &Scope) -> Result<bool, String> {
        match self.program.execute(&scope.context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "the condition answered {}, not true or false",
                describe_cel(&other)
            )),
            Err(e) => Err(describe_error(&e)),
        }
    }
}

/// The variables one evaluation sees.
pub struct Scope {
    context: cel::Context<'static, 'static>,
}

impl Scope {
    /// A scope with no variables yet.
    pub fn new() -> Self {
        Self {
            context: cel::Context::with_env(ENV.clone()),
        }
    }

    /// Sets `name` to a JSON object (`None` reads as an empty map).
    pub fn set(&mut self, name: &str, value: Option<&Map<String, Value>>) {
        let empty = Map::new();
        let value = value.unwrap_or(&empty);
        if self.context.add_variable(name, value).is_err() {
            // A JSON object always converts; keep the name declared regardless.
            self.context.add_variable_from_value(name, cel::Value::Null);
        }
    }

    /// Sets `name` to a string.
    pub fn set_str(&mut self, name: &str, value: &str) {
        self.context.add_variable_from_value(name, value);
    }
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

fn describe_error(e: &cel::ExecutionError) -> String {
    match e {
        cel::ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        other => other.to_string(),
    }
}

fn describe_cel(v: &cel::Value) -> String {
    match v.json() {
        Ok(json) => json.to_string(),
        Err(_) => "a value that is not JSON".to_owned(),
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Expression {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Expressions in configuration are mappings' `expr` and `when`, so they read the mapping's
/// variables.
impl<'de> Deserialize<'de> for Expression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Expression::compile(&source, &MAPPING_VARIABLES)
            .map_err(|e| serde::de::Error::custom(format!("invalid CEL expression: {e}")))
    }
}

/// 1-based line and column of the character at `offset` in `source`.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in source.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// The expressions directly under `expr`, in source order.
fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => entry_values(&map.entries),
        Expr::Struct(s) => entry_values(&s.entries),
        Expr::Select(select) => vec![&*select.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

fn entry_values(entries: &[cel::common::ast::IdedEntryExpr]) -> Vec<&IdedExpr> {
    entries
        .iter()
        .flat_map(|e| match &e.expr {
            EntryExpr::StructField(field) => vec![&field.value],
            EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
        })
        .collect()
}

/// How deep the tree under `expr` goes.
fn depth(expr: &IdedExpr) -> usize {
    1 + children(expr).into_iter().map(depth).max().unwrap_or(0)
}

/// The names `expr` reads that no enclosing comprehension binds, with where each is.
fn free_names(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<(u64, String)>) {
    match &expr.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@') && !bound.iter().any(|b| b == name) {
                out.push((expr.id, name.clone()));
            }
        }
        // The range and the accumulator's start are outside the loop's variables.
        Expr::Comprehension(comp) => {
            free_names(&comp.iter_range, bound, out);
            free_names(&comp.accu_init, bound, out);
            let depth = bound.len();
            bound.push(comp.iter_var.clone());
            bound.extend(comp.iter_var2.clone());
            bound.push(comp.accu_var.clone());
            free_names(&comp.loop_cond, bound, out);
            free_names(&comp.loop_step, bound, out);
            free_names(&comp.result, bound, out);
            bound.truncate(depth);
        }
        _ => {
            for child in children(expr) {
                free_names(child, bound, out);
            }
        }
    }
}

/// Every function `expr` calls by name (operators excluded), with where, outermost first.
fn function_calls(expr: &IdedExpr, out: &mut Vec<(u64, String)>) {
    if let Expr::Call(call) = &expr.expr
        && !call.func_name.starts_with('_')
        && !call.func_name.starts_with('@')
    {
        out.push((expr.id, call.func_name.clone()));
    }
    for child in children(expr) {
        function_calls(child, out);
    }
}

/// Whether CEL knows a function named `name`, as a global or a member function. Probed by calling
/// it with nothing: an unknown name is an undeclared reference, a known one a wrong call.
fn function_exists(name: &str) -> bool {
    let context = cel::Context::with_env(ENV.clone());
    let unknown = |probe: String| match ENV.compile(&probe) {
        Ok(program) => matches!(
            program.execute(&context),
            Err(cel::ExecutionError::UndeclaredReference(ref n)) if n.as_str() == name
        ),
        Err(_) => true,
    };
    !(unknown(format!("{name}()")) && unknown(format!("null.{name}()")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(id_token: Value) -> Scope {
        let mut s = Scope::new();
        s.set("id_token", id_token.as_object());
        s.set("userinfo", None);
        s.set("access_token", None);
        s.set("context", None);
        s
    }

    #[test]
    fn a_mapping_expression_computes_json() {
        let e = Expression::compile(
            "id_token['https://example.com/groups'].map(g, 'team:' + g.lowerAscii())",
            &MAPPING_VARIABLES,
        )
        .unwrap();
        let s = scope(json!({"https://example.com/groups": ["Ops", "Dev"]}));
        assert_eq!(e.evaluate(&s).unwrap(), json!(["team:ops", "team:dev"]));
        // The claim is absent: an error, for the mapping's `on_missing` to handle.
        let empty = scope(json!({}));
        assert!(e.evaluate(&empty).unwrap_err().contains("no such key"));
    }

    #[test]
    fn unknown_names_and_functions_are_refused_with_their_place() {
        let err = Expression::compile("idtoken.email", &MAPPING_VARIABLES).unwrap_err();
        assert_eq!((err.line, err.column), (1, 1), "{err}");
        assert!(err.message.contains("unknown name `idtoken`"), "{err}");
        let err = Expression::compile("id_token.groups.map(g, lower(g))", &MAPPING_VARIABLES)
            .unwrap_err();
        assert!(err.message.contains("unknown function `lower`"), "{err}");
        assert_eq!(err.column, 24, "{err}");
        // Comprehension variables are bound, not free.
        Expression::compile(
            "id_token.groups.filter(g, g.startsWith('a')).map(x, x.upperAscii())",
            &MAPPING_VARIABLES,
        )
        .unwrap();
        let err = Expression::compile("id_token.groups.map(g, ", &MAPPING_VARIABLES).unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }

    #[test]
    fn long_or_deep_expressions_are_refused_before_they_can_exhaust_the_stack() {
        let long = vec!["1"; 600].join(" + ");
        let err = Expression::compile(&long, &MAPPING_VARIABLES).unwrap_err();
        assert!(err.message.contains("longer than 1024"), "{err}");
        // Within the length, a chain of operators or fields is depth.
        let chain = vec!["1"; 200].join("+");
        let err = Expression::compile(&chain, &MAPPING_VARIABLES).unwrap_err();
        assert!(err.message.contains("deeper than 48"), "{err}");
        let fields = format!("id_token{}", ".a".repeat(500));
        let err = Expression::compile(&fields, &MAPPING_VARIABLES).unwrap_err();
        assert!(err.message.contains("deeper than 48"), "{err}");
        let parens = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        let err = Expression::compile(&parens, &MAPPING_VARIABLES).unwrap_err();
        assert!(err.message.contains("deeper than 48"), "{err}");
        // What is left evaluates on a test thread's stack.
        let ok = vec!["1"; 40].join(" + ");
        let e = Expression::compile(&ok, &MAPPING_VARIABLES).unwrap();
        assert_eq!(e.evaluate(&scope(json!({}))).unwrap(), json!(40));
    }

    #[test]
    fn a_condition_must_be_a_boolean() {
        let s = scope(json!({"email_verified": true, "n": 3}));
        let yes = Expression::compile("id_token.email_verified", &MAPPING_VARIABLES).unwrap();
        assert_eq!(yes.holds(&s), Ok(true));
        let number = Expression::compile("id_token.n", &MAPPING_VARIABLES).unwrap();
        assert!(number.holds(&s).unwrap_err().contains("not true or false"));
    }

    #[test]
    fn a_result_larger_than_the_cap_is_an_error() {
        let big: Vec<String> = (0..2000).map(|i| format!("group-number-{i:05}")).collect();
        let s = scope(json!({"groups": big}));
        let e =
            Expression::compile("id_token.groups.map(g, g + g + g)", &MAPPING_VARIABLES).unwrap();
        assert!(e.evaluate(&s).unwrap_err().contains("more than the"));
    }

    #[test]
    fn expressions_deserialize_compiled() {
        #[derive(Debug, Deserialize)]
        struct T {
            e: Expression,
        }
        let t: T = toml::from_str("e = \"context.name + '!'\"").unwrap();
        assert_eq!(t.e.source(), "context.name + '!'");
        let err = toml::from_str::<T>("e = \"nope.name\"").unwrap_err();
        assert!(err.to_string().contains("unknown name `nope`"), "{err}");
    }
}
