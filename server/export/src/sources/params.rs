//! Named parameters (`:mail`) in an operator's SQL, turned into the driver's positional ones (`$1` for
//! PostgreSQL, `?1` for SQLite), so that a person's identities are always bound, never spliced in.
//!
//! A `:` starts a parameter only outside string literals, quoted identifiers, comments and PostgreSQL's
//! dollar-quoted strings, and never as part of a `::` cast (`:id::int` is the parameter `id` cast).

/// A query with positional parameters, and the name each position binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positional {
    /// The query for the driver.
    pub text: String,
    /// The parameter name of each position (`names[0]` is `$1`); a name used twice has one position.
    pub names: Vec<String>,
}

/// Rewrites `sql`'s named parameters with `placeholder(position)` (1-based).
pub fn positional(sql: &str, placeholder: impl Fn(usize) -> String) -> Positional {
    let chars: Vec<char> = sql.chars().collect();
    let mut text = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' => {
                // E'…' strings escape with backslashes; standard ones only by doubling the quote, which
                // reads here as a string ending and another starting at once.
                let backslashes = i > 0 && matches!(chars[i - 1], 'e' | 'E');
                i = copy_quoted(&chars, i, '\'', backslashes, &mut text);
            }
            '"' => i = copy_quoted(&chars, i, '"', false, &mut text),
            '-' if next == Some('-') => i = copy_until(&chars, i, "\n", &mut text),
            '/' if next == Some('*') => i = copy_until(&chars, i, "*/", &mut text),
            '$' if dollar_tag(&chars, i).is_some() => {
                let tag = dollar_tag(&chars, i).unwrap_or_default();
                text.push_str(&tag);
                i = copy_until(&chars, i + tag.chars().count(), &tag, &mut text);
            }
            ':' if next == Some(':') => {
                text.push_str("::");
                i += 2;
            }
            ':' if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '_') => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let position = match names.iter().position(|n| *n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name);
                        names.len()
                    }
                };
                text.push_str(&placeholder(position));
                i = end;
            }
            _ => {
                text.push(c);
                i += 1;
            }
        }
    }
    Positional { text, names }
}

/// Copies the quoted text starting at `start` (a `quote`), through its closing quote.
fn copy_quoted(chars: &[char], start: usize, quote: char, backslashes: bool, out: &mut String) -> usize {
    out.push(quote);
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        i += 1;
        if backslashes && c == '\\' {
            if let Some(&escaped) = chars.get(i) {
                out.push(escaped);
                i += 1;
            }
        } else if c == quote {
            break;
        }
    }
    i
}

/// Copies from `start` through the first `end` after it (or to the end of the text).
fn copy_until(chars: &[char], start: usize, end: &str, out: &mut String) -> usize {
    let end: Vec<char> = end.chars().collect();
    let mut i = start;
    // The opening characters themselves never close (`/*/` is not a whole comment).
    let first = (start + end.len().min(2)).min(chars.len());
    out.extend(&chars[start..first]);
    i = i.max(first);
    while i < chars.len() {
        if chars[i..].starts_with(&end) {
            out.extend(&end);
            return i + end.len();
        }
        out.push(chars[i]);
        i += 1;
    }
    i
}

/// The dollar-quote tag (`$$`, `$body$`) starting at `start`, if one does.
fn dollar_tag(chars: &[char], start: usize) -> Option<String> {
    let mut i = start + 1;
    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
        if i == start + 1 && chars[i].is_ascii_digit() {
            return None; // `$1`: a positional parameter, not a tag
        }
        i += 1;
    }
    (chars.get(i) == Some(&'$')).then(|| chars[start..=i].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> Positional {
        positional(sql, |n| format!("${n}"))
    }

    #[test]
    fn names_become_positions_and_repeat_their_position() {
        let p = pg("SELECT * FROM t WHERE a = :id OR b = :mail OR c = :id");
        assert_eq!(p.text, "SELECT * FROM t WHERE a = $1 OR b = $2 OR c = $1");
        assert_eq!(p.names, ["id", "mail"]);
        let sqlite = positional("WHERE a = :user_principal_name", |n| format!("?{n}"));
        assert_eq!(sqlite.text, "WHERE a = ?1");
    }

    #[test]
    fn casts_strings_identifiers_and_comments_are_left_alone() {
        let p = pg("SELECT ':id', \":mail\", x::text, E'it\\'s :id' -- :id\n FROM t /* :mail */ WHERE a = :id::int");
        assert_eq!(
            p.text,
            "SELECT ':id', \":mail\", x::text, E'it\\'s :id' -- :id\n FROM t /* :mail */ WHERE a = $1::int"
        );
        assert_eq!(p.names, ["id"]);
        let doubled = pg("SELECT 'it''s :id', :mail");
        assert_eq!(doubled.text, "SELECT 'it''s :id', $1");
        let dollar = pg("SELECT $body$ :id $body$, $$ :mail $$, :id");
        assert_eq!(dollar.text, "SELECT $body$ :id $body$, $$ :mail $$, $1");
        assert_eq!(dollar.names, ["id"]);
    }

    #[test]
    fn unterminated_text_is_copied_whole() {
        assert_eq!(pg("SELECT ':id").text, "SELECT ':id");
        assert_eq!(pg("SELECT 1 /* :id").text, "SELECT 1 /* :id");
    }
}
