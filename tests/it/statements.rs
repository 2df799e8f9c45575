//! Every SQL statement of the store, prepared against the migrated schema.
//!
//! The statements are strings, so the compiler cannot check them against the
//! tables; this test does what `query!` would do at build time, at test time:
//! it finds each statement the store crate hands to sqlx (a literal at the
//! call, or a `const` of the crate) and has Postgres prepare it on a freshly
//! migrated database, which checks every table, column, type and parameter.
//! A call whose statement it cannot find fails the test, unless it is listed
//! in `BUILT` with the reason, so no statement is skipped quietly.

use crate::harness::TestEnv;
use sqlx::Connection as _;
use std::collections::BTreeMap;

/// Calls whose statement is built at run time, by file and argument.
const BUILT: &[(&str, &str, &str)] = &[(
    "privileges.rs",
    "statement",
    "the GRANT statements name the role: `privileges::grant_statements`, asserted exactly by \
     the store's unit test `the_grants_are_exactly_what_placement_needs` and run by the secure tests",
)];

/// What a call hands to sqlx: the text of a statement, or a name.
#[derive(Debug)]
enum Argument {
    Literal(String),
    Name(String),
}

#[tokio::test]
async fn every_statement_of_the_store_prepares_against_the_migrated_schema() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/switchboard-store/src");
    let mut sources = BTreeMap::new();
    read_sources(&dir, &dir, &mut sources);
    let mut consts: BTreeMap<String, String> = BTreeMap::new();
    for (name, sql) in sources.values().flat_map(|s| string_consts(s)) {
        // One name, one statement: two consts of one name would leave the
        // test unsure which it prepared.
        assert!(consts.insert(name.clone(), sql).is_none(), "two string consts named {name} in the store");
    }

    let mut statements: Vec<(String, String)> = Vec::new();
    let mut unresolved = Vec::new();
    for (file, source) in &sources {
        for (line, argument) in calls(source) {
            match argument {
                Argument::Literal(sql) => statements.push((format!("{file}:{line}"), sql)),
                Argument::Name(name) => match consts.get(&name) {
                    Some(sql) => statements.push((format!("{file}:{line} ({name})"), sql.clone())),
                    None if BUILT.iter().any(|(f, n, _)| f == file && *n == name) => {}
                    None => unresolved.push(format!("{file}:{line}: {name}")),
                },
            }
        }
    }
    assert!(
        unresolved.is_empty(),
        "statements this test cannot find (make them consts, or list them in BUILT): {unresolved:?}"
    );
    // The store has some forty statements; far fewer means the search broke.
    assert!(statements.len() >= 35, "only {} statements found: {statements:?}", statements.len());

    let env = TestEnv::new(1).await;
    let mut failures = Vec::new();
    // PREPARE in the simple protocol: the server parses the statement,
    // resolves every table and column and infers each parameter's type, as
    // it does for the worker's own prepared statements.
    // A connection of its own, closed before the environment goes.
    let mut conn = sqlx::PgConnection::connect(&env.settings.database.url).await.expect("a connection");
    let prepare = |i: usize, sql: &str| format!("PREPARE statement_{i} AS {sql}");
    for (i, (place, sql)) in statements.iter().enumerate() {
        if let Err(e) = sqlx::raw_sql(&prepare(i, sql)).execute(&mut conn).await {
            failures.push(format!("{place}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements do not prepare:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n")
    );

    // The check can fail: a statement naming a column the schema lacks.
    let (_, select) = statements.iter().find(|(_, sql)| sql.trim_start().starts_with("SELECT")).expect("a SELECT");
    let wrong = select.replacen("SELECT", "SELECT no_such_column,", 1);
    let refused = sqlx::raw_sql(&prepare(statements.len(), &wrong)).execute(&mut conn).await;
    assert!(refused.is_err(), "a wrong statement prepared: {wrong}");
    conn.close().await.expect("close");
    // While this runtime runs, so the migration's connection goes back first.
    env.pool.close().await;
}

/// Every `.rs` file under `dir`, by its path below `root`.
fn read_sources(root: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("the store's sources") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read_to_string(&path).expect("a source"));
        }
    }
}

/// `const NAME: &str = "...";` (or a raw string) anywhere in a source.
fn string_consts(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("const ") {
        rest = &rest[at + "const ".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let after = &rest[name.len()..];
        if let Some(value) = after.strip_prefix(": &str = ") {
            if let Some((text, _)) = literal(value) {
                out.push((name, text));
            }
        }
    }
    out
}

/// Each place a statement reaches sqlx, with its line and first argument:
/// `sqlx::<function>(`, with or without a turbofish, for every function that
/// takes one. The `query!` family of macros and SQL run by name on an
/// executor (`.execute("...")`) count as calls this test cannot read, so
/// they fail it rather than slip by.
fn calls(source: &str) -> Vec<(usize, Argument)> {
    const FUNCTIONS: [&str; 7] =
        ["query", "query_as", "query_scalar", "query_with", "query_as_with", "query_scalar_with", "raw_sql"];
    let mut out = Vec::new();
    let line_of = |at: usize| source[..at].matches('\n').count() + 1;
    for (at, _) in source.match_indices("sqlx::") {
        let rest = &source[at + "sqlx::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let mut rest = &rest[name.len()..];
        if rest.starts_with('!') {
            // The `query!` family; `migrate!` embeds files, not a statement.
            if name.starts_with("query") {
                out.push((line_of(at), Argument::Name(format!("sqlx::{name}!"))));
            }
            continue;
        }
        if !FUNCTIONS.contains(&name.as_str()) {
            continue;
        }
        if let Some(generics) = rest.strip_prefix("::<") {
            // Skip the turbofish, which may hold parentheses of its own.
            let mut depth = 1;
            let end = generics
                .char_indices()
                .find(|(_, c)| {
                    depth += match c {
                        '<' => 1,
                        '>' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("a closed turbofish");
            rest = &generics[end + 1..];
        }
        let Some(rest) = rest.strip_prefix('(') else { continue };
        let rest = rest.trim_start();
        let argument = match literal(rest) {
            Some((text, _)) => Argument::Literal(text),
            None => Argument::Name(rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()),
        };
        out.push((line_of(at), argument));
    }
    for (at, _) in source.match_indices(".execute(\"").chain(source.match_indices(".fetch_one(\"")) {
        out.push((line_of(at), Argument::Name("a statement run by name on an executor".to_owned())));
    }
    out
}

/// A Rust string literal at the start of `text` (plain or raw), unescaped,
/// and the length it took.
fn literal(text: &str) -> Option<(String, usize)> {
    if let Some(raw) = text.strip_prefix("r#\"") {
        let end = raw.find("\"#")?;
        return Some((raw[..end].to_owned(), end + 5));
    }
    let body = text.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 2)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '\n' => {
                    // A line continuation drops the next line's indentation.
                    let skip = body[i + 2..].len() - body[i + 2..].trim_start().len();
                    for _ in 0..skip {
                        chars.next();
                    }
                }
                other => out.push(other),
            },
            _ => out.push(c),
        }
    }
    None
}

#[test]
fn literals_and_calls_are_read_as_rust_writes_them() {
    assert_eq!(literal(r#""a \"b\" \\ c" rest"#).map(|l| l.0), Some(r#"a "b" \ c"#.to_owned()));
    assert_eq!(literal("r#\"x \"y\" z\"# rest").map(|l| l.0), Some("x \"y\" z".to_owned()));
    assert_eq!(literal("\"one \\\n     two\"").map(|l| l.0), Some("one two".to_owned()));
    assert_eq!(literal("NAME)"), None);
    let source = "let a = sqlx::query_as::<_, (Uuid, Option<String>)>(\n  \"SELECT 1\"\n);\nsqlx::query(NAME).bind(1);\n\
                  sqlx::query_scalar(r#\"SELECT 2\"#); sqlx::query!(\"SELECT 3\"); sqlx::Error::Io; sqlx::migrate!(\"m\"); pool.execute(\"SELECT 4\")";
    let found: Vec<String> = calls(source).into_iter().map(|(line, a)| format!("{line}:{a:?}")).collect();
    assert_eq!(
        found,
        [
            "1:Literal(\"SELECT 1\")",
            "4:Name(\"NAME\")",
            "5:Literal(\"SELECT 2\")",
            "5:Name(\"sqlx::query!\")",
            "5:Name(\"a statement run by name on an executor\")"
        ]
    );
    assert_eq!(
        string_consts("pub const X: &str = r#\"SQL\"#;\nconst N: usize = 3;"),
        [("X".to_owned(), "SQL".to_owned())]
    );
}
