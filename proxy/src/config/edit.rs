//! Edits one namespace of a config file's text in place, for the admin API's
//! ApplyNamespace and DeleteNamespace. serde-saphyr reads YAML but cannot
//! write it back with its comments, so the file is not re-serialized: the
//! lines of the one entry concerned are replaced, inserted or removed, and
//! every other byte stays as it was (comments included). Comments inside
//! the entry replaced go with it; the new entry carries the caller's own.
//!
//! Each edit is checked by reading the result back with the config loader:
//! the new text must be valid, and must say exactly what was meant (the
//! other namespaces and settings unchanged), or nothing is written. A
//! `namespaces:` list written in flow style (`[...]`) is refused, as is any
//! layout the line edit cannot handle.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Config, ConfigError, NamespaceConfig};

/// Why an edit was not made.
#[derive(Debug, PartialEq)]
pub(crate) enum EditError {
    /// The namespace given, or the file it would make, is invalid; the
    /// message names the field.
    Invalid(String),
    /// The file has no namespace of that name.
    NotFound(String),
    /// The file cannot be edited in place (its layout, or it is invalid now).
    NotEditable(String),
}

/// The largest namespace accepted, in bytes of YAML.
pub(crate) const MAX_NAMESPACE_YAML: usize = 64 * 1024;

/// `text` with the namespace in `yaml` added, or put in place of the one of
/// the same name. Returns the new text, the name, and whether it was added.
pub(crate) fn apply(text: &str, yaml: &str) -> Result<(String, String, bool), EditError> {
    if yaml.len() > MAX_NAMESPACE_YAML {
        return Err(EditError::Invalid(format!(
            "yaml: {} bytes exceeds the limit of {MAX_NAMESPACE_YAML} bytes",
            yaml.len()
        )));
    }
    let snippet = normalize(yaml);
    if snippet.trim().is_empty() {
        return Err(EditError::Invalid(
            "yaml: empty; give one namespace (name, pattern, backend, …)".into(),
        ));
    }
    let wanted: NamespaceConfig = serde_saphyr::from_str(&snippet)
        .map_err(|e| EditError::Invalid(format!("namespace: {e}")))?;
    let old = current(text)?;
    let text = with_list(text)?;
    let list = locate(&text)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let entry = render(&snippet, list.indent);
    let found = list.entries.iter().find(|e| e.name == wanted.name);
    let (at, end) = match found {
        Some(e) => (e.start, e.end),
        None => (list.end, list.end),
    };
    let new_text = splice(&lines, at, end, &entry);
    let new = read_back(&new_text)?;
    let mut expected = old.namespaces.clone();
    match expected.iter_mut().find(|ns| ns.name == wanted.name) {
        Some(ns) => *ns = wanted.clone(),
        None => expected.push(wanted.clone()),
    }
    same_as_meant(&old, &new, expected)?;
    Ok((new_text, wanted.name, found.is_none()))
}

/// `text` without the namespace `name`.
pub(crate) fn delete(text: &str, name: &str) -> Result<String, EditError> {
    let old = current(text)?;
    if !old.namespaces.iter().any(|ns| ns.name == name) {
        return Err(EditError::NotFound(name.to_string()));
    }
    if old.namespaces.len() == 1 {
        return Err(EditError::Invalid(format!(
            "namespaces: at least one namespace is needed; `{name}` is the last one"
        )));
    }
    let text = with_list(text)?;
    let list = locate(&text)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(entry) = list.entries.iter().find(|e| e.name == name) else {
        return Err(EditError::NotFound(name.to_string()));
    };
    let new_text = splice(&lines, entry.start, entry.end, "");
    let new = read_back(&new_text)?;
    let expected = old
        .namespaces
        .iter()
        .filter(|ns| ns.name != name)
        .cloned()
        .collect();
    same_as_meant(&old, &new, expected)?;
    Ok(new_text)
}

/// The file's config as it reads now; an edit starts only from a valid file.
fn current(text: &str) -> Result<Config, EditError> {
    Config::from_yaml(text).map_err(|e| {
        EditError::NotEditable(format!(
            "the config file is invalid as it is ({e}); fix it by hand first"
        ))
    })
}

/// The edited text as the loader reads it; its error names the field.
fn read_back(text: &str) -> Result<Config, EditError> {
    Config::from_yaml(text).map_err(|e: ConfigError| EditError::Invalid(e.to_string()))
}

/// Refuses an edit whose result differs from `old` in anything but the
/// namespaces, or whose namespaces are not `expected`.
fn same_as_meant(
    old: &Config,
    new: &Config,
    expected: Vec<NamespaceConfig>,
) -> Result<(), EditError> {
    let meant = Config {
        namespaces: expected,
        ..old.clone()
    };
    if *new == meant {
        Ok(())
    } else {
        Err(EditError::NotEditable(
            "the file's layout cannot be edited in place without changing more than the \
             namespace; edit it by hand"
                .into(),
        ))
    }
}

/// The caller's YAML as a block to indent: no document markers, no common
/// indentation, no trailing blank lines, ending in a newline.
fn normalize(yaml: &str) -> String {
    let lines: Vec<&str> = yaml
        .lines()
        .filter(|l| !matches!(l.trim_end(), "---" | "..."))
        .collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in &lines {
        out.push_str(line.get(indent..).unwrap_or("").trim_end());
        out.push('\n');
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// The snippet as a block-list entry whose dash sits at `indent`.
fn render(snippet: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for (i, line) in snippet.lines().enumerate() {
        if i == 0 {
            out.push_str(&format!("{pad}- {line}\n"));
        } else if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("{pad}  {line}\n"));
        }
    }
    out
}

fn splice(lines: &[&str], start: usize, end: usize, with: &str) -> String {
    let mut out: String = lines[..start].concat();
    out.push_str(with);
    out.push_str(&lines[end..].concat());
    out
}

/// `text`, with the namespaces it stands for written out when it has no
/// `namespaces:` list (an empty file serves the defaults): adding one must
/// not take those away.
fn with_list(text: &str) -> Result<String, EditError> {
    if list_span(text)?.is_some() {
        return Ok(text.to_string());
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("namespaces:\n");
    for ns in Config::default().namespaces {
        out.push_str(&format!(
            "  - name: {}\n    pattern: {}\n    backend: {}\n",
            ns.name,
            ns.pattern.as_str(),
            ns.backend.as_str()
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    namespaces: Option<Spanned<Vec<Spanned<Entry>>>>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
}

type Spans = Spanned<Vec<Spanned<Entry>>>;

fn list_span(text: &str) -> Result<Option<Spans>, EditError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let doc: Doc = serde_saphyr::from_str(text)
        .map_err(|e| EditError::NotEditable(format!("cannot read the file's namespaces: {e}")))?;
    Ok(doc.namespaces)
}

/// Where the block list's entries are, as line indexes.
struct List {
    /// Column of the entries' `-`.
    indent: usize,
    entries: Vec<Located>,
    /// Where a new entry goes: after the last one's lines.
    end: usize,
}

struct Located {
    name: String,
    /// First line (its `-`) and one past the last line of the entry.
    start: usize,
    end: usize,
}

fn locate(text: &str) -> Result<List, EditError> {
    let not_editable = |why: &str| EditError::NotEditable(why.to_string());
    let Some(list) = list_span(text)? else {
        return Err(not_editable("the file has no `namespaces:` list"));
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Line index and the text before a (1-based) position.
    let at = |line: u64, column: u64| -> Option<(usize, String)> {
        let l = usize::try_from(line).ok()?.checked_sub(1)?;
        let before: String = lines
            .get(l)?
            .chars()
            .take(usize::try_from(column).ok()?.saturating_sub(1))
            .collect();
        Some((l, before))
    };
    let seq = list.referenced;
    let flow = at(seq.line(), seq.column())
        .and_then(|(l, before)| lines[l][before.len()..].chars().next())
        .is_some_and(|c| c == '[');
    if flow {
        return Err(not_editable(
            "`namespaces` is written as a flow list `[...]`; write it as a block list \
             (one `- name: …` entry per namespace) to manage namespaces through the admin API",
        ));
    }
    let mut entries = Vec::new();
    let mut indent = None;
    for item in &list.value {
        let loc = item.referenced;
        let (mut l, before) = at(loc.line(), loc.column())
            .ok_or_else(|| not_editable("an entry of `namespaces` has no position"))?;
        let dash = if before.trim() == "-" {
            before.find('-')
        } else if before.trim().is_empty() {
            // `-` alone on a line (or with a comment), the entry below it.
            let above = (0..l).rev().find(|&i| !is_blank_or_comment(lines[i]));
            above.and_then(|i| {
                l = i;
                dash_alone(lines[i]).then(|| lines[i].find('-')).flatten()
            })
        } else {
            None
        };
        let dash = dash.ok_or_else(|| {
            not_editable("an entry of `namespaces` does not start its line with `- `")
        })?;
        if *indent.get_or_insert(dash) != dash {
            return Err(not_editable("the entries of `namespaces` are not aligned"));
        }
        entries.push(Located {
            name: item.value.name.clone(),
            start: l,
            end: lines.len(),
        });
    }
    let Some(indent) = indent else {
        return Err(not_editable("`namespaces` is empty"));
    };
    for i in 0..entries.len() {
        let limit = entries.get(i + 1).map_or_else(
            || end_of_list(&lines, entries[i].start, indent),
            |next| next.start,
        );
        // Blank and comment lines before what follows belong to what follows.
        let mut end = limit;
        while end > entries[i].start + 1 && is_blank_or_comment(lines[end - 1]) {
            end -= 1;
        }
        entries[i].end = end;
    }
    let end = entries.last().map_or(0, |e| e.end);
    Ok(List {
        indent,
        entries,
        end,
    })
}

/// One past the last line of the last entry that starts at `start`: the
/// first line, below it, that is less indented than its `-` (or as much,
/// without a `-`).
fn end_of_list(lines: &[&str], start: usize, indent: usize) -> usize {
    (start + 1..lines.len())
        .find(|&i| {
            let line = lines[i];
            if is_blank_or_comment(line) {
                return false;
            }
            let own = line.len() - line.trim_start().len();
            let rest = line.trim_start();
            own < indent || (own == indent && !(rest.starts_with("- ") || rest.trim() == "-"))
        })
        .unwrap_or(lines.len())
}

/// A line holding only an entry's `-`, perhaps with a comment after it.
fn dash_alone(line: &str) -> bool {
    line.trim().strip_prefix('-').is_some_and(|rest| {
        rest.trim().is_empty()
            || (rest.starts_with([' ', '\t']) && rest.trim_start().starts_with('#'))
    })
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
