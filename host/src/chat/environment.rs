//! The minijinja environment a template renders in, set up as transformers sets up jinja2 for
//! `apply_chat_template` (an `ImmutableSandboxedEnvironment` with `trim_blocks`,
//! `lstrip_blocks`, the `loopcontrols` extension and its own globals and filters).

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Error, ErrorKind};

use super::{json, strftime};

/// Template instructions one render may run: far more than any real template needs for a
/// long conversation, and a bound on what a hostile template in a model file can cost.
const FUEL: u64 = 50_000_000;

/// An environment holding `source` as the template `name`; the error is the parser's.
pub(super) fn environment(name: &str, source: &str) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    // jinja2's defaults otherwise: a single trailing newline of the source is dropped.
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // A template named `x.html` (a file's path) must not escape HTML as minijinja would.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_fuel(Some(FUEL));
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", |format: &str| {
        strftime::strftime_now(format)
    });
    env.add_filter("tojson", json::tojson);
    env.add_template_owned(name.to_owned(), source.to_owned())?;
    Ok(env)
}

/// `raise_exception(message)`: a template's refusal of a conversation, with its own words.
fn raise_exception(message: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}
